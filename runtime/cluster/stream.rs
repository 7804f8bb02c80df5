//! Streaming stages in worker processes: both sides of a stage whose
//! `streaming!` node is scoped to another worker.
//!
//! The stage's node in process 0 is a proxy (`cluster::proxy`); the stage
//! itself, a registered `#[task]` function, runs in the worker. Per stage:
//!
//! 1. Process 0 creates two record rings ([`records`]), one per
//!    direction, and sends `StageStart` (task id, the constant arguments
//!    archived once, the position of the streaming argument, the two ring
//!    files). The worker maps them ([`WorkerStage::start`]); if it cannot,
//!    it answers `StageFailed`.
//! 2. The proxy writes each input element as a `Value` record and, when the
//!    input ends, an `End` record. The worker's loop reads each record in
//!    place (validated when the function's parameter decodes it), calls the
//!    function with the constants and the element, and writes the archived
//!    result as a `Value` record into the ring back; a panic or a failed
//!    call becomes a `Panicked` / `Failed` record, the end an `End` record,
//!    so results and endings arrive in order.
//! 3. A side that finds its ring empty (or full) parks as [`records`]
//!    describes; the other side rings its doorbell with a `StageBell`
//!    frame. The worker's loop is a task on its runtime that returns when it
//!    parks and is spawned again by the bell, so no thread of either process
//!    waits on the other.
//! 4. Process 0 sends `StageStop` when the proxy ends (cancel, teardown, or
//!    the stream ended); the worker drops the stage. A lost worker marks its
//!    stages lost and wakes their proxies, which fail the region with
//!    `Error::WorkerLost`.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use crate::sync::Mutex;
use rkyv::util::AlignedVec;

use super::leader::Cluster;
use crate::Error;
use crate::stream::edge::Waker;
use crate::task::archived::RemoteArgs;
use crate::task::registry::{self, Entry};
use crate::transport::frame::{Blobs, Message};
use crate::transport::records::{Kind, RecordReader, RecordWriter};
use crate::transport::shm::ring_path;
use crate::transport::socket::Outbox;

/// Data bytes of each record ring of a stage.
pub(crate) const RING_BYTES: u64 = 32 << 20;

const OPEN: u8 = 0;
const LOST: u8 = 1;
const FAILED: u8 = 2;

/// What a proxy shares with the cluster's frame handlers.
#[derive(Debug, Default)]
pub(crate) struct StageShared {
    waker: Mutex<Option<Waker>>,
    status: AtomicU8,
    message: Mutex<Option<String>>,
}

