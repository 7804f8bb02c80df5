//! Process 0's side of a cluster: placing tasks on workers, sending calls,
//! taking results, moving values on demand, and losing workers.
//!
//! Protocol for one remote call (call id = the task's id, which is also the
//! id of its result, the *object*, in the worker that keeps it):
//!
//! 1. [`Cluster::route`] (from `Shared::schedule`, once the task's inputs
//!    are complete) picks a worker with the [cost model](crate::sched::cost).
//! 2. [`Cluster::submit`] claims the task, encodes its arguments: a value
//!    here is archived (into the shared-memory ring when large), a value
//!    the chosen worker keeps is named by its object id, a value another
//!    worker keeps is pulled from it and forwarded. When every argument is
//!    ready, a `Run` frame goes out.
//! 3. The worker answers `Done`: a small result comes with it and is
//!    written into the task; a large one stays in the worker (the task
//!    completes `ELSEWHERE`) until someone here needs it
//!    ([`bring_here`](super::bring_here)) or a task on another worker does
//!    (forwarded as in step 2). A registered task routed here reads such a
//!    value in place in the ring instead ([`here`]).
//! 4. When the task's last handle goes, the worker is told to free the
//!    object.
//!
//! A task scoped to one worker usually skips steps 1 and 2: it is sent
//! there when it is spawned and waits there for its inputs (see [`ahead`]);
//! its value goes to the workers whose calls await it from its own worker
//! directly when small, from here (step 3) when large.
//!
//! A lost worker (its connection ended, or it stayed silent past the
//! builder's `worker_timeout`, see [`watch`]) fails the calls it was
//! running with `Error::WorkerLost`, or runs them again elsewhere when they
//! have retries left and their inputs are still available; values it kept
//! are lost, and tasks that need them fail with `Error::WorkerLost`.

mod ahead;
mod encode;
mod finish;
mod here;
mod pulls;
mod watch;

use std::process::Child;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crate::sync::Mutex;
use smallvec::SmallVec;

pub(crate) use self::encode::copy_out;
use self::here::HereCall;
use self::pulls::{blob_len, trace_moved};
use super::IdMap;
use crate::exec::Shared;
use crate::sched::Placement;
use crate::sched::cost::{Candidate, CostModel};
use crate::task::cell;
use crate::task::raw::TaskRef;
use crate::task::registry::ResultGlue;
use crate::task::slots::SlotRef;
use crate::task::state::ELSEWHERE;
use crate::transport::frame::{ArchivedBlob, ArchivedMessage, Arg, Blobs, Message};
use crate::transport::shm::{Consumer, Producer};
use crate::transport::socket::{Incoming, Io, Outbox};
use crate::{Error, trace};

/// Values up to this size travel inside frames; larger ones through the ring.
pub(crate) const INLINE_MAX: usize = 64 << 10;

/// Objects to free that wait for a call to travel with; more are sent alone.
const FREE_BATCH: usize = 256;

/// One worker process, as process 0 sees it.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) threads: usize,
    pub(crate) pid: u32,
    pub(crate) outbox: Outbox,
    /// The shared-memory rings, on one host (not under MPI).
    pub(crate) ring_out: Option<Mutex<Producer>>,
    pub(crate) ring_in: Option<Consumer>,
    pub(crate) alive: AtomicBool,
    /// Whether a frame came since the last heartbeat look (`watch.rs`).
    pub(crate) heard: AtomicBool,
    pub(crate) load: AtomicUsize,
    /// Objects the worker may free, sent with the next call (or in a
    /// batch of their own when many pile up).
    pub(crate) frees: Mutex<Vec<u64>>,
}

/// A call sent (or about to be sent) to a worker.
struct Pending {
    task: TaskRef,
    worker: u32,
    thread: Option<u32>,
    args: Vec<Option<Arg>>,
    blobs: Blobs,
    missing: usize,
    /// When it was sent, on the trace's clock (0 when not tracing).
    sent_ticks: u64,
    /// Whether this side claimed the task (`RUNNING`): at once for a call
    /// routed here, once its inputs are complete for one sent ahead.
    claimed: bool,
    /// Calls sent ahead to other workers that await this call's value:
    /// (their worker, their call).
    watchers: SmallVec<[(u32, u64); 2]>,
    /// The watchers' workers this call's worker was asked to give its
    /// value to directly (`Forward`; a mask of worker ids).
    forwarded: u64,
    /// The answer to a call sent ahead that came before it was claimed.
    early: Option<Incoming>,
    /// A call sent ahead whose task went unrun here (failed or cancelled).
    dead: bool,
}

