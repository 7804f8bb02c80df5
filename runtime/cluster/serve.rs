//! The worker loop: what a process started as a worker does instead of the
//! program's body.
//!
//! 1. Connect to process 0 (or exit with a message saying there is none),
//!    send `Hello`, receive `Welcome`, map the rings, start a runtime with
//!    the thread count it was given, answer `Ready`.
//! 2. For each `Run`: once every argument is here (a call sent ahead waits
//!    for the objects it awaits, see [`store`](super::store)), spawn a
//!    local task that finds the task id in the registry (never running
//!    anything else), reads the arguments in place, runs the function,
//!    archives the result and keeps it as object `call`; give it to the
//!    peers that process 0 named (see step 3); answer `Done` with the result
//!    when it is small, without it otherwise (a short call's answer may wait
//!    to go out with later ones, see [`answers`](super::answers)), then
//!    start the calls that waited for it.
//! 3. `Give` brings an awaited object (from process 0, or from the peer
//!    that made it), `Withhold` says it will not come (the calls awaiting
//!    it fail), `Forget` drops waiting calls; `Pull` sends a kept object
//!    back; `Free` drops one; `Forward` asks for an object made here to be
//!    given to a peer directly (see [`peers`](super::peers)): small results
//!    go to their peers before `Done` goes to process 0.
//! 4. `Shutdown`, or the connection ending (process 0 exited), exits.

use std::cell::RefCell;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::sync::Mutex;
use rkyv::util::AlignedVec;

use super::answers::{self, Answers};
use super::env;
use super::join::{Refusal, handshake};
use super::launch::{self, unhex};
use super::leader::{INLINE_MAX, copy_out};
use super::peers::{self, Peers};
use super::store::{Admitted, Produced, Ready, Source, Store};
use super::stream::{WorkerStage, WorkerStages};
use crate::exec::{Pool, PoolConfig};
use crate::task::archived::RemoteArgs;
use crate::task::registry;
use crate::transport::dirkfile;
use crate::transport::frame::{self, ArchivedArg, ArchivedBlob, ArchivedMessage, Blobs, Message, Outcome, cookie};
use crate::transport::shm::{Consumer, Producer};
use crate::transport::socket::{self, Incoming, Io, write_frame};
use crate::{Error, Scope};

/// What a worker holds while it serves.
struct Worker {
    rt: Pool,
    /// Frames to process 0.
    answers: Arc<Answers>,
    ring_in: Option<Consumer>,
    ring_out: Option<Mutex<Producer>>,
    store: Mutex<Store<WorkerCall>>,
    /// Links to other workers, for values given to them directly.
    peers: Arc<Peers>,
    stages: WorkerStages,
    /// What `Shutdown` does: exit, or (under MPI) finalize first.
    stop: Box<dyn Fn() + Send + Sync>,
    /// The local task running each call, for `Cancel`; `None` marks a call
    /// whose run ended before `start` recorded its task.
    running: Mutex<std::collections::HashMap<u64, Option<crate::Task<()>>>>,
}

thread_local! {
    static RECEIVED: RefCell<Vec<Range<usize>>> = const { RefCell::new(Vec::new()) };
}

pub(crate) fn received(i: usize) -> Option<Range<usize>> {
    RECEIVED.with(|r| r.borrow().get(i).cloned())
}

/// Records where the arguments of the call about to run lie (for
/// [`received`]); an empty list clears them.
pub(crate) fn set_received(slices: &[&[u8]]) {
    RECEIVED.with(|r| {
        let mut r = r.borrow_mut();
        r.clear();
        r.extend(slices.iter().map(|s| s.as_ptr() as usize..s.as_ptr() as usize + s.len()));
    });
}

fn die(code: i32, message: String) -> ! {
    eprintln!("{message}");
    std::process::exit(code)
}

