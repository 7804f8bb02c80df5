//! The thread-per-core executor: a [`Pool`] of worker threads and the
//! state they share ([`Shared`]); the crate's top (`rt.rs`) builds the
//! user's `Runtime` from a pool and the [`extension`]s that plug into it.
//!
//! One worker thread per core, each with a local deque; an injector for
//! spawns from outside the pool; one pinned queue per thread for tasks
//! scoped to it. Idle workers search briefly and then park (see
//! [`idle`]), so an idle runtime uses no CPU.
//!
//! A runtime's shared state is allocated once and never freed (`&'static`),
//! so that every task can point at its runtime without reference counting.
//! Dropping a [`Pool`] stops and joins its threads and fails the tasks
//! still queued with [`Error::Cancelled`]; the few hundred bytes of shared
//! state stay behind, which matters only to programs that build runtimes in
//! a loop.

pub(crate) mod affinity;
pub(crate) mod blocking;
pub(crate) mod context;
pub(crate) mod deque;
pub(crate) mod extension;
pub(crate) mod idle;
pub(crate) mod wait;
pub(crate) mod worker;

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};

use self::deque::Stealer;
use crossbeam_deque::Injector;

use self::extension::Extension;
use self::idle::Idle;
use self::worker::{Runnable, WorkerLocal};
use crate::Error;
use crate::sched::{self, Available, Options, Placement, Scope};
use crate::sync::latch::OneShot;
use crate::task::cell::tell;
use crate::task::spawn::{Closure, spawn_body_on};

/// Spawns from outside the pool beyond this many queued tasks make the
/// spawning thread wait for the workers, so memory stays bounded: 64 Ki
/// trivial tasks are a few MiB and a few milliseconds of work, enough to
/// keep the workers busy while the spawner sleeps.
const INJECTOR_LIMIT: usize = 1 << 16;

/// What the workers of one runtime share.
pub(crate) struct Shared {
    /// Core worker threads (spares come after them).
    threads: usize,
    injector: Injector<Runnable>,
    /// Tasks to run before any other (see [`Shared::schedule_urgent`]), and
    /// how many are queued there (read on every look for work, by the
    /// runtimes that have the queue: a cluster worker's).
    urgent: Injector<Runnable>,
    pub(crate) urgent_queued: AtomicUsize,
    pub(crate) has_urgent: bool,
    pinned: Box<[Injector<Runnable>]>,
    /// One per core worker, then one per possible spare.
    stealers: Box<[Stealer<Runnable>]>,
    idle: Idle,
    spares: blocking::Spares,
    shutdown: AtomicBool,
    /// Rounds an idle worker searches before it sleeps (see
    /// [`Shared::spin_less`]).
    search_rounds: AtomicU32,
    /// Set when the runtime was configured from bad settings, or could not
    /// start what they asked for (the global runtime's environment, its
    /// workers): every task spawned on it fails with it.
    config_error: OnceLock<Error>,
    /// The extension every ready task goes through, when the runtime has
    /// one (worker processes; see [`extension`]).
    router: OnceLock<&'static dyn Extension>,
    /// The extension whose devices take the tasks placed on them (GPUs;
    /// a build has device placements with the `gpu` feature only).
    #[cfg(feature = "gpu")]
    devices: OnceLock<&'static dyn Extension>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").field("threads", &self.threads()).finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Workers that exist now: the core threads and the spares started.
    pub(crate) fn workers(&self) -> usize {
        self.threads + self.spares.started()
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// The extension every ready task goes through, if any.
    pub(crate) fn router(&self) -> Option<&'static dyn Extension> {
        self.router.get().copied()
    }