impl Pending {
    fn new(task: TaskRef, worker: u32, thread: Option<u32>, claimed: bool) -> Pending {
        Pending {
            task,
            worker,
            thread,
            args: Vec::new(),
            blobs: Blobs::default(),
            missing: 0,
            sent_ticks: if claimed && trace::record::on() { trace::record::now() } else { 0 },
            claimed,
            watchers: SmallVec::new(),
            forwarded: 0,
            early: None,
            dead: false,
        }
    }
}

/// A result a worker keeps.
#[derive(Clone, Copy)]
struct Resident {
    worker: u32,
    size: u64,
    fill: Option<ResultGlue>,
    lost: bool,
    /// Other workers given a copy (a mask of worker ids).
    copies: u64,
}

impl Resident {
    fn new(worker: u32, size: u64, fill: Option<ResultGlue>) -> Resident {
        Resident { worker, size, fill, lost: false, copies: 0 }
    }

    /// Whether `worker` holds the value.
    fn held_by(&self, worker: u32) -> bool {
        !self.lost && (self.worker == worker || self.copies & (1 << worker) != 0)
    }
}

/// Why a value is being pulled.
enum PullFor {
    /// Into its task here; then tell `then`.
    Fill { task: TaskRef, then: Then },
    /// Into argument `arg` of pending call `call`.
    Forward { call: u64, arg: usize },
    /// Read in place by argument `arg` of the call `call` run here.
    Here { call: u64, arg: usize },
    /// Given to the workers of calls sent ahead that await it (kept by
    /// worker `from`).
    Give { watchers: SmallVec<[(u32, u64); 2]>, from: u32 },
}

/// Who waits for a value to arrive here.
pub(crate) enum Then {
    Thread(Thread),
    Waker(std::task::Waker),
    Route(TaskRef),
}

/// The cluster, in process 0.
pub(crate) struct Cluster {
    pub(crate) shared: &'static Shared,
    pub(crate) io: Io,
    pub(crate) cookie: u64,
    pub(crate) address: String,
    pub(crate) links: OnceLock<Box<[Link]>>,
    pub(crate) children: Mutex<Vec<(u32, Child)>>,
    pub(crate) cost: CostModel,
    pub(crate) local_load: AtomicUsize,
    pub(crate) stopping: AtomicBool,
    pub(crate) ring_files: Mutex<Vec<std::path::PathBuf>>,
    /// The private directory of the sockets (see `rundir`); none under MPI.
    run_dir: Option<super::rundir::RunDir>,
    /// Streaming stages running on workers.
    pub(crate) streams: super::stream::Stages,
    calls: Mutex<IdMap<Pending>>,
    here_calls: Mutex<IdMap<HereCall>>,
    resident: Mutex<IdMap<Resident>>,
    pulls: Mutex<IdMap<(Vec<PullFor>, Instant)>>,
    failed_pulls: Mutex<IdMap<Error>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("address", &self.address).finish_non_exhaustive()
    }
}

enum Target {
    /// In this process, queued with this placement.
    Here(Placement),
    There(u32, Option<u32>),
    /// Every worker the scope names was lost.
    Lost(u32),
    /// The scope and the task's arguments disagree.
    Refused(String),
}

impl Cluster {
    pub(crate) fn new(
        shared: &'static Shared,
        io: Io,
        cookie: u64,
        address: String,
        run_dir: Option<super::rundir::RunDir>,
    ) -> Cluster {
        Cluster {
            shared,
            io,
            cookie,
            address,
            links: OnceLock::new(),
            children: Mutex::new(Vec::new()),
            cost: CostModel::new(),
            local_load: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            ring_files: Mutex::new(Vec::new()),
            run_dir,
            streams: Default::default(),
            calls: Mutex::new(IdMap::default()),
            resident: Mutex::new(IdMap::default()),
            pulls: Mutex::new(IdMap::default()),
            failed_pulls: Mutex::new(IdMap::default()),
            here_calls: Mutex::new(IdMap::default()),
        }
    }

    pub(crate) fn links(&self) -> &[Link] {
        self.links.get().map_or(&[], |l| l)
    }

    pub(crate) fn link(&self, worker: u32) -> Option<&Link> {
        self.links().get(worker.checked_sub(1)? as usize)
    }