/// The cluster secret, which process 0 writes on the worker's stdin (64
/// hex digits and a newline) and then closes.
fn read_secret() -> Result<[u8; 32], String> {
    use std::io::Read as _;
    // SAFETY: `isatty` only looks at the descriptor.
    if unsafe { libc::isatty(0) } == 1 {
        return Err("stdin is a terminal: workers are started by process 0, which gives them the secret".to_owned());
    }
    let mut hex = [0u8; 64];
    std::io::stdin().lock().read_exact(&mut hex).map_err(|e| e.to_string())?;
    std::str::from_utf8(&hex).ok().and_then(unhex).ok_or_else(|| "not 64 hex digits".to_owned())
}

/// Runs the worker loop; never returns.
pub(crate) fn serve() -> ! {
    let id = launch::worker_id().unwrap_or_else(|| {
        die(2, format!("dirk worker: {} is not a worker id", std::env::var(env::WORKER).unwrap_or_default()))
    });
    super::set_current_worker(id);
    let path = launch::connect_path()
        .unwrap_or_else(|| die(2, format!("dirk worker {id}: {} does not say where process 0 listens", env::CONNECT)));
    let secret =
        read_secret().unwrap_or_else(|why| die(2, format!("dirk worker {id}: no cluster secret on stdin ({why})")));
    let io = Io::start().unwrap_or_else(|e| die(2, format!("dirk worker {id}: {e}")));
    let cookie = cookie(&secret);
    let connected = io.block_on(handshake(path.clone(), id, secret, cookie));
    let (stream, threads, workers, to_worker, to_main) = match connected {
        Ok(c) => c,
        Err(Refusal::NoProcess0(e)) => die(
            2,
            format!(
                "dirk worker {id}: could not reach process 0 at {}: {e}. Workers are started by \
                 `Runtime::builder().workers(k)` in process 0 (or by mpirun); with nobody to serve, this one exits.",
                path.display()
            ),
        ),
        Err(Refusal::Refused(e)) => die(
            3,
            format!(
                "dirk worker {id}: process 0 at {} refused this worker ({e}); is its cluster secret right?",
                path.display()
            ),
        ),
    };
    let setup = (|| -> Result<(Pool, Option<Consumer>, Option<Producer>), Error> {
        // No ring names: process 0 had no shared memory to spare.
        let (ring_in, ring_out) = if to_worker.is_empty() || to_main.is_empty() {
            (None, None)
        } else {
            (
                Some(Consumer::open(std::path::Path::new(&to_worker))?),
                Some(Producer::open(std::path::Path::new(&to_main))?),
            )
        };
        let rt = worker_pool(id, threads)?;
        Ok((rt, ring_in, ring_out))
    })();
    let (rt, ring_in, ring_out) = setup.unwrap_or_else(|e| die(4, format!("dirk worker {id}: could not start: {e}")));
    // Process 0 has one thread at least.
    if launch::crowded(1, workers, threads) {
        rt.shared().spin_less();
    }
    // Listening for peers before `Ready`: process 0 names this worker to
    // others only once it is ready.
    let worker: Arc<OnceLock<Arc<Worker>>> = Arc::new(OnceLock::new());
    let peer_path = peers::peer_path(&path, id);
    let _ = std::fs::remove_file(&peer_path);
    let listener = {
        let _in_io = io.handle().enter();
        let listener = tokio::net::UnixListener::bind(&peer_path)
            .unwrap_or_else(|e| die(4, format!("dirk worker {id}: could not listen on {}: {e}", peer_path.display())));
        super::rundir::private(&peer_path).unwrap_or_else(|e| die(4, format!("dirk worker {id}: {e}")));
        listener
    };
    let w2 = worker.clone();
    let from_peer: peers::PeerHandler = Arc::new(move |_, frame| w2.wait().on_peer_frame(frame));
    io.handle().spawn(peers::accept(listener, id, workers as u32, secret, cookie, from_peer));
    let exit = move |code: i32| -> ! {
        let _ = std::fs::remove_file(&peer_path);
        std::process::exit(code)
    };
    let (std_stream, ready) = (stream, Message::Ready { threads: rt.shared().threads() as u32 });
    let stream = io.block_on(async move {
        let mut s = std_stream;
        let frame = frame::encode(&ready, Blobs::default(), cookie)?;
        write_frame(&mut s, &frame).await?;
        Ok::<_, Error>(s)
    });
    let stream = stream.unwrap_or_else(|e| die(4, format!("dirk worker {id}: {e}")));
    // Process 0 sends calls as soon as it reads `Ready`, so frames can
    // arrive before the worker below exists: the reader waits for it (a
    // few instructions away, on this thread) rather than drop them.
    let w2 = worker.clone();
    let handler = Arc::new(move |frame: Incoming| w2.wait().on_frame(frame));
    let exit2 = exit.clone();
    let closed = Box::new(move |_why: Error| exit2(0));
    let outbox = socket::start_link(io.handle(), stream, cookie, handler, closed);
    let peers = Peers::over_sockets(id, workers as u32, path, io.handle().clone(), secret, cookie);
    let me = Arc::new(Worker {
        rt,
        answers: Answers::new(outbox, Some(io.handle().clone())),
        ring_in,
        ring_out: ring_out.map(Mutex::new),
        store: Mutex::new(Store::default()),
        peers,
        stages: WorkerStages::default(),
        running: Mutex::new(std::collections::HashMap::new()),
        stop: Box::new(move || exit(0)),
    });
    let _ = worker.set(me);
    let _io = io;
    loop {
        std::thread::park();
    }
}