impl StageShared {
    fn wake(&self) {
        let waker = self.waker.lock().clone();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Process 0's stages on workers, by stage id.
#[derive(Debug, Default)]
pub(crate) struct Stages {
    open: Mutex<HashMap<u64, (u32, Arc<StageShared>)>>,
}

impl Stages {
    /// A `StageBell` from a worker.
    pub(crate) fn bell(&self, stage: u64) {
        let shared = self.open.lock().get(&stage).map(|(_, s)| s.clone());
        if let Some(s) = shared {
            s.wake();
        }
    }

    /// A `StageFailed` from a worker.
    pub(crate) fn failed(&self, stage: u64, message: String) {
        let shared = self.open.lock().get(&stage).map(|(_, s)| s.clone());
        if let Some(s) = shared {
            *s.message.lock() = Some(message);
            s.status.store(FAILED, Ordering::Release);
            s.wake();
        }
    }

    /// `worker` was lost: its stages fail.
    pub(crate) fn lost(&self, worker: u32) {
        let lost: Vec<Arc<StageShared>> =
            self.open.lock().values().filter(|(w, _)| *w == worker).map(|(_, s)| s.clone()).collect();
        for s in lost {
            s.status.store(LOST, Ordering::Release);
            s.wake();
        }
    }
}

/// Why a stage's worker side is gone.
#[derive(Debug)]
pub(crate) enum Gone {
    Lost(u32),
    Failed(String),
}

/// Process 0's end of one stage on a worker: the two rings and the link.
#[derive(Debug)]
pub(crate) struct StageLink {
    pub(crate) id: u64,
    pub(crate) worker: u32,
    pub(crate) to_worker: RecordWriter,
    pub(crate) from_worker: RecordReader,
    shared: Arc<StageShared>,
    cluster: &'static Cluster,
    files: [PathBuf; 2],
}

impl StageLink {
    /// Starts `entry` as stage on `worker` (protocol step 1).
    pub(crate) fn open(
        cluster: &'static Cluster,
        worker: u32,
        thread: Option<u32>,
        entry: &'static Entry,
        consts: &[AlignedVec<16>],
        slot: usize,
    ) -> Result<StageLink, Error> {
        let link = cluster.link(worker).ok_or_else(|| Error::Transport(format!("no link to worker {worker}")))?;
        let stages = &cluster.streams;
        // Unique in this process (several runtimes may have clusters).
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = |dir: &str| ring_path(&format!("dirk-stage-{}-{id}-{dir}", std::process::id()));
        let files = [name("in"), name("out")];
        let to_worker = RecordWriter::create(&files[0], RING_BYTES)?;
        let from_worker = match RecordReader::create(&files[1], RING_BYTES) {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_file(&files[0]);
                return Err(e);
            }
        };
        let shared = Arc::new(StageShared::default());
        stages.open.lock().insert(id, (worker, shared.clone()));
        let mut blobs = Blobs::default();
        let consts = consts.iter().map(|c| blobs.push(c)).collect();
        let start = Message::StageStart {
            stage: id,
            task: entry.id,
            thread,
            consts,
            slot: slot as u32,
            input: files[0].to_string_lossy().into_owned(),
            output: files[1].to_string_lossy().into_owned(),
        };
        let me = StageLink { id, worker, to_worker, from_worker, shared, cluster, files };
        if !link.alive.load(Ordering::Acquire) {
            me.shared.status.store(LOST, Ordering::Release);
        }
        link.outbox.send(&start, blobs)?;
        Ok(me)
    }

    /// Who a bell from the worker wakes.
    pub(crate) fn bind(&self, waker: &Waker) {
        *self.shared.waker.lock() = Some(waker.clone());
    }

    /// Forgets the waker (the proxy ended).
    pub(crate) fn unbind(&self) {
        *self.shared.waker.lock() = None;
    }

    /// Rings the worker's doorbell.
    pub(crate) fn bell(&self) {
        if let Some(link) = self.cluster.link(self.worker) {
            let _ = link.outbox.send(&Message::StageBell { stage: self.id }, Blobs::default());
        }
    }

    /// Whether the worker side is gone, and why.
    pub(crate) fn gone(&self) -> Option<Gone> {
        match self.shared.status.load(Ordering::Acquire) {
            OPEN => None,
            LOST => Some(Gone::Lost(self.worker)),
            _ => Some(Gone::Failed(self.shared.message.lock().clone().unwrap_or_default())),
        }
    }
}

impl Drop for StageLink {
    fn drop(&mut self) {
        self.cluster.streams.open.lock().remove(&self.id);
        *self.shared.waker.lock() = None;
        if let Some(link) = self.cluster.link(self.worker) {
            let _ = link.outbox.send(&Message::StageStop { stage: self.id }, Blobs::default());
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

const IDLE: u8 = 0;
const QUEUED: u8 = 1;
const RUNNING: u8 = 2;
const NOTIFIED: u8 = 3;

/// Records a worker's loop handles before it lets other tasks run.
const BATCH: usize = 256;

/// A worker's end of one stage.
pub(crate) struct WorkerStage {
    id: u64,
    entry: &'static Entry,
    consts: Vec<AlignedVec<16>>,
    slot: usize,
    thread: Option<usize>,
    outbox: Outbox,
    state: AtomicU8,
    stopped: AtomicBool,
    io: Mutex<StageIo>,
}

struct StageIo {
    input: RecordReader,
    output: RecordWriter,
    /// A record that did not fit the ring back yet.
    pending: Option<(Kind, AlignedVec<16>)>,
    /// The stage ended (its last record is written or pending).
    ended: bool,
}

/// How one pass of the loop stopped.
enum Pass {
    Batch,
    Blocked,
    Ended,
}

impl WorkerStage {
    /// Maps the rings of a `StageStart` (protocol step 1).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        id: u64,
        task: u64,
        thread: Option<usize>,
        consts: Vec<AlignedVec<16>>,
        slot: usize,
        input: &str,
        output: &str,
        outbox: Outbox,
    ) -> Result<Arc<WorkerStage>, Error> {
        let entry = registry::by_id(task)
            .ok_or_else(|| Error::Codec(format!("task id {task:#x} is not registered in this binary")))?;
        if slot > consts.len() {
            return Err(Error::Codec(format!("streaming argument {slot} of {} constants", consts.len())));
        }
        let io = StageIo {
            input: RecordReader::open(std::path::Path::new(input))?,
            output: RecordWriter::open(std::path::Path::new(output))?,
            pending: None,
            ended: false,
        };
        Ok(Arc::new(WorkerStage {
            id,
            entry,
            consts,
            slot,
            thread,
            outbox,
            state: AtomicU8::new(IDLE),
            stopped: AtomicBool::new(false),
            io: Mutex::new(io),
        }))
    }

    /// Queues the loop if it is idle (inside the worker's runtime).
    pub(crate) fn wake(self: &Arc<Self>) {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            let next = match s {
                IDLE => QUEUED,
                RUNNING => NOTIFIED,
                _ => return,
            };
            match self.state.compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) if next == QUEUED => return self.spawn(),
                Ok(_) => return,
                Err(actual) => s = actual,
            }
        }
    }