    /// The number of processes: process 0 and its workers.
    pub(crate) fn size(&self) -> usize {
        self.links().len() + 1
    }

    /// Decides where a task whose inputs are complete runs, and sends it
    /// there (protocol step 1).
    pub(crate) fn route(&'static self, task: TaskRef) {
        if task.remote().is_some_and(|r| r.is_ahead()) && self.claim_ahead(&task) {
            return;
        }
        let target = {
            let h = task.header();
            let remote = task.remote();
            match (h.placement, remote) {
                (Placement::Thread(t), _) => Target::Here(Placement::Thread(t)),
                // GPU tasks run on this process's GPU processors.
                #[cfg(feature = "gpu")]
                (Placement::Gpu(i), _) => Target::Here(Placement::Gpu(i)),
                (Placement::Any, None) => Target::Here(Placement::Any),
                (Placement::Workers { thread, .. }, None) => Target::Here(here(thread.map(usize::from))),
                (Placement::Any, Some(r)) => self
                    .pinned(r, u64::MAX)
                    .map_or_else(Target::Refused, |mask| self.choose(&task, r.entry().id, mask, None)),
                (Placement::Workers { mask, thread }, Some(r)) => self
                    .pinned(r, mask)
                    .map_or_else(Target::Refused, |mask| self.choose(&task, r.entry().id, mask, thread.map(u32::from))),
            }
        };
        match target {
            Target::Here(placement) => self.run_here(task, placement),
            Target::There(worker, thread) => self.submit(task, worker, thread),
            Target::Lost(worker) => {
                let h = task.header();
                if let Some(c) = h.fail(Error::WorkerLost { worker, task: h.id }) {
                    cell::tell(c);
                }
                task.run();
            }
            Target::Refused(reason) => {
                let h = task.header();
                let scope = match h.placement {
                    Placement::Workers { mask, .. } => {
                        format!("workers {:?}", (0..64).filter(|w| mask & (1 << w) != 0).collect::<Vec<_>>())
                    }
                    _ => "Scope::any()".to_owned(),
                };
                let error = Error::Scope(crate::ScopeError { task: h.id, name: h.name.clone(), scope, reason });
                if let Some(c) = h.fail(error) {
                    cell::tell(c);
                }
                task.run();
            }
        }
    }

    /// Narrows `mask` to the worker a `Mutable` argument lives on, if any.
    fn pinned(&self, remote: &dyn super::RemoteCall, mask: u64) -> Result<u64, String> {
        let mut pins = Vec::new();
        remote.each_arg(&mut |_, slot, codec| {
            let value = match slot {
                SlotRef::Value(v) => Some(v),
                SlotRef::Task(_, v) => v,
                SlotRef::Local => None,
            };
            if let (Some(v), Some(pin)) = (value, codec.and_then(|c| c.pin))
                && let Some(w) = pin(v)
            {
                pins.push(w);
            }
        });
        pins.dedup();
        match pins.as_slice() {
            [] => Ok(mask),
            [w] if mask & (1 << w) != 0 => Ok(1 << w),
            [w] => Err(format!("an argument lives on worker {w}, which the scope does not name")),
            _ => Err(format!("arguments live on different workers ({pins:?}); a task runs in one")),
        }
    }

    fn choose(&self, task: &TaskRef, id: u64, mask: u64, thread: Option<u32>) -> Target {
        let mut inputs: Vec<(u64, bool)> = Vec::new();
        task.for_each_input(&mut |input| {
            let here = input.header().state.load() & ELSEWHERE == 0;
            inputs.push((input.header().id.get(), here));
        });
        let resident = self.resident.lock();
        let mut candidates = Vec::new();
        for w in 0..self.size() as u32 {
            if mask & (1 << w) == 0 {
                continue;
            }
            let (load, threads) = match w {
                0 => (self.local_load.load(Ordering::Relaxed), self.shared.threads()),
                w => match self.link(w) {
                    Some(l) if l.alive.load(Ordering::Acquire) => (l.load.load(Ordering::Relaxed), l.threads),
                    _ => continue,
                },
            };
            let bytes_to_move = inputs
                .iter()
                .map(|(object, here)| match resident.get(object) {
                    Some(r) if r.worker == w || (w == 0 && *here) => 0,
                    Some(r) => r.size,
                    None => 0,
                })
                .sum();
            candidates.push(Candidate { worker: w, bytes_to_move, load, threads });
        }
        drop(resident);
        match self.cost.choose(id, &candidates) {
            Some(0) => Target::Here(here(thread.map(|t| t as usize))),
            Some(w) => Target::There(w, thread),
            None => Target::Lost(mask.trailing_zeros()),
        }
    }