/// The worker loop of an MPI rank other than 0; never returns.
#[cfg(feature = "mpi")]
pub(crate) fn serve_mpi(mpi: &'static crate::transport::mpi::Mpi) -> ! {
    use std::sync::mpsc::channel;
    use std::time::Duration;

    use crate::transport::auth;

    let id = mpi.rank;
    super::set_current_worker(id);
    let cookie = cookie(&mpi.secret);
    let finish = move |code: i32| -> ! {
        mpi.finish();
        std::process::exit(code)
    };
    let (tx, rx) = channel();
    let tx = std::sync::Mutex::new(tx);
    mpi.set_handler(Arc::new(move |rank, frame| {
        let _ = tx.lock().unwrap_or_else(|e| e.into_inner()).send((rank, frame));
    }));
    let outbox = mpi.outbox(0, cookie);
    let nonce = auth::random().unwrap_or_else(|e| die(2, format!("dirk worker {id}: {e}")));
    let proof = auth::hello_proof(&mpi.secret, &auth::NO_CHALLENGE, &nonce, id, 0);
    let _ = outbox.send(&Message::Hello { worker: id, pid: std::process::id(), nonce, proof }, Blobs::default());
    let expected = auth::welcome_proof(&mpi.secret, &auth::NO_CHALLENGE, &nonce);
    let threads = loop {
        match rx.recv_timeout(Duration::from_secs(600)) {
            Ok((0, Ok(frame))) => match frame.owned() {
                Ok(Message::Welcome { threads, proof, .. }) if auth::same(&proof, &expected) => break threads as usize,
                Ok(Message::Shutdown) => finish(0),
                _ => {}
            },
            Ok(_) => {}
            Err(_) => {
                eprintln!("dirk worker {id} (MPI rank {id}): rank 0 never asked for workers; exiting");
                finish(0)
            }
        }
    };
    let rt = worker_pool(id, threads).unwrap_or_else(|e| die(4, format!("dirk worker {id}: could not start: {e}")));
    let (stop_tx, stop_rx) = channel::<()>();
    let stop_tx = std::sync::Mutex::new(stop_tx);
    let me = Arc::new(Worker {
        rt,
        answers: Answers::new(outbox.clone(), None),
        ring_in: None,
        ring_out: None,
        store: Mutex::new(Store::default()),
        peers: Peers::new(id, mpi.size - 1, Box::new(move |to| Ok(mpi.outbox(to, cookie)))),
        stages: WorkerStages::default(),
        running: Mutex::new(std::collections::HashMap::new()),
        stop: Box::new(move || {
            let _ = stop_tx.lock().unwrap_or_else(|e| e.into_inner()).send(());
        }),
    });
    let handler = me.clone();
    mpi.set_handler(Arc::new(move |rank, frame| match frame {
        Ok(frame) if rank == 0 => handler.on_frame(frame),
        Ok(frame) => handler.on_peer_frame(frame),
        Err(e) => {
            eprintln!("dirk worker {id}: a frame from rank {rank} was refused ({e}); stopping");
            (handler.stop)();
        }
    }));
    // Only now: rank 0 sends calls as soon as it reads `Ready`, and the
    // handler above must be the one that gets them.
    let _ = outbox.send(&Message::Ready { threads: me.rt.shared().threads() as u32 }, Blobs::default());
    let _ = stop_rx.recv();
    finish(0)
}

