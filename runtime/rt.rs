//! The runtime as users see it: [`Runtime`] and its [`Builder`], assembled
//! from the layers below. A runtime is the core's [`Pool`] of worker
//! threads, with the extensions that plug into it (see
//! `exec::extension`): the worker processes (`cluster`), when it has some,
//! as its router, and the GPU processors (`gpu`, with the `gpu` feature)
//! as its devices. The global runtime that spawns outside any runtime go to
//! is assembled here too, from the environment.

use std::fmt;

use crate::Error;
use crate::cluster::Cluster;
use crate::cluster::launch::{self, Launch, WORKER_TIMEOUT};
use crate::exec::{self, MAX_THREADS, Pool, PoolConfig, Shared, default_threads};

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
    shared: &'static Shared,
    /// Taken when the runtime is dropped, to stop it before the trace is written.
    pool: Option<Pool>,
    cluster: Option<&'static Cluster>,
    trace_to: Option<std::path::PathBuf>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime").field("threads", &self.threads()).finish()
    }
}

impl Runtime {
    /// Settings for a new runtime.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// let rt = Runtime::builder().build()?; // the defaults: one thread per core
    /// assert!(rt.threads() >= 1);
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub(crate) fn shared(&self) -> &'static Shared {
        self.shared
    }

    /// The number of worker threads.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// let rt = Runtime::builder().threads(2).build()?;
    /// assert_eq!(rt.threads(), 2);
    /// assert!(rt.run(dirk::current_thread).is_some_and(|t| t < rt.threads()));
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn threads(&self) -> usize {
        self.shared().threads()
    }

    /// The number of processes: 1, plus the workers started with
    /// [`Builder::workers`].
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// let rt = Runtime::builder().threads(1).build()?;
    /// assert_eq!(rt.processes(), 1); // no workers: this process only
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn processes(&self) -> usize {
        self.cluster.map_or(1, |c| c.size())
    }

    /// Where process 0 listens for its workers (a Unix socket path), when
    /// the runtime has workers. Connections that do not carry the cluster's
    /// secret are refused.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// let rt = Runtime::builder().threads(1).build()?;
    /// assert_eq!(rt.cluster_address(), None); // no workers, so nothing to listen for
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn cluster_address(&self) -> Option<&str> {
        self.cluster.map(|c| c.address.as_str())
    }

    /// The process ids of the worker processes, in worker order (worker 1
    /// first).
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// let rt = Runtime::builder().threads(1).build()?;
    /// assert!(rt.worker_pids().is_empty()); // with `.workers(2)`: two pids
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn worker_pids(&self) -> Vec<u32> {
        self.cluster.map_or_else(Vec::new, |c| c.links().iter().map(|l| l.pid).collect())
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
        self.shared().enter(f)
    }

    /// Runs `f` on one of this runtime's worker threads and returns its
    /// value; spawns inside `f` (and inside the tasks it spawns) go to this
    /// runtime. A panic in `f` resumes on the caller.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// #[task]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// let rt = Runtime::builder().threads(2).build()?;
    /// let (thread, nine) = rt.run(|| (dirk::current_thread(), spawn!(square(3)).fetch()));
    /// assert!(thread.is_some()); // `f` ran on one of the runtime's threads
    /// assert_eq!(nine?, 9);
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn run<F, R>(&self, f: F) -> R
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        self.shared().run(f)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Stopped before the trace is written, so that it holds every task.
        drop(self.pool.take());
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
    spare_keep_alive: std::time::Duration,
    /// The GPU devices to use instead of the discovered ones (`Builder::gpus`).
    #[cfg(feature = "gpu")]
    gpus: Option<Vec<crate::gpu::Device>>,
}

/// Bytes of each shared-memory ring between process 0 and a worker (one per
/// direction; memory is used only as large values pass).
const DEFAULT_RING_BYTES: u64 = 1 << 30;

impl Default for Builder {
    fn default() -> Self {
        let pool = PoolConfig::new(0);
        Builder {
            threads: None,
            workers: 0,
            worker_threads: None,
            ring_bytes: DEFAULT_RING_BYTES,
            worker_timeout: WORKER_TIMEOUT,
            pin: pool.pin,
            stack_size: pool.stack_size,
            thread_name: pool.thread_name,
            trace_to: None,
            max_spares: pool.max_spares,
            spare_keep_alive: pool.spare_keep_alive,
            #[cfg(feature = "gpu")]
            gpus: None,
        }
    }
}

