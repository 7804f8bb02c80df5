//! The thread-per-core executor: [`Runtime`], its builder, and the state its
//! workers share.
//!
//! One worker thread per core, each with a local deque; an injector for
//! spawns from outside the pool; one pinned queue per thread for tasks
//! scoped to it. Idle workers search briefly and then park (see
//! [`idle`]), so an idle runtime uses no CPU.
//!
//! A runtime's shared state is allocated once and never freed (`&'static`),
//! so that every task can point at its runtime without reference counting.
//! Dropping a [`Runtime`] stops and joins its threads and fails the tasks
//! still queued with [`Error::Cancelled`]; the few hundred bytes of shared
//! state stay behind, which matters only to programs that build runtimes in
//! a loop.

pub(crate) mod affinity;
pub(crate) mod blocking;
pub(crate) mod context;
pub(crate) mod deque;
pub(crate) mod idle;
pub(crate) mod wait;
pub(crate) mod worker;

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle, Thread};

use self::deque::Stealer;
use crossbeam_deque::Injector;

use self::idle::Idle;
use self::worker::{Runnable, WorkerLocal};
use crate::Error;
use crate::sched::{Options, Placement, Scope};
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
    /// Set when the runtime was configured from bad settings (the global
    /// runtime's environment): every task spawned on it fails with it.
    pub(crate) config_error: Option<Error>,
    /// The worker processes, when the runtime has some.
    pub(crate) cluster: OnceLock<&'static crate::cluster::Cluster>,
    /// The GPU processors, discovered on first use.
    #[cfg(feature = "gpu")]
    pub(crate) gpus: crate::gpu::Processors,
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

    /// Where a task with `scope` may run on this runtime, or why nowhere.
    pub(crate) fn place(&self, scope: Option<&Scope>) -> Result<Placement, String> {
        match (scope, self.cluster.get()) {
            (None, _) => Ok(Placement::Any),
            #[cfg(feature = "gpu")]
            (Some(scope), _) if scope.gpu_id().is_some() => self.gpus.place(scope),
            (Some(scope), Some(cluster)) => cluster.place(scope, self.threads()),
            (Some(scope), None) => scope.place(self.threads()),
        }
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
        if let Some(cluster) = self.cluster.get() {
            return cluster.route(task);
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
            Placement::Gpu(index) => self.gpus.schedule(index, task),
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

/// The global runtime, started on first use with `DIRK_THREADS` threads
/// (default: one per core).
fn global() -> &'static Shared {
    static GLOBAL: OnceLock<&'static Shared> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let (threads, mut config_error) = match threads_from_env() {
            Ok(n) => (n, None),
            Err(e) => (default_threads(), Some(e)),
        };
        let workers = match workers_from_env() {
            Ok(k) => k,
            Err(e) => {
                config_error = config_error.or(Some(e));
                0
            }
        };
        let built = Builder { threads: Some(threads), ..Builder::default() }.start(config_error);
        if std::env::var_os("DIRK_TRACE").is_some() {
            crate::trace::start();
        }
        match built {
            Ok((shared, handles)) => {
                drop(handles); // global workers live as long as the process
                if workers > 0 {
                    let plan = crate::cluster::launch::Plan {
                        workers,
                        threads,
                        ring_bytes: DEFAULT_RING_BYTES,
                        timeout: crate::cluster::launch::WORKER_TIMEOUT,
                    };
                    match crate::cluster::launch::start(shared, plan) {
                        Ok(cluster) => {
                            let _ = shared.cluster.set(cluster);
                        }
                        Err(e) => panic!("dirk could not start the {workers} workers DIRK_WORKERS asks for: {e}"),
                    }
                } else {
                    match crate::cluster::launch::join_mpi(shared, threads, crate::cluster::launch::WORKER_TIMEOUT) {
                        Ok(Some(cluster)) => {
                            let _ = shared.cluster.set(cluster);
                        }
                        Ok(None) => {}
                        Err(e) => panic!("dirk could not take the MPI ranks as workers: {e}"),
                    }
                }
                shared
            }
            Err(e) => panic!("dirk could not start its global runtime: {e}"),
        }
    })
}

fn default_threads() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

fn threads_from_env() -> Result<usize, Error> {
    match std::env::var("DIRK_THREADS") {
        Err(_) => Ok(default_threads()),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
            _ => Err(Error::Config(format!("DIRK_THREADS={v:?} is not a thread count between 1 and {MAX_THREADS}"))),
        },
    }
}

const MAX_THREADS: usize = 4096;

/// Bytes of each shared-memory ring between process 0 and a worker (one per
/// direction; memory is used only as large values pass).
const DEFAULT_RING_BYTES: u64 = 1 << 30;