/// What runs one call: the registered task, the thread asked for, and the
/// frame its sent-along arguments lie in.
struct WorkerCall {
    task: u64,
    thread: Option<usize>,
    frame: Arc<Incoming>,
}

impl Worker {
    fn on_frame(self: &Arc<Self>, frame: Incoming) {
        match frame.message() {
            ArchivedMessage::Run { call, task, thread, args, free } => {
                let (call, task) = (call.to_native(), task.to_native());
                if !free.is_empty() {
                    self.store.lock().free(free.iter().map(|o| o.to_native()));
                }
                let thread = thread.as_ref().map(|t| t.to_native() as usize);
                let mut sources = Vec::with_capacity(args.len());
                for arg in args.iter() {
                    let source = match arg {
                        ArchivedArg::Blob(ArchivedBlob::Frame { offset, len }) => {
                            let o = offset.to_native() as usize;
                            Source::Frame(o..o + len.to_native() as usize)
                        }
                        ArchivedArg::Blob(ArchivedBlob::Ring { start, pos, len }) => {
                            Source::Ring { start: start.to_native(), pos: pos.to_native(), len: len.to_native() }
                        }
                        ArchivedArg::Object(o) => match self.store.lock().get(o.to_native()) {
                            Some(bytes) => Source::Object(bytes),
                            None => {
                                let message = format!("this worker keeps no object {o}");
                                return self.fail(call, 0, Outcome::Failed { message }, &[]);
                            }
                        },
                        ArchivedArg::Await(o) => Source::Await(o.to_native()),
                        // A file: opened here, by the worker that runs the task.
                        ArchivedArg::File { path, fingerprint } => {
                            let mapped = dirkfile::map_checked(
                                std::path::Path::new(path.as_str()),
                                fingerprint.to_native(),
                                "the task's argument",
                            );
                            match mapped {
                                Ok(map) => Source::Mapped(Arc::new(map)),
                                Err(e) => {
                                    let message = e.to_string();
                                    return self.fail(call, 0, Outcome::Failed { message }, &[]);
                                }
                            }
                        }
                    };
                    sources.push(source);
                }
                let frame = Arc::new(frame);
                let admitted = self.store.lock().admit(call, WorkerCall { task, thread, frame }, sources);
                match admitted {
                    Admitted::Run(c, sources) => self.start(call, c, sources, true),
                    Admitted::Waits => {}
                    Admitted::Failed(also) => {
                        self.fail(call, 0, Outcome::Failed { message: "an input failed".to_owned() }, &also)
                    }
                }
            }
            ArchivedMessage::Give { object, blob } => {
                let bytes = match blob {
                    ArchivedBlob::Frame { offset, len } => Ok(frame_blob(&frame, offset.to_native(), len.to_native())),
                    ArchivedBlob::Ring { start, pos, len } => {
                        let (start, pos, len) = (start.to_native(), pos.to_native(), len.to_native());
                        match &self.ring_in {
                            Some(ring) => {
                                let bytes = ring.read(start, pos, len).map(copied);
                                ring.release(start, pos + len);
                                bytes
                            }
                            None => Err(Error::Codec("a value in a ring on a link without one".into())),
                        }
                    }
                };
                self.given(object.to_native(), bytes);
            }
            ArchivedMessage::Forward { object, to } => {
                let (object, to) = (object.to_native(), to.to_native());
                if self.peers.is_peer(to) {
                    let bytes = self.store.lock().forward(object, to);
                    // A large one is given by process 0, which knows its size.
                    if let Some(bytes) = bytes.filter(|b| b.len() <= INLINE_MAX) {
                        self.give_to(to, object, &bytes);
                    }
                }
            }
            ArchivedMessage::Withhold { object } => self.withheld(object.to_native()),
            ArchivedMessage::Forget { calls } => self.store.lock().forget(calls.iter().map(|c| c.to_native())),
            ArchivedMessage::Pull { object } => {
                let object = object.to_native();
                let bytes = self.store.lock().get(object);
                if let Some(bytes) = bytes {
                    let mut blobs = Blobs::default();
                    let blob = copy_out(self.ring_out.as_ref(), &mut blobs, &bytes);
                    self.answers.send(&Message::Value { object, blob }, blobs);
                }
            }
            ArchivedMessage::Free { objects } => self.store.lock().free(objects.iter().map(|o| o.to_native())),
            ArchivedMessage::Shutdown => (self.stop)(),
            ArchivedMessage::Cancel { call } => self.cancel(call.to_native()),
            ArchivedMessage::Ping => self.answers.send(&Message::Pong, Blobs::default()),
            ArchivedMessage::StageStart { stage, task, thread, consts, slot, input, output } => {
                let stage = stage.to_native();
                let consts = consts
                    .iter()
                    .map(|b| match b {
                        ArchivedBlob::Frame { offset, len } => {
                            Ok(frame_blob(&frame, offset.to_native(), len.to_native()))
                        }
                        ArchivedBlob::Ring { .. } => Err(Error::Codec("a stage's constant in a ring".to_owned())),
                    })
                    .collect::<Result<Vec<_>, Error>>();
                let started = consts.and_then(|consts| {
                    let thread = thread.as_ref().map(|t| t.to_native() as usize);
                    let (task, slot) = (task.to_native(), slot.to_native() as usize);
                    WorkerStage::start(stage, task, thread, consts, slot, input, output, self.answers.outbox().clone())
                });
                match started {
                    Ok(s) => {
                        self.stages.insert(s.clone());
                        self.rt.shared().enter(|| s.wake());
                    }
                    Err(e) => {
                        let message = format!("the stage could not start on worker {}: {e}", super::current_worker());
                        self.answers.send(&Message::StageFailed { stage, message }, Blobs::default());
                    }
                }
            }
            ArchivedMessage::StageBell { stage } => {
                if let Some(s) = self.stages.get(stage.to_native()) {
                    self.rt.shared().enter(|| s.wake());
                }
            }
            ArchivedMessage::StageStop { stage } => {
                if let Some(s) = self.stages.remove(stage.to_native()) {
                    s.stop();
                }
            }
            _ => {}
        }
    }