    /// The extension that runs tasks placed on devices, if any.
    pub(crate) fn devices(&self) -> Option<&'static dyn Extension> {
        #[cfg(feature = "gpu")]
        return self.devices.get().copied();
        #[cfg(not(feature = "gpu"))]
        None
    }

    /// Makes `router` the runtime's router; `false` if it has one.
    pub(crate) fn set_router(&'static self, router: &'static dyn Extension) -> bool {
        let set = self.router.set(router).is_ok();
        if set {
            let mut routed = ROUTED.lock().unwrap_or_else(|e| e.into_inner());
            routed.retain(|rt| !rt.is_shutdown());
            routed.push(self);
        }
        set
    }

    /// Makes `devices` the runtime's devices; `false` if it has some.
    #[cfg(feature = "gpu")]
    pub(crate) fn set_devices(&self, devices: &'static dyn Extension) -> bool {
        self.devices.set(devices).is_ok()
    }

    /// Why every task spawned on this runtime fails, if it does.
    pub(crate) fn config_error(&self) -> Option<&Error> {
        self.config_error.get()
    }

    /// Fails every task spawned on this runtime from now on with `error`
    /// (the first such error stays).
    pub(crate) fn fail_spawns(&self, error: Error) {
        let _ = self.config_error.set(error);
    }

    /// Where a task with `scope` may run on this runtime, or why nowhere.
    pub(crate) fn place(&self, scope: Option<&Scope>) -> Result<Placement, String> {
        let Some(scope) = scope else { return Ok(Placement::Any) };
        let on = Available {
            threads: self.threads(),
            workers: self.router().and_then(|r| r.workers()),
            gpus: self.devices().and_then(|d| d.gpus()),
        };
        sched::place(scope, &on).map_err(|reason| match (on.workers, scope.worker_ids()) {
            (None, Some(_)) => self.with_other_runtime(reason),
            _ => reason,
        })
    }

    /// `reason` (a scope naming workers that this one-process runtime lacks),
    /// with the runtime that has them, when one is alive: the spawn most
    /// likely was meant for it.
    fn with_other_runtime(&self, reason: String) -> String {
        let routed = ROUTED.lock().unwrap_or_else(|e| e.into_inner());
        let other = routed.iter().filter(|rt| !std::ptr::eq(**rt, self) && !rt.is_shutdown()).find_map(|rt| {
            let workers = rt.router().and_then(|r| r.workers())?;
            Some(workers.size())
        });
        let Some(processes) = other else { return reason };
        let this = if GLOBAL_SHARED.get().is_some_and(|g| std::ptr::eq(*g, self)) {
            "the global runtime, where spawns made outside any runtime's `run` or `enter` go"
        } else {
            "another runtime, which was entered"
        };
        format!(
            "{reason}. This spawn went to {this}; the runtime built with workers ({processes} processes) is another one. \
             Spawn inside `rt.run(|| ..)` or `rt.enter(|| ..)` of that runtime to use its workers"
        )
    }

    /// Makes idle workers sleep after a short spin instead of searching for
    /// tens of microseconds. For the processes of a cluster that share a
    /// host with more threads than it has cores: there a searching worker
    /// takes the core from the I/O thread or the other process that would
    /// bring it work (with 3 processes on 2 cores, the cluster stencil spent
    /// half its time per step on searches).
    pub(crate) fn spin_less(&self) {
        self.search_rounds.store(worker::SHORT_SEARCH_ROUNDS, Ordering::Relaxed);
    }

    /// Whether [`spin_less`](Shared::spin_less) was called.
    pub(crate) fn spins_less(&self) -> bool {
        self.search_rounds.load(Ordering::Relaxed) < worker::SEARCH_ROUNDS
    }

    /// Queues a task whose inputs are all complete.
    pub(crate) fn schedule(&'static self, task: Runnable) {
        if let Some(router) = self.router() {
            return router.route(task);
        }
        let placement = task.header().placement;
        self.queue(task, placement);
    }

    /// Queues a task on this process's threads.
    pub(crate) fn queue(&'static self, task: Runnable, placement: Placement) {
        match placement {
            Placement::Thread(index) => {
                self.pinned[index].push(task);
                self.idle.notify_worker(index);
            }
            Placement::Any | Placement::Workers { .. } => {
                let task = context::with_worker(|worker| match worker {
                    Some(w) if std::ptr::eq(w.shared, self) => {
                        w.push(task);
                        None
                    }
                    _ => Some(task),
                });
                if let Some(task) = task {
                    self.inject(task);
                }
            }
            #[cfg(feature = "gpu")]
            Placement::Gpu(index) => match self.devices() {
                Some(devices) => devices.queue(index, task),
                None => unreachable!("a task was placed on device {index} of a runtime without devices"),
            },
        }
        if self.is_shutdown() {
            self.drain();
        }
    }

    /// Queues a task that gave up its turn (a streaming node that used its
    /// budget) behind the work already queued, so that tasks sharing a
    /// thread take turns: on the worker's own deque when that is empty
    /// (nothing to pass), otherwise at the back of the shared queue.
    pub(crate) fn schedule_yielded(&'static self, task: Runnable) {
        if task.header().placement != Placement::Any {
            return self.schedule(task);
        }
        let task = context::with_worker(|worker| match worker {
            Some(w) if std::ptr::eq(w.shared, self) => w.push_if_idle(task).err(),
            _ => Some(task),
        });
        if let Some(task) = task {
            self.inject(task);
        }
        if self.is_shutdown() {
            self.drain();
        }
    }

    pub(crate) fn inject(&self, task: Runnable) {
        thread_local! {
            static INJECTED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
        }
        self.injector.push(task);
        self.idle.notify_work();
        let n = INJECTED.with(|c| {
            let n = c.get().wrapping_add(1);
            c.set(n);
            n
        });
        if n.is_multiple_of(1024) && self.injector.len() > INJECTOR_LIMIT {
            self.wait_for_room();
        }
    }

    /// Queues a task whose inputs are all complete ahead of any worker's
    /// own work, when this runtime has an urgent queue and any thread may
    /// run the task: one whose inputs came from another process, on the
    /// path that process (or a chain through several) waits on. Work a
    /// worker made ready itself goes on after it. Otherwise it is
    /// scheduled as any other.
    pub(crate) fn schedule_urgent(&'static self, task: Runnable) {
        if !self.has_urgent || task.header().placement != Placement::Any {
            return self.schedule(task);
        }
        self.urgent_queued.fetch_add(1, Ordering::Relaxed);
        self.urgent.push(task);
        self.idle.notify_work();
        if self.is_shutdown() {
            self.drain();
        }
    }

    /// The oldest urgent task, if any.
    #[inline]
    pub(crate) fn take_urgent(&self) -> Option<Runnable> {
        if self.urgent_queued.load(Ordering::Relaxed) == 0 {
            return None;
        }
        loop {
            match self.urgent.steal() {
                crossbeam_deque::Steal::Success(task) => {
                    self.urgent_queued.fetch_sub(1, Ordering::Relaxed);
                    return Some(task);
                }
                crossbeam_deque::Steal::Empty => return None,
                crossbeam_deque::Steal::Retry => {}
            }
        }
    }

    #[cold]
    fn wait_for_room(&self) {
        while self.injector.len() > INJECTOR_LIMIT / 2 && !self.is_shutdown() {
            thread::sleep(std::time::Duration::from_micros(50));
        }
    }

    /// Whether some queue holds a task that worker `me` (or, for `None`,
    /// any worker) could run.
    pub(crate) fn has_work(&self, me: Option<usize>) -> bool {
        !self.injector.is_empty()
            || !self.urgent.is_empty()
            || me.is_some_and(|i| self.pinned.get(i).is_some_and(|p| !p.is_empty()))
            || self.stealers[..self.workers()].iter().any(|s| !s.is_empty())
    }

    /// Fails every task in the shared queues; used once the runtime is
    /// shut down, by its workers and by anyone who queued late.
    pub(crate) fn drain(&self) {
        for queue in [&self.injector, &self.urgent].into_iter().chain(self.pinned.iter()) {
            loop {
                match queue.steal() {
                    crossbeam_deque::Steal::Success(task) => cancel_unrun(task),
                    crossbeam_deque::Steal::Empty => break,
                    crossbeam_deque::Steal::Retry => {}
                }
            }
        }
    }
}