    fn spawn(self: &Arc<Self>) {
        let me = self.clone();
        let scope = self.thread.map_or_else(crate::Scope::any, crate::Scope::thread);
        crate::with_options(crate::Options::new().scope(scope).name("dirk::stage"), || {
            drop(crate::spawn(move || me.run()))
        });
    }

    /// Stops the stage (`StageStop`).
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    /// The loop: passes until the stage parks, yields or ends.
    fn run(self: Arc<Self>) {
        self.state.store(RUNNING, Ordering::Release);
        loop {
            if self.stopped.load(Ordering::Acquire) {
                return;
            }
            let pass = {
                let mut io = self.io.lock();
                let pass = self.pass(&mut io);
                let bell = io.output.take_reader_waiting() | io.input.take_writer_waiting();
                if bell {
                    let _ = self.outbox.send(&Message::StageBell { stage: self.id }, Blobs::default());
                }
                match pass {
                    Pass::Blocked => {
                        let io = &mut *io;
                        let parked = match &io.pending {
                            Some((_, bytes)) => io.output.park(bytes.len()),
                            None => io.ended || io.input.park(),
                        };
                        if parked { Pass::Blocked } else { Pass::Batch }
                    }
                    other => other,
                }
            };
            match pass {
                Pass::Ended => return,
                Pass::Batch => {
                    self.state.store(QUEUED, Ordering::Release);
                    self.spawn();
                    return;
                }
                Pass::Blocked => {
                    match self.state.compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => return,
                        Err(_) => self.state.store(RUNNING, Ordering::Release),
                    }
                }
            }
        }
    }

    /// Up to `BATCH` records (protocol step 2).
    fn pass(&self, io: &mut StageIo) -> Pass {
        for _ in 0..BATCH {
            if let Some((kind, bytes)) = io.pending.take() {
                if !io.output.push(kind, &bytes) {
                    io.pending = Some((kind, bytes));
                    return Pass::Blocked;
                }
                if io.ended {
                    return Pass::Ended;
                }
            }
            if io.ended {
                return Pass::Ended;
            }
            let (kind, out) = match io.input.peek() {
                Ok(None) => return Pass::Blocked,
                Ok(Some((Kind::Value, element))) => self.call(element),
                Ok(Some((Kind::End, _))) => {
                    io.ended = true;
                    (Kind::End, AlignedVec::new())
                }
                Ok(Some((kind, _))) => {
                    io.ended = true;
                    (Kind::Failed, text(&format!("a {kind:?} record in a stage's input")))
                }
                Err(e) => {
                    io.ended = true;
                    (Kind::Failed, text(&e.to_string()))
                }
            };
            io.input.advance();
            if kind != Kind::Value {
                io.ended = true;
            }
            if out.len() > io.output.max_payload() {
                io.ended = true;
                let message = format!("a result of {} bytes is larger than the stage's ring", out.len());
                io.pending = Some((Kind::Failed, text(&message)));
            } else {
                io.pending = Some((kind, out));
            }
        }
        Pass::Batch
    }

    /// Calls the function on one element: its archived result, or why not.
    fn call(&self, element: &[u8]) -> (Kind, AlignedVec<16>) {
        let mut slices: Vec<&[u8]> = Vec::with_capacity(self.consts.len() + 1);
        slices.extend(self.consts[..self.slot].iter().map(|c| c.as_slice()));
        slices.push(element);
        slices.extend(self.consts[self.slot..].iter().map(|c| c.as_slice()));
        super::serve::set_received(&slices);
        let args = RemoteArgs::new(slices);
        let ran = catch_unwind(AssertUnwindSafe(|| (self.entry.glue.run)(&args)));
        super::serve::set_received(&[]);
        match ran {
            Ok(Ok(bytes)) => (Kind::Value, bytes),
            Ok(Err(e)) => (Kind::Failed, text(&e.to_string())),
            Err(payload) => (Kind::Panicked, text(&crate::error::panic_message(&*payload))),
        }
    }
}

fn text(s: &str) -> AlignedVec<16> {
    let mut v = AlignedVec::new();
    v.extend_from_slice(s.as_bytes());
    v
}

/// A worker's stages, by id.
#[derive(Default)]
pub(crate) struct WorkerStages(Mutex<HashMap<u64, Arc<WorkerStage>>>);

impl WorkerStages {
    pub(crate) fn insert(&self, stage: Arc<WorkerStage>) {
        self.0.lock().insert(stage.id, stage);
    }

    pub(crate) fn get(&self, id: u64) -> Option<Arc<WorkerStage>> {
        self.0.lock().get(&id).cloned()
    }

    pub(crate) fn remove(&self, id: u64) -> Option<Arc<WorkerStage>> {
        self.0.lock().remove(&id)
    }
}