    /// A frame from a peer: only `Give`s of values in the frame come that
    /// way (see [`peers`]); anything else is ignored.
    fn on_peer_frame(self: &Arc<Self>, frame: Incoming) {
        if let ArchivedMessage::Give { object, blob: ArchivedBlob::Frame { offset, len } } = frame.message() {
            self.given(object.to_native(), Ok(frame_blob(&frame, offset.to_native(), len.to_native())));
        }
    }

    /// An awaited object arrived (or could not be read: it will not come).
    fn given(self: &Arc<Self>, object: u64, bytes: Result<AlignedVec<16>, Error>) {
        match bytes {
            Ok(bytes) => {
                let produced = self.store.lock().produced(object, Arc::new(bytes));
                self.start_all(produced.ready, true);
            }
            Err(_) => self.withheld(object),
        }
    }

    /// Gives `object` to worker `to` directly; through process 0 when `to`
    /// cannot be reached.
    fn give_to(&self, to: u32, object: u64, bytes: &[u8]) {
        let mut blobs = Blobs::default();
        let blob = blobs.push(bytes);
        let given = self.peers.outbox(to).and_then(|o| o.send(&Message::Give { object, blob }, blobs));
        if given.is_err() {
            let mut blobs = Blobs::default();
            let blob = copy_out(self.ring_out.as_ref(), &mut blobs, bytes);
            self.answers.send(&Message::Relay { object, to, blob }, blobs);
        }
    }