    /// Queues a task here once every input's value is here.
    fn run_here(&'static self, task: TaskRef, placement: Placement) {
        let mut elsewhere = None;
        task.for_each_input(&mut |input| {
            if elsewhere.is_none() && input.header().state.load() & ELSEWHERE != 0 {
                elsewhere = Some(input.clone());
            }
        });
        if let Some(input) = elsewhere {
            if self.reads_in_place(&task) {
                return self.run_in_place(task, placement, input);
            }
            return self.pull_here(input, Then::Route(task));
        }
        if task.remote().is_some() {
            self.local_load.fetch_add(1, Ordering::Relaxed);
        }
        self.shared.queue(task, placement);
    }

    /// A task of function `id` ran here for `took`.
    pub(crate) fn ran_here(&self, id: u64, took: Duration) {
        self.local_load.fetch_sub(1, Ordering::Relaxed);
        self.cost.learn_run(id, took);
    }

    /// Claims a task and sends it to `worker` (protocol step 2).
    fn submit(&'static self, task: TaskRef, worker: u32, thread: Option<u32>) {
        if !cell::start_elsewhere(&task) {
            return; // failed or cancelled before it started
        }
        let Some(link) = self.link(worker) else { return };
        let call = task.header().id.get();
        let remote = task.remote().expect("a task routed to a worker can run there");
        let mut pending = Pending::new(task.clone(), worker, thread, true);
        let mut forwards = Vec::new();
        let mut failure = None;
        {
            let resident = self.resident.lock();
            remote.each_arg(&mut |i, slot, encode| {
                if failure.is_some() {
                    return;
                }
                let (value, kept) = match slot {
                    SlotRef::Local => {
                        failure = Some(Error::Config(
                            "an argument cannot go to another worker (a list of task handles given as one \
                             argument, or a place borrowed by datadeps!): pass handles as separate arguments, \
                             or scope the task to worker 0"
                                .to_owned(),
                        ));
                        return;
                    }
                    SlotRef::Value(v) => (Some(v), None),
                    SlotRef::Task(input, v) => {
                        (v, resident.get(&input.0.header().id.get()).copied().map(|r| (input.0.header().id.get(), r)))
                    }
                };
                let file = match (value, encode.and_then(|e| e.file)) {
                    (Some(v), Some(where_is)) => where_is(v),
                    _ => None,
                };
                let arg = match (kept, value) {
                    _ if file.is_some() => file.map(|(path, fingerprint)| Arg::File { path, fingerprint }),
                    (Some((object, r)), _) if r.held_by(worker) => Some(Arg::Object(object)),
                    (_, Some(value)) => match encode.map(|e| self.encode(link, &mut pending.blobs, value, e)) {
                        Some(Ok(blob)) => Some(Arg::Blob(blob)),
                        Some(Err(e)) => {
                            failure = Some(e);
                            None
                        }
                        None => unreachable!("a task routed to a worker has an encoder for every argument"),
                    },
                    (Some((object, r)), None) if !r.lost => {
                        forwards.push((object, i));
                        None
                    }
                    (Some((_, r)), None) => {
                        failure = Some(Error::WorkerLost { worker: r.worker, task: task.header().id });
                        None
                    }
                    (None, None) => {
                        failure = Some(Error::Transport("an input's value is nowhere to be found".to_owned()));
                        None
                    }
                };
                pending.args.push(arg);
            });
        }
        if let Some(error) = failure {
            // SAFETY: no reference from `each_arg` is alive; we hold the claim.
            unsafe { remote.release_inputs() };
            return cell::fail_elsewhere(task, error);
        }
        if trace::record::on() {
            for arg in &pending.args {
                if let Some(Arg::Blob(blob)) = arg {
                    trace_moved(call, blob_len(blob), 0, worker);
                }
            }
        }
        pending.missing = forwards.len();
        let ready = pending.missing == 0;
        {
            // Registering the call and checking that its worker is alive
            // are one step under the lock `on_lost` sweeps the calls with:
            // either the sweep finds this call, or this sees the loss.
            let mut calls = self.calls.lock();
            if !link.alive.load(Ordering::Acquire) {
                drop(calls);
                drop(pending);
                return self.lost_before_sent(task);
            }
            link.load.fetch_add(1, Ordering::Relaxed);
            calls.insert(call, pending);
        }
        for (object, arg) in forwards {
            self.pull(object, PullFor::Forward { call, arg });
        }
        if ready {
            self.send_call(call);
        }
    }