fn workers_from_env() -> Result<usize, Error> {
    match std::env::var("DIRK_WORKERS") {
        Err(_) => Ok(0),
        Ok(_) if crate::cluster::launch::is_worker() => Ok(0),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n <= 63 => Ok(n),
            _ => Err(Error::Config(format!("DIRK_WORKERS={v:?} is not a worker count between 0 and 63"))),
        },
    }
}

/// A dirk runtime: a pool of worker threads, one per core by default.
///
/// Most programs never make one: a global runtime starts on first use. Make
/// one to choose the thread count, or to stop the threads when done.
///
/// ```
/// use dirk::prelude::*;
///
/// #[task]
/// fn square(x: u64) -> u64 { x * x }
///
/// let rt = Runtime::builder().threads(2).build()?;
/// let total = rt.run(|| {
///     let parts: Vec<_> = (1..=4).map(|i| spawn!(square(i))).collect();
///     parts.iter().map(|t| t.fetch().unwrap()).sum::<u64>()
/// });
/// assert_eq!(total, 30);
/// # Ok::<(), dirk::Error>(())
/// ```
pub struct Runtime {
    pub(crate) shared: &'static Shared,
    handles: Mutex<Vec<JoinHandle<()>>>,
    trace_to: Option<std::path::PathBuf>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime").field("threads", &self.threads()).finish()
    }
}

impl Runtime {
    /// Settings for a new runtime.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The number of worker threads.
    pub fn threads(&self) -> usize {
        self.shared.threads()
    }

    /// The number of processes: 1, plus the workers started with
    /// [`Builder::workers`].
    pub fn processes(&self) -> usize {
        self.shared.cluster.get().map_or(1, |c| c.size())
    }

    /// Where process 0 listens for its workers (a Unix socket path), when
    /// the runtime has workers. Connections that do not carry the cluster's
    /// secret are refused.
    pub fn cluster_address(&self) -> Option<&str> {
        self.shared.cluster.get().map(|c| c.address.as_str())
    }

    /// The process ids of the worker processes, in worker order (worker 1
    /// first).
    pub fn worker_pids(&self) -> Vec<u32> {
        self.shared.cluster.get().map_or_else(Vec::new, |c| c.links().iter().map(|l| l.pid).collect())
    }

    /// Runs `f` on the calling thread with this runtime as the one that
    /// spawns go to (instead of the global runtime). Unlike [`run`](Runtime::run),
    /// `f` stays on the caller's thread, so it need not be `Send`.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// let rt = Runtime::builder().threads(1).build()?;
    /// let thread = rt.enter(|| dirk::spawn(dirk::current_thread).fetch())?;
    /// assert_eq!(thread, Some(0));
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        let _entered = context::enter_runtime(self.shared);
        f()
    }

    /// Runs `f` on one of this runtime's worker threads and returns its
    /// value; spawns inside `f` (and inside the tasks it spawns) go to this
    /// runtime. A panic in `f` resumes on the caller.
    pub fn run<F, R>(&self, f: F) -> R
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let on_own_worker = context::with_worker(|w| w.is_some_and(|w| std::ptr::eq(w.shared, self.shared)));
        if on_own_worker {
            return f();
        }
        let latch = RunLatch { out: Mutex::new(None), done: AtomicBool::new(false), caller: thread::current() };
        let job = RunJob { f: Some(f), latch: &raw const latch };
        let body: Box<dyn FnOnce() + Send + '_> = Box::new(move || job.run());
        // SAFETY: `body` borrows `latch` and whatever `f` borrows. It is
        // either run or dropped unrun, and in both cases `RunJob::drop`
        // drops `f` and only then sets `latch.done`, its last touch of
        // borrowed data. This function does not return before it sees
        // `done`, so every borrow outlives its use.
        let body: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(body) };
        let options = Options::new().scope(Scope::any());
        drop(spawn_body_on(self.shared, Some(options), "Runtime::run", Closure(body)));
        wait::until(&|| latch.done.load(Ordering::Acquire), None);
        match latch.out.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(Ok(value)) => value,
            Some(Err(panic)) => resume_unwind(panic),
            None => panic!("the runtime stopped before it ran the closure given to `Runtime::run`"),
        }
    }
}

struct RunLatch<R> {
    out: Mutex<Option<thread::Result<R>>>,
    done: AtomicBool,
    caller: Thread,
}

struct RunJob<F, R> {
    f: Option<F>,
    /// A pointer, not a reference: the caller frees the latch as soon as it
    /// sees `done`, which may be before `drop` returns, and a reference held
    /// by a running function's argument must outlive that call.
    latch: *const RunLatch<R>,
}