    /// Spawns a call whose arguments are all here. One readied by a frame
    /// (its last input, or the call itself, came from another process) is
    /// urgent: some process waits on the chain it is part of, while calls
    /// a run here readied are this worker's own backlog.
    fn start(self: &Arc<Self>, id: u64, call: WorkerCall, sources: Vec<Source>, urgent: bool) {
        let me = self.clone();
        let options = crate::Options::new().scope(call.thread.map_or_else(Scope::any, Scope::thread));
        let run = move || me.run(id, call.task, &call.frame, sources);
        let name = std::any::type_name_of_val(&run);
        let body = crate::task::spawn::Closure(run);
        let task = self.rt.shared().enter(|| {
            if urgent {
                crate::task::spawn::spawn_urgent(Some(options), name, body)
            } else {
                crate::task::spawn::spawn_body(Some(options), name, body)
            }
        });
        let mut running = self.running.lock();
        match running.remove(&id) {
            Some(None) => {} // already over
            _ => {
                running.insert(id, Some(task));
            }
        }
    }

    /// Call `call` ended here: it can no longer be cancelled.
    fn ended(&self, call: u64) {
        let mut running = self.running.lock();
        if running.remove(&call).is_none() {
            running.insert(call, None);
        }
    }

    /// Process 0 cancelled call `call`: its body sees `dirk::cancelled()`.
    fn cancel(&self, call: u64) {
        let task = self.running.lock().remove(&call).flatten();
        if let Some(task) = task {
            task.cancel();
        }
    }

    fn start_all(self: &Arc<Self>, ready: Vec<Ready<WorkerCall>>, urgent: bool) {
        for (id, call, sources) in ready {
            self.start(id, call, sources, urgent);
        }
    }

    /// `object` will not come: the calls waiting for it fail.
    fn withheld(&self, object: u64) {
        let failed = self.store.lock().failed(object);
        self.inputs_failed(&failed);
    }

    /// Answers call `call` with a failure, and fails the calls that waited
    /// for it and the calls `also`.
    fn fail(&self, call: u64, micros: u64, outcome: Outcome, also: &[u64]) {
        let failed = self.store.lock().failed(call);
        self.answer(call, micros, outcome);
        self.inputs_failed(&failed);
        self.inputs_failed(also);
    }

    /// Answers calls that cannot run: an input will not come.
    fn inputs_failed(&self, calls: &[u64]) {
        for &c in calls {
            self.answer(c, 0, Outcome::Failed { message: "an input failed".to_owned() });
        }
    }

    fn answer(&self, call: u64, micros: u64, outcome: Outcome) {
        self.answers.send(&Message::Done { call, micros, outcome }, Blobs::default());
    }