    /// A task claimed for a worker that was lost before the call went out:
    /// nothing ran, so it is routed again (to another worker, or failed
    /// with `Error::WorkerLost` when its scope names no other).
    fn lost_before_sent(&'static self, task: TaskRef) {
        if self.stopping.load(Ordering::Acquire) {
            let h = task.header();
            let error = Error::Cancelled { task: h.id };
            if let Some(remote) = task.remote() {
                // SAFETY: we hold the claim; nothing from `each_arg` is alive.
                unsafe { remote.release_inputs() };
            }
            return cell::fail_elsewhere(task, error);
        }
        cell::restart(&task);
        self.route(task);
    }

    fn send_call(&self, call: u64) {
        let mut calls = self.calls.lock();
        let Some(p) = calls.get_mut(&call) else { return };
        let entry = p.task.remote().map(|r| r.entry().id).unwrap_or_default();
        let blobs = std::mem::take(&mut p.blobs);
        let (worker, thread, args) =
            (p.worker, p.thread, p.args.iter().map(|a| a.clone().expect("every argument is ready")).collect());
        drop(calls);
        if let Some(link) = self.link(worker) {
            let free = std::mem::take(&mut *link.frees.lock());
            let _ = link.outbox.send(&Message::Run { call, task: entry, thread, args, free }, blobs);
        }
    }

    /// Handles a frame from `worker` (on the I/O thread).
    pub(crate) fn on_frame(&'static self, worker: u32, frame: Incoming) {
        let Some(link) = self.link(worker) else { return };
        if !link.alive.load(Ordering::Acquire) {
            // Lost while still connected (silent too long): what it says
            // now concerns calls already failed or run elsewhere.
            return;
        }
        link.heard.store(true, Ordering::Relaxed);
        match frame.message() {
            ArchivedMessage::Done { call, .. } => {
                let call = call.to_native();
                let p = {
                    let mut calls = self.calls.lock();
                    match calls.get_mut(&call) {
                        None => return,
                        // Only the worker the call went to answers it.
                        Some(p) if p.worker != worker => return,
                        // Sent ahead and not claimed yet: `claim_ahead` finishes it.
                        Some(p) if !p.claimed && !p.dead => {
                            p.early = Some(frame);
                            return;
                        }
                        Some(_) => calls.remove(&call).expect("present"),
                    }
                };
                self.finish(p, &frame);
            }
            ArchivedMessage::Value { object, blob } => {
                let object = object.to_native();
                let Some((waiting, asked)) = self.pulls.lock().remove(&object) else { return };
                if let ArchivedBlob::Ring { start, pos, len } = blob
                    && waiting.iter().any(|p| matches!(p, PullFor::Here { .. }))
                {
                    // Held for the calls that read it in place here.
                    let held = self.hold(link, start.to_native(), pos.to_native(), len.to_native());
                    if let Ok(h) = &held {
                        self.cost.learn_transfer(h.len() as u64, asked.elapsed());
                    }
                    for purpose in waiting {
                        match (purpose, &held) {
                            (PullFor::Here { call, arg }, held) => {
                                if let (true, Ok(h)) = (trace::record::on(), held) {
                                    trace_moved(call, h.len() as u64, worker, 0);
                                }
                                self.here_arg(call, arg, held.clone());
                            }
                            (purpose, Ok(h)) => self.deliver(object, purpose, Ok(h.bytes())),
                            (purpose, Err(e)) => self.deliver(object, purpose, Err(e.clone())),
                        }
                    }
                    return;
                }
                let _ = self.with_blob(link, &frame, blob, |bytes| {
                    self.cost.learn_transfer(bytes.len() as u64, asked.elapsed());
                    for purpose in waiting {
                        self.deliver(object, purpose, Ok(bytes));
                    }
                    Ok(())
                });
            }
            ArchivedMessage::Relay { object, to, blob } => {
                // A value its worker could not give directly: given from here.
                let (object, to) = (object.to_native(), to.to_native());
                let _ = self.with_blob(link, &frame, blob, |bytes| {
                    self.give_to(to, object, bytes);
                    Ok(())
                });
            }
            ArchivedMessage::StageBell { stage } => self.streams.bell(stage.to_native()),
            ArchivedMessage::StageFailed { stage, message } => {
                self.streams.failed(stage.to_native(), message.to_string());
            }
            _ => {}
        }
    }