/// Fails a task that will not run because its runtime stopped.
pub(crate) fn cancel_unrun(task: Runnable) {
    if let Some(completion) = task.header().fail(Error::Cancelled { task: task.header().id }) {
        tell(completion);
    }
    task.run();
}

/// The runtime new spawns on this thread go to: the one whose worker this
/// thread is, else the one entered with [`Runtime::enter`], else the global
/// runtime.
#[inline]
pub(crate) fn current() -> &'static Shared {
    context::with_worker(|w| w.map(|w| w.shared)).or_else(context::entered).unwrap_or_else(global)
}

/// The global runtime, built by the function the top of the crate
/// registers here on first use (it assembles the layers: see `rt.rs`).
#[linkme::distributed_slice]
pub(crate) static GLOBAL: [fn() -> &'static Shared];

/// The runtimes that have a router (worker processes), for messages that
/// point from one runtime to another (see `Shared::with_other_runtime`).
static ROUTED: Mutex<Vec<&'static Shared>> = Mutex::new(Vec::new());

/// The global runtime, once started.
static GLOBAL_SHARED: OnceLock<&'static Shared> = OnceLock::new();

fn global() -> &'static Shared {
    GLOBAL_SHARED.get_or_init(|| match GLOBAL[..] {
        [build] => build(),
        _ => unreachable!("the crate registers one global runtime, not {}", GLOBAL.len()),
    })
}