    /// Runs one call on a compute thread (protocol step 2).
    fn run(self: &Arc<Self>, call: u64, task: u64, frame: &Incoming, sources: Vec<Source>) {
        let start = Instant::now();
        let mut slices = Vec::with_capacity(sources.len());
        let mut failure = None;
        for s in &sources {
            let bytes = match s {
                Source::Frame(r) => Ok(&frame.blobs()[r.clone()]),
                Source::Ring { start, pos, len } => match &self.ring_in {
                    Some(ring) => ring.read(*start, *pos, *len),
                    None => Err(Error::Codec("a value in a ring on a link without one".into())),
                },
                Source::Object(o) => Ok(o.as_slice()),
                Source::Mapped(m) => Ok(&m[dirkfile::HEADER..]),
                Source::Await(o) => Err(Error::Codec(format!("object {o} was started without"))),
            };
            match bytes {
                Ok(b) => slices.push(b),
                Err(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        let outcome = match (failure, registry::by_id(task)) {
            (Some(f), _) => Err(f),
            (None, None) => Err(format!("task id {task:#x} is not registered in this binary")),
            (None, Some(entry)) => {
                RECEIVED.with(|r| {
                    *r.borrow_mut() =
                        slices.iter().map(|s| s.as_ptr() as usize..s.as_ptr() as usize + s.len()).collect()
                });
                let args = RemoteArgs::new(slices);
                let ran = catch_unwind(AssertUnwindSafe(|| (entry.glue.run)(&args)));
                drop(args);
                RECEIVED.with(|r| r.borrow_mut().clear());
                match ran {
                    Ok(Ok(bytes)) => Ok(Ok(bytes)),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(payload) => Ok(Err(crate::error::panic_message(&*payload))),
                }
            }
        };
        for s in &sources {
            if let (Source::Ring { start, pos, len }, Some(ring)) = (s, &self.ring_in) {
                ring.release(*start, pos + len);
            }
        }
        let micros = start.elapsed().as_micros() as u64;
        self.ended(call);
        match outcome {
            Ok(Ok(bytes)) => {
                let bytes = Arc::new(bytes);
                let Produced { ready, forward } = self.store.lock().produced(call, bytes.clone());
                let size = bytes.len() as u64;
                let mut blobs = Blobs::default();
                let outcome = if bytes.len() <= INLINE_MAX {
                    // Peers first: their calls wait; process 0 need not.
                    for to in forward {
                        self.give_to(to, call, &bytes);
                    }
                    Outcome::Value { blob: blobs.push(&bytes), size }
                } else {
                    Outcome::Kept { size }
                };
                // Answered before the calls that waited for it start (see
                // `store`); held while this thread goes straight on to
                // another call (see `answers`).
                let done = Message::Done { call, micros, outcome };
                let goes_on =
                    !ready.is_empty() || crate::exec::context::with_worker(|w| w.is_some_and(|w| w.has_next()));
                if goes_on && u128::from(micros) <= answers::SHORT.as_micros() {
                    self.answers.hold(&done, blobs);
                } else {
                    self.answers.send(&done, blobs);
                }
                self.start_all(ready, false);
            }
            Ok(Err(message)) => self.fail(call, micros, Outcome::Panicked { message }, &[]),
            Err(message) => self.fail(call, micros, Outcome::Failed { message }, &[]),
        }
    }
}

/// A copy of the `len` bytes at `offset` of a frame's blob area (checked
/// to lie inside it when the frame was read), aligned for reading in place.
fn frame_blob(frame: &Incoming, offset: u64, len: u64) -> AlignedVec<16> {
    copied(&frame.blobs()[offset as usize..(offset + len) as usize])
}

/// A copy of an archive's bytes, aligned for reading in place.
fn copied(bytes: &[u8]) -> AlignedVec<16> {
    let mut v = AlignedVec::with_capacity(bytes.len());
    v.extend_from_slice(bytes);
    v
}

/// A worker process's runtime: its threads, with an urgent queue for the
/// calls whose inputs came from other processes, and its GPU processors.
fn worker_pool(id: u32, threads: usize) -> Result<Pool, Error> {
    let mut config = PoolConfig::new(threads);
    config.thread_name = format!("dirk-w{id}");
    config.urgent = true;
    let pool = Pool::start(config)?;
    #[cfg(feature = "gpu")]
    crate::gpu::attach(pool.shared(), None);
    Ok(pool)
}