impl Builder {
    /// The number of worker threads (default: `DIRK_THREADS`, else one per core).
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// let rt = Runtime::builder().threads(4).build()?;
    /// assert_eq!(rt.threads(), 4);
    /// let thread = rt.run(|| dirk::spawn(dirk::current_thread).fetch())?;
    /// assert!(thread.is_some_and(|t| t < 4)); // tasks run on threads 0 to 3
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }

    /// Starts `k` worker processes (workers 1..=k) running this same binary,
    /// beside this process (worker 0). Registered `#[task]` functions run in
    /// any of them; see [`Scope::worker`](crate::Scope::worker).
    ///
    /// The program's entry must be marked `#[dirk::main]` (or the test
    /// `#[dirk::test]`), so that a process started as a worker runs the
    /// worker loop instead of the program. Dropping the runtime stops the
    /// workers.
    ///
    /// A complete program (compiled, not run, as a test: it starts worker
    /// processes):
    ///
    /// ```no_run
    /// use dirk::prelude::*;
    ///
    /// #[task]
    /// fn whoami() -> usize { dirk::current_worker() }
    ///
    /// #[dirk::main]
    /// fn main() -> Result<(), dirk::Error> {
    ///     let rt = Runtime::builder().workers(2).build()?; // workers 1 and 2 run this same binary
    ///     assert_eq!(rt.processes(), 3);
    ///     let on = rt.run(|| spawn!(scope = Scope::worker(2), whoami()).fetch())?;
    ///     assert_eq!(on, 2);
    ///     Ok(())
    /// }
    /// ```
    pub fn workers(mut self, k: usize) -> Self {
        self.workers = k;
        self
    }

    /// The number of threads of each worker process (default: the same as
    /// this runtime's).
    ///
    /// A complete program (compiled, not run, as a test: it starts a worker
    /// process):
    ///
    /// ```no_run
    /// use dirk::prelude::*;
    ///
    /// #[task]
    /// fn whereami() -> (usize, Option<usize>) { (dirk::current_worker(), dirk::current_thread()) }
    ///
    /// #[dirk::main]
    /// fn main() -> Result<(), dirk::Error> {
    ///     let rt = Runtime::builder().threads(4).workers(1).worker_threads(2).build()?;
    ///     let at = rt.run(|| spawn!(scope = Scope::worker(1).thread(1), whereami()).fetch())?;
    ///     assert_eq!(at, (1, Some(1))); // the second of worker 1's two threads
    ///     Ok(())
    /// }
    /// ```
    pub fn worker_threads(mut self, n: usize) -> Self {
        self.worker_threads = Some(n);
        self
    }

    /// The size in bytes of each shared-memory ring that carries large
    /// values between this process and a worker (default 1 GiB; the memory
    /// is used only as values pass). Values larger than the ring go through
    /// the socket.
    ///
    /// A complete program (compiled, not run, as a test: it starts a worker
    /// process):
    ///
    /// ```no_run
    /// use dirk::prelude::*;
    ///
    /// #[task]
    /// fn total(xs: &[f64]) -> f64 { xs.iter().sum() }
    ///
    /// #[dirk::main]
    /// fn main() -> Result<(), dirk::Error> {
    ///     let rt = Runtime::builder().workers(1).ring_bytes(64 << 20).build()?; // 64 MiB each way
    ///     let xs = vec![0.5; 1 << 20]; // 8 MiB: fits in the ring
    ///     assert_eq!(rt.run(|| spawn!(scope = Scope::worker(1), total(xs)).fetch())?, 524288.0);
    ///     Ok(())
    /// }
    /// ```
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
    ///
    /// A complete program (compiled, not run, as a test: it starts a worker
    /// process), in which a stopped worker is lost after the timeout and its
    /// task fails:
    ///
    /// ```no_run
    /// use dirk::prelude::*;
    /// use std::time::Duration;
    ///
    /// #[task]
    /// fn nap(secs: u64) -> u64 { std::thread::sleep(Duration::from_secs(secs)); secs }
    ///
    /// #[dirk::main]
    /// fn main() -> Result<(), dirk::Error> {
    ///     let rt = Runtime::builder().workers(1).worker_timeout(Duration::from_secs(2)).build()?;
    ///     let pid = rt.worker_pids()[0].to_string();
    ///     let hung = rt.run(|| spawn!(scope = Scope::worker(1), nap(60)));
    ///     std::process::Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    ///     assert!(matches!(hung.wait(), Err(Error::WorkerLost { worker: 1, .. })));
    ///     Ok(())
    /// }
    /// ```
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
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// let rt = Runtime::builder().threads(1).pin_threads(true).build()?;
    /// assert_eq!(rt.run(dirk::current_thread), Some(0)); // runs as before, on a fixed core
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn pin_threads(mut self, pin: bool) -> Self {
        self.pin = pin;
        self
    }

    /// The stack size of each worker thread in bytes (default 8 MiB).
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// let rt = Runtime::builder().threads(1).stack_size(64 << 20).build()?;
    /// // 16 MiB on the stack: more than the default allows
    /// let sum = rt.run(|| std::hint::black_box([1u8; 16 << 20]).iter().map(|&b| b as usize).sum::<usize>());
    /// assert_eq!(sum, 16 << 20);
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// The name of the worker threads, to which `-{index}` is appended
    /// (default `dirk-worker`). Linux shows the first 15 bytes.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// let rt = Runtime::builder().threads(2).thread_name("solver").build()?;
    /// let name = rt.run(|| std::thread::current().name().map(str::to_owned));
    /// assert!(name.is_some_and(|n| n == "solver-0" || n == "solver-1"));
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = name.into();
        self
    }

    /// The most spare threads that run tasks while others block in
    /// [`block_in_place`](crate::block_in_place) or [`sleep`](crate::sleep)
    /// (default 128). With 0, a blocking task holds its core.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// let rt = Runtime::builder().threads(1).max_blocking_threads(4).build()?;
    /// let got = rt.run(|| {
    ///     let (tx, rx) = std::sync::mpsc::channel();
    ///     let waiter = dirk::spawn(move || dirk::block_in_place(|| rx.recv().unwrap()));
    ///     dirk::spawn(move || tx.send(5).unwrap()); // runs even while `waiter` blocks the one thread
    ///     waiter.fetch()
    /// })?;
    /// assert_eq!(got, 5);
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn max_blocking_threads(mut self, n: usize) -> Self {
        self.max_spares = n;
        self
    }

    /// How long a spare thread started for a blocking call lives on with
    /// nothing to do before it exits (default 10 s, as tokio's blocking
    /// threads). A burst of blocking calls thus leaves no threads behind,
    /// and the next burst starts them again.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = dirk::Runtime::builder().threads(1).blocking_keep_alive(Duration::from_millis(50)).build()?;
    /// rt.run(|| dirk::spawn(|| dirk::block_in_place(|| std::thread::sleep(Duration::from_millis(10)))).wait())?;
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn blocking_keep_alive(mut self, idle: std::time::Duration) -> Self {
        self.spare_keep_alive = idle;
        self
    }

    /// Records a trace (process-wide, see [`dirk::trace`](crate::trace))
    /// from when the runtime starts, and writes it to `path` as
    /// Chrome/Perfetto JSON when the runtime is dropped.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// let path = std::env::temp_dir().join(format!("dirk-trace-{}.json", std::process::id()));
    /// let rt = Runtime::builder().threads(1).trace(&path).build()?;
    /// rt.run(|| dirk::spawn(|| 1 + 1).wait())?;
    /// drop(rt); // writes the trace
    /// let json = std::fs::read_to_string(&path).unwrap();
    /// std::fs::remove_file(&path).unwrap();
    /// assert!(json.starts_with("{\"traceEvents\":["));
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn trace(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.trace_to = Some(path.into());
        self
    }

    /// The GPU devices this runtime uses, as GPU processors 0, 1, ... in
    /// this order (default: every device CubeCL's runtimes find, see
    /// [`cubecl::Device::enumerate_all`]). A device the machine does not
    /// have stays a processor: the tasks placed on it fail with
    /// [`Error::Gpu`](crate::Error::Gpu).
    ///
    /// ```
    /// use dirk::gpu::Device;
    ///
    /// let first = Device::enumerate_all().into_iter().take(1);
    /// let rt = dirk::Runtime::builder().threads(1).gpus(first).build()?;
    /// assert!(rt.enter(dirk::gpu::processors).len() <= 1);
    /// # Ok::<(), dirk::Error>(())
    /// ```
    #[cfg(feature = "gpu")]
    pub fn gpus(mut self, devices: impl IntoIterator<Item = crate::gpu::Device>) -> Self {
        self.gpus = Some(devices.into_iter().collect());
        self
    }

    /// Starts the runtime's threads.
    ///
    /// Fails with [`Error::Config`] for a thread count of zero or above
    /// 4096, or when the OS refuses to start a thread.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// let rt = Runtime::builder().threads(2).build()?;
    /// assert_eq!(rt.threads(), 2);
    /// assert!(matches!(Runtime::builder().threads(0).build(), Err(Error::Config(_))));
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn build(self) -> Result<Runtime, Error> {
        let threads = match self.threads {
            Some(n) => n,
            None => threads_from_env()?,
        };
        let plan = Launch {
            workers: self.workers,
            threads: self.worker_threads.unwrap_or(threads),
            ring_bytes: self.ring_bytes,
            timeout: self.worker_timeout,
        };
        let trace_to = self.trace_to.clone();
        let pool = Pool::start(self.pool_config(threads, None))?;
        if trace_to.is_some() {
            crate::trace::start();
        }
        let shared = pool.shared();
        let mut rt = Runtime { shared, pool: Some(pool), cluster: None, trace_to };
        self.attach_devices(shared);
        rt.cluster = attach_workers(shared, plan)?;
        Ok(rt)
    }

    /// Gives a new runtime its GPU processors (with the `gpu` feature):
    /// the devices chosen, or those found on first use.
    #[cfg_attr(not(feature = "gpu"), allow(unused_variables))]
    fn attach_devices(&self, shared: &'static Shared) {
        #[cfg(feature = "gpu")]
        crate::gpu::attach(shared, self.gpus.clone());
    }

    fn pool_config(&self, threads: usize, config_error: Option<Error>) -> PoolConfig {
        PoolConfig {
            threads,
            pin: self.pin,
            stack_size: self.stack_size,
            thread_name: self.thread_name.clone(),
            max_spares: self.max_spares,
            spare_keep_alive: self.spare_keep_alive,
            urgent: false,
            config_error,
        }
    }
}