/// The threads of a [`Pool`] when none are asked for: one per core.
pub(crate) fn default_threads() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// The most threads a pool may have.
pub(crate) const MAX_THREADS: usize = 4096;

/// How a [`Pool`] is made.
#[derive(Clone, Debug)]
pub(crate) struct PoolConfig {
    pub(crate) threads: usize,
    pub(crate) pin: bool,
    pub(crate) stack_size: usize,
    pub(crate) thread_name: String,
    pub(crate) max_spares: usize,
    /// How long a spare thread with nothing to do lives on.
    pub(crate) spare_keep_alive: std::time::Duration,
    /// Whether the pool has an urgent queue (see `Shared::schedule_urgent`).
    pub(crate) urgent: bool,
    /// Fails every task spawned on the pool (bad settings of the global runtime).
    pub(crate) config_error: Option<Error>,
}

impl PoolConfig {
    /// `threads` threads with the usual settings.
    pub(crate) fn new(threads: usize) -> PoolConfig {
        PoolConfig {
            threads,
            pin: false,
            stack_size: 8 << 20,
            thread_name: "dirk-worker".to_owned(),
            max_spares: 128,
            spare_keep_alive: std::time::Duration::from_secs(10),
            urgent: false,
            config_error: None,
        }
    }
}

/// The core of a runtime: its worker threads and what they share. Dropping
/// it stops the threads (the extensions hear of it first, see
/// [`extension`]), joins them and fails what is still queued.
pub(crate) struct Pool {
    shared: &'static Shared,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").field("threads", &self.shared.threads()).finish()
    }
}

impl Pool {
    /// Starts the threads; returns once they are all up.
    pub(crate) fn start(config: PoolConfig) -> Result<Pool, Error> {
        let (shared, handles) = start(config)?;
        Ok(Pool { shared, handles: Mutex::new(handles) })
    }

    /// What the threads share.
    pub(crate) fn shared(&self) -> &'static Shared {
        self.shared
    }

    /// Lets the threads of a pool whose handle is never dropped (the
    /// global runtime) live as long as the process.
    pub(crate) fn leak(self) -> &'static Shared {
        let shared = self.shared;
        std::mem::forget(self);
        shared
    }
}

impl Shared {
    /// Runs `f` on the calling thread with this runtime as the one that
    /// spawns go to (`Runtime::enter`).
    pub(crate) fn enter<R>(&'static self, f: impl FnOnce() -> R) -> R {
        let _entered = context::enter_runtime(self);
        f()
    }

    /// Runs `f` on one of this runtime's worker threads and returns its
    /// value (`Runtime::run`); a panic in `f` resumes on the caller.
    pub(crate) fn run<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let on_own_worker = context::with_worker(|w| w.is_some_and(|w| std::ptr::eq(w.shared, self)));
        if on_own_worker {
            return f();
        }
        let latch = OneShot::new();
        let job = RunJob { f: Some(f), latch: &raw const latch };
        let body: Box<dyn FnOnce() + Send + '_> = Box::new(move || job.run());
        // SAFETY: `body` borrows `latch` and whatever `f` borrows. It is
        // either run or dropped unrun, and in both cases `RunJob::drop`
        // drops `f` and only then sets `latch.done`, its last touch of
        // borrowed data. This function does not return before it sees the
        // latch open, so every borrow outlives its use.
        let body: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(body) };
        let options = Options::new().scope(Scope::any());
        drop(spawn_body_on(self, Some(options), "Runtime::run", Closure(body)));
        wait::until(&|| latch.is_open(), None);
        match latch.into_value() {
            Some(Ok(value)) => value,
            Some(Err(panic)) => resume_unwind(panic),
            None => panic!("the runtime stopped before it ran the closure given to `Runtime::run`"),
        }
    }
}

struct RunJob<F, R> {
    f: Option<F>,
    /// A pointer, not a reference: the caller frees the latch as soon as it
    /// sees it open (see `sync::latch`).
    latch: *const OneShot<thread::Result<R>>,
}

// SAFETY: the job carries `f` (`Send`) to a worker and sends an `R` (`Send`)
// back through the latch, whose other parts (a mutex, an atomic, a
// `Thread`) may be used from any thread.
unsafe impl<F: Send, R: Send> Send for RunJob<F, R> {}