// SAFETY: the job carries `f` (`Send`) to a worker and sends an `R` (`Send`)
// back through the latch, whose other parts (a mutex, an atomic, a
// `Thread`) may be used from any thread.
unsafe impl<F: Send, R: Send> Send for RunJob<F, R> {}

impl<F: FnOnce() -> R, R> RunJob<F, R> {
    fn run(mut self) {
        if let Some(f) = self.f.take() {
            let out = catch_unwind(AssertUnwindSafe(f));
            // SAFETY: the latch lives until `done` is set, in `drop` below.
            let latch = unsafe { &*self.latch };
            *latch.out.lock().unwrap_or_else(|e| e.into_inner()) = Some(out);
        }
    }
}

impl<F, R> Drop for RunJob<F, R> {
    fn drop(&mut self) {
        drop(self.f.take());
        // SAFETY: the latch lives until `done` is set just below; this
        // reference is not used after that.
        let latch = unsafe { &*self.latch };
        let caller = latch.caller.clone();
        latch.done.store(true, Ordering::Release);
        // The latch may be gone from here on.
        caller.unpark();
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(cluster) = self.shared.cluster.get() {
            cluster.shutdown();
        }
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.idle.wake_all();
        self.shared.spares.wake_all();
        let mut handles = std::mem::take(&mut *self.handles.lock().unwrap_or_else(|e| e.into_inner()));
        handles.extend(self.shared.spares.take_handles());
        let me = thread::current().id();
        for handle in handles {
            if handle.thread().id() != me {
                let _ = handle.join();
            }
        }
        self.shared.drain();
        // After the drain: a GPU task waiting for a queued CPU task sees it fail.
        #[cfg(feature = "gpu")]
        self.shared.gpus.shutdown();
        #[cfg(feature = "gpu")]
        self.shared.drain();
        if let Some(path) = self.trace_to.take()
            && let Err(e) = crate::trace::stop().write_chrome(&path)
        {
            eprintln!("dirk: could not write the trace to {}: {e}", path.display());
        }
    }
}

/// Settings for a [`Runtime`]: `Runtime::builder().threads(4).build()?`.
#[derive(Clone, Debug)]
pub struct Builder {
    threads: Option<usize>,
    workers: usize,
    worker_threads: Option<usize>,
    ring_bytes: u64,
    worker_timeout: std::time::Duration,
    pin: bool,
    stack_size: usize,
    thread_name: String,
    trace_to: Option<std::path::PathBuf>,
    max_spares: usize,
    /// Whether the runtime has an urgent queue (see `Shared::schedule_urgent`).
    urgent: bool,
    /// The GPU devices to use instead of the discovered ones (`Builder::gpus`).
    #[cfg(feature = "gpu")]
    pub(crate) gpus: Option<Vec<crate::gpu::Device>>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            threads: None,
            workers: 0,
            worker_threads: None,
            ring_bytes: DEFAULT_RING_BYTES,
            worker_timeout: crate::cluster::launch::WORKER_TIMEOUT,
            pin: false,
            stack_size: 8 << 20,
            thread_name: "dirk-worker".to_owned(),
            trace_to: None,
            urgent: false,
            max_spares: 128,
            #[cfg(feature = "gpu")]
            gpus: None,
        }
    }
}

impl Builder {
    /// The number of worker threads (default: `DIRK_THREADS`, else one per core).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }

    /// Starts `k` worker processes (workers 1..=k) running this same binary,
    /// beside this process (worker 0). Registered `#[task]` functions run in
    /// any of them; see [`Scope::worker`].
    ///
    /// The program's entry must be marked `#[dirk::main]` (or the test
    /// `#[dirk::test]`), so that a process started as a worker runs the
    /// worker loop instead of the program. Dropping the runtime stops the
    /// workers.
    pub fn workers(mut self, k: usize) -> Self {
        self.workers = k;
        self
    }

    /// The number of threads of each worker process (default: the same as
    /// this runtime's).
    pub fn worker_threads(mut self, n: usize) -> Self {
        self.worker_threads = Some(n);
        self
    }

    /// The size in bytes of each shared-memory ring that carries large
    /// values between this process and a worker (default 1 GiB; the memory
    /// is used only as values pass). Values larger than the ring go through
    /// the socket.
    pub fn ring_bytes(mut self, bytes: u64) -> Self {
        self.ring_bytes = bytes.max(1 << 16);
        self
    }