    /// `worker`'s connection ended (on the I/O thread).
    pub(crate) fn on_lost(&'static self, worker: u32, why: Error) {
        let Some(link) = self.link(worker) else { return };
        if !link.alive.swap(false, Ordering::AcqRel) {
            return;
        }
        self.streams.lost(worker);
        let stopping = self.stopping.load(Ordering::Acquire);
        if !stopping {
            eprintln!("dirk: lost worker {worker} (pid {}): {why}", link.pid);
        }
        // Values it kept are gone.
        let lost: Vec<u64> = {
            let mut resident = self.resident.lock();
            resident
                .iter_mut()
                .filter(|(_, r)| r.worker == worker)
                .map(|(o, r)| {
                    r.lost = true;
                    *o
                })
                .collect()
        };
        for object in lost {
            let waiting = self.pulls.lock().remove(&object);
            let error = Error::WorkerLost { worker, task: crate::TaskId(object) };
            self.failed_pulls.lock().insert(object, error.clone());
            for purpose in waiting.map(|w| w.0).unwrap_or_default() {
                self.deliver(object, purpose, Err(error.clone()));
            }
        }
        // Calls it was running, and every call sent ahead and not claimed
        // (they may await values it kept): those take the ordinary route.
        let calls: Vec<Pending> = {
            let mut calls = self.calls.lock();
            let ids: Vec<u64> =
                calls.iter().filter(|(_, p)| p.worker == worker || !p.claimed).map(|(id, _)| *id).collect();
            let taken: Vec<Pending> = ids.into_iter().filter_map(|id| calls.remove(&id)).collect();
            // Under the lock: a call sent ahead was sent before its entry
            // could be seen here, so its worker hears `Forget` after `Run`.
            self.forget_ahead(taken.iter().filter(|p| !p.claimed && p.worker != worker));
            taken
        };
        for p in calls.into_iter().filter(|p| p.claimed) {
            link.load.fetch_sub(1, Ordering::Relaxed);
            let h = p.task.header();
            let error =
                if stopping { Error::Cancelled { task: h.id } } else { Error::WorkerLost { worker, task: h.id } };
            let remote = p.task.remote().expect("a claimed remote task keeps its remote form");
            if !stopping && remote.take_retry() {
                cell::restart(&p.task);
                let task = p.task;
                // Routed from a compute thread: encoding may be heavy.
                let cluster: &'static Cluster = self;
                drop(crate::task::spawn::spawn_body_on(
                    self.shared,
                    None,
                    "dirk::retry",
                    crate::task::spawn::Closure(move || cluster.route(task)),
                ));
                continue;
            }
            // SAFETY: we hold the claim; nothing from `each_arg` is alive.
            unsafe { remote.release_inputs() };
            cell::fail_elsewhere(p.task, error);
        }
    }

    /// Stops the workers: asks them to exit, then kills those that do not.
    /// Call `call` was cancelled here: its worker cancels the body it runs.
    pub(crate) fn cancel_call(&'static self, call: u64) {
        let worker = self.calls.lock().get(&call).map(|p| p.worker);
        if let Some(link) = worker.and_then(|w| self.link(w)) {
            let _ = link.outbox.send(&Message::Cancel { call }, Blobs::default());
        }
    }

    pub(crate) fn shutdown(&'static self) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        for link in self.links() {
            let _ = link.outbox.send(&Message::Shutdown, Blobs::default());
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut children = self.children.lock();
        for (_, child) in children.iter_mut() {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                    Ok(None) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        children.clear();
        for path in self.ring_files.lock().drain(..) {
            let _ = std::fs::remove_file(path);
        }
        // Process 0's socket and the workers' (a killed worker cannot
        // remove its own).
        if let Some(dir) = &self.run_dir {
            dir.remove();
        }
        self.io.stop();
        // Whatever the workers' ends did not settle ends now.
        for worker in 1..self.size() as u32 {
            self.on_lost(worker, Error::Transport("the runtime was dropped".to_owned()));
        }
    }
}

/// This process's placement for an optional thread.
fn here(thread: Option<usize>) -> Placement {
    thread.map_or(Placement::Any, Placement::Thread)
}