impl<F: FnOnce() -> R, R> RunJob<F, R> {
    fn run(mut self) {
        if let Some(f) = self.f.take() {
            let out = catch_unwind(AssertUnwindSafe(f));
            // SAFETY: the latch lives until it is opened, in `drop` below.
            unsafe { &*self.latch }.put(out);
        }
    }
}

impl<F, R> Drop for RunJob<F, R> {
    fn drop(&mut self) {
        drop(self.f.take());
        // SAFETY: the latch lives until it is opened, here, and this job
        // does not touch it again.
        unsafe { OneShot::open(self.latch) };
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let shared = self.shared;
        if let Some(router) = shared.router() {
            router.stop();
        }
        if let Some(devices) = shared.devices() {
            devices.stop();
        }
        shared.shutdown.store(true, Ordering::SeqCst);
        shared.idle.wake_all();
        shared.spares.wake_all();
        let mut handles = std::mem::take(&mut *self.handles.lock().unwrap_or_else(|e| e.into_inner()));
        handles.extend(shared.spares.take_handles());
        let me = thread::current().id();
        for handle in handles {
            if handle.thread().id() != me {
                let _ = handle.join();
            }
        }
        shared.drain();
        // After the drain: a device task waiting for a queued CPU task sees
        // it fail; then what the devices failed is drained in turn.
        for extension in [shared.router(), shared.devices()].into_iter().flatten() {
            extension.stopped();
        }
        shared.drain();
    }
}

fn start(config: PoolConfig) -> Result<(&'static Shared, Vec<JoinHandle<()>>), Error> {
    let threads = config.threads;
    if !(1..=MAX_THREADS).contains(&threads) {
        return Err(Error::Config(format!("a runtime needs between 1 and {MAX_THREADS} threads, not {threads}")));
    }
    let (mut deques, stealers): (Vec<_>, Vec<_>) = (0..threads + config.max_spares).map(|_| worker::deque()).unzip();
    let spare_deques = deques.split_off(threads);
    let shared: &'static Shared = Box::leak(Box::new(Shared {
        threads,
        injector: Injector::new(),
        urgent: Injector::new(),
        urgent_queued: AtomicUsize::new(0),
        has_urgent: config.urgent,
        pinned: (0..threads).map(|_| Injector::new()).collect(),
        stealers: stealers.into(),
        idle: Idle::new(threads, config.max_spares),
        spares: blocking::Spares::new(
            threads,
            spare_deques,
            config.stack_size,
            config.thread_name.clone(),
            config.spare_keep_alive,
        ),
        shutdown: AtomicBool::new(false),
        search_rounds: AtomicU32::new(worker::SEARCH_ROUNDS),
        config_error: config.config_error.map_or_else(OnceLock::new, OnceLock::from),
        router: OnceLock::new(),
        #[cfg(feature = "gpu")]
        devices: OnceLock::new(),
    }));
    let cores = affinity::allowed_cores();
    let pin = config.pin && threads <= cores.len();
    let mut handles = Vec::with_capacity(threads);
    // The runtime is returned once its threads are up: a thread that
    // starts later makes its start-up allocations, and takes its first
    // time slices, in the middle of the program's first work.
    let started = Arc::new(AtomicUsize::new(0));
    let builder = thread::current();
    for (index, deque) in deques.into_iter().enumerate() {
        let core = pin.then(|| cores[index]);
        let (started, builder) = (started.clone(), builder.clone());
        let spawned = thread::Builder::new()
            .name(format!("{}-{index}", config.thread_name))
            .stack_size(config.stack_size)
            .spawn(move || {
                if let Some(core) = core {
                    affinity::pin_current(core);
                }
                WorkerLocal::new(shared, index, deque).main(|| {
                    started.fetch_add(1, Ordering::Release);
                    builder.unpark();
                });
            });
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                shared.shutdown.store(true, Ordering::SeqCst);
                shared.idle.wake_all();
                for handle in handles {
                    let _ = handle.join();
                }
                return Err(Error::Config(format!("could not start worker thread {index}: {e}")));
            }
        }
    }
    while started.load(Ordering::Acquire) < threads {
        if let Some(index) = handles.iter().position(thread::JoinHandle::is_finished) {
            shared.shutdown.store(true, Ordering::SeqCst);
            shared.idle.wake_all();
            for handle in handles {
                let _ = handle.join();
            }
            return Err(Error::Config(format!("worker thread {index} ended as it started")));
        }
        thread::park_timeout(std::time::Duration::from_millis(1));
    }
    Ok((shared, handles))
}