    /// How long process 0 waits to hear from a worker process before it
    /// counts the worker lost (default 30 s): the worker's calls fail with
    /// [`Error::WorkerLost`] (or run again elsewhere, with retries left) and
    /// its process is killed. A quiet worker is asked for an answer, which
    /// its I/O thread gives whatever its tasks are doing, so this bounds
    /// how long a hung or unreachable worker can hold up the program. Zero
    /// turns the check off (a worker paused in a debugger stays).
    pub fn worker_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.worker_timeout = timeout;
        self
    }

    /// Whether to pin worker `i` to the `i`-th core the process may use
    /// (default: off; pinning happens only when there are no more threads
    /// than cores).
    ///
    /// Off by default because a thread outside the pool (the one calling
    /// `fetch`) then shares a core with a pinned worker: with two workers on
    /// two cores, spawn-and-fetch latency measured 2 µs pinned and 0.9 µs
    /// unpinned, while task throughput was the same either way
    /// (`cargo xtask bench`, BENCHMARKS.md). Pin when the pool has the
    /// machine to itself.
    pub fn pin_threads(mut self, pin: bool) -> Self {
        self.pin = pin;
        self
    }

    /// The stack size of each worker thread in bytes (default 8 MiB).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// The name of the worker threads, to which `-{index}` is appended
    /// (default `dirk-worker`). Linux shows the first 15 bytes.
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = name.into();
        self
    }

    /// Gives the runtime an urgent queue, which its threads look at before
    /// their own work (a cluster worker's: calls whose inputs came from
    /// other processes). Without it, urgent tasks queue as others do, and
    /// no look for work pays for the queue.
    pub(crate) fn urgent_queue(mut self) -> Self {
        self.urgent = true;
        self
    }

    /// The most spare threads that run tasks while others block in
    /// [`block_in_place`](crate::block_in_place) or [`sleep`](crate::sleep)
    /// (default 128). With 0, a blocking task holds its core.
    pub fn max_blocking_threads(mut self, n: usize) -> Self {
        self.max_spares = n;
        self
    }

    /// Records a trace (process-wide, see [`dirk::trace`](crate::trace))
    /// from when the runtime starts, and writes it to `path` as
    /// Chrome/Perfetto JSON when the runtime is dropped.
    pub fn trace(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.trace_to = Some(path.into());
        self
    }

    /// Starts the runtime's threads.
    ///
    /// Fails with [`Error::Config`] for a thread count of zero or above
    /// 4096, or when the OS refuses to start a thread.
    pub fn build(self) -> Result<Runtime, Error> {
        let trace_to = self.trace_to.clone();
        let plan = crate::cluster::launch::Plan {
            workers: self.workers,
            threads: 0,
            ring_bytes: self.ring_bytes,
            timeout: self.worker_timeout,
        };
        let worker_threads = self.worker_threads;
        let (shared, handles) = self.start(None)?;
        if trace_to.is_some() {
            crate::trace::start();
        }
        let rt = Runtime { shared, handles: Mutex::new(handles), trace_to };
        let threads = worker_threads.unwrap_or(shared.threads());
        if plan.workers > 0 {
            let cluster = crate::cluster::launch::start(shared, crate::cluster::launch::Plan { threads, ..plan })?;
            let _ = shared.cluster.set(cluster);
        } else if let Some(cluster) = crate::cluster::launch::join_mpi(shared, threads, plan.timeout)? {
            let _ = shared.cluster.set(cluster);
        }
        Ok(rt)
    }

    fn start(self, config_error: Option<Error>) -> Result<(&'static Shared, Vec<JoinHandle<()>>), Error> {
        let threads = match self.threads {
            Some(n) => n,
            None => threads_from_env()?,
        };
        if !(1..=MAX_THREADS).contains(&threads) {
            return Err(Error::Config(format!("a runtime needs between 1 and {MAX_THREADS} threads, not {threads}")));
        }
        let (mut deques, stealers): (Vec<_>, Vec<_>) = (0..threads + self.max_spares).map(|_| worker::deque()).unzip();
        let spare_deques = deques.split_off(threads);
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            threads,
            injector: Injector::new(),
            urgent: Injector::new(),
            urgent_queued: AtomicUsize::new(0),
            has_urgent: self.urgent,
            pinned: (0..threads).map(|_| Injector::new()).collect(),
            stealers: stealers.into(),
            idle: Idle::new(threads, self.max_spares),
            spares: blocking::Spares::new(threads, spare_deques, self.stack_size, self.thread_name.clone()),
            shutdown: AtomicBool::new(false),
            search_rounds: AtomicU32::new(worker::SEARCH_ROUNDS),
            config_error,
            cluster: OnceLock::new(),
            #[cfg(feature = "gpu")]
            gpus: crate::gpu::Processors::new(self.gpus.clone()),
        }));
        let cores = affinity::allowed_cores();
        let pin = self.pin && threads <= cores.len();
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
                .name(format!("{}-{index}", self.thread_name))
                .stack_size(self.stack_size)
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
}