/// Gives a new runtime its worker processes, when the plan asks for some or
/// the process was started by `mpirun` with more ranks: its router.
fn attach_workers(shared: &'static Shared, plan: Launch) -> Result<Option<&'static Cluster>, Error> {
    let cluster = if plan.workers > 0 {
        Some(launch::start(shared, plan)?)
    } else {
        launch::join_mpi(shared, plan.threads, plan.timeout)?
    };
    if let Some(cluster) = cluster {
        shared.set_router(cluster);
    }
    Ok(cluster)
}

/// The global runtime, started on first use with `DIRK_THREADS` threads
/// (default: one per core) and `DIRK_WORKERS` worker processes (default
/// none, or the other ranks under `mpirun`).
#[linkme::distributed_slice(exec::GLOBAL)]
static GLOBAL: fn() -> &'static Shared = global;

fn global() -> &'static Shared {
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
    let builder = Builder::default();
    let pool = match Pool::start(builder.pool_config(threads, config_error)) {
        Ok(pool) => pool,
        Err(e) => panic!("dirk could not start its global runtime: {e}"),
    };
    if std::env::var_os("DIRK_TRACE").is_some() {
        crate::trace::start();
    }
    // Global workers live as long as the process.
    let shared = pool.leak();
    let plan = Launch { workers, threads, ring_bytes: DEFAULT_RING_BYTES, timeout: WORKER_TIMEOUT };
    builder.attach_devices(shared);
    // A failure fails the program's tasks, each with the reason, rather
    // than panicking wherever the first spawn happens to be.
    if let Err(e) = attach_workers(shared, plan) {
        shared.fail_spawns(Error::Config(match workers {
            0 => format!("dirk could not take the MPI ranks as workers: {e}"),
            _ => format!("dirk could not start the {workers} workers DIRK_WORKERS asks for: {e}"),
        }));
    }
    shared
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

fn workers_from_env() -> Result<usize, Error> {
    match std::env::var("DIRK_WORKERS") {
        Err(_) => Ok(0),
        Ok(_) if launch::is_worker() => Ok(0),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n <= 63 => Ok(n),
            _ => Err(Error::Config(format!("DIRK_WORKERS={v:?} is not a worker count between 0 and 63"))),
        },
    }
}
