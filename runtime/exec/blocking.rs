//! Blocking inside a task without losing a core: spare worker threads.
//!
//! A task that blocks its thread (a sleep, a lock, blocking I/O) wraps the
//! blocking part in [`block_in_place`]. For as long as it blocks, a spare
//! worker thread runs tasks in its place, so the pool keeps one running
//! thread per core (Go's hand-off on system calls, tokio's
//! `block_in_place`).
//!
//! Protocol, with three counters (all `SeqCst`):
//!
//! 1. Entering: `blocked += 1`; while `running < blocked`, claim a spare by
//!    raising `running` with a compare-and-swap, then wake a parked spare
//!    or start a new one (up to the maximum; past it `running` is lowered
//!    again and the pool simply has one thread fewer for a while).
//! 2. Leaving: `blocked -= 1`. Nothing else: the now extra spare notices.
//! 3. A spare checks `running > blocked` whenever it looks for work; then it
//!    lowers `running` with a compare-and-swap that re-checks the condition
//!    (so two spares cannot both retire below the need), moves any tasks
//!    left in its deque to the injector, and parks in the pool until a
//!    blocker wakes it.
//! 4. A retired spare that nobody wakes for the keep-alive time (10 s by
//!    default) takes itself out of the pool, under the pool's lock, and
//!    exits; its deque (empty) goes back to its slot, and the next blocker
//!    that needs a spare starts a new thread on the first free slot. A
//!    blocker that took the spare out of the pool first has set its
//!    `woken` flag: the spare finds itself gone from the pool, waits for
//!    the flag and works. So a burst of blocking calls leaves no threads
//!    behind, and the threads never outnumber the core threads plus the
//!    maximum of spares.
//!
//! A spare is a full worker: its deque can be stolen from, it searches and
//! sleeps like the others; it only never runs tasks pinned to a thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::sync::Mutex;

use super::deque::Local;
use super::worker::{Runnable, WorkerLocal};
use super::{Shared, context};

pub(crate) struct Spares {
    /// Index of the first spare among the workers (= the core thread count).
    first: usize,
    /// One more than the highest spare number ever started (the deques to
    /// steal from are among theirs).
    started: AtomicUsize,
    running: AtomicUsize,
    blocked: AtomicUsize,
    /// Deques of the spares not running (never started, or exited), by
    /// spare number.
    deques: Mutex<Vec<Option<Local<Runnable>>>>,
    /// Parked spares (worker index, thread).
    pool: Mutex<Vec<(usize, Thread)>>,
    /// Set by a blocker that wakes a parked spare, per spare number.
    woken: Box<[AtomicBool]>,
    handles: Mutex<Vec<JoinHandle<()>>>,
    stack_size: usize,
    name: String,
    /// How long a retired spare waits for a blocker before it exits.
    keep_alive: Duration,
}

impl Spares {
    pub(crate) fn new(
        first: usize,
        deques: Vec<Local<Runnable>>,
        stack_size: usize,
        name: String,
        keep_alive: Duration,
    ) -> Spares {
        let max = deques.len();
        Spares {
            first,
            started: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            blocked: AtomicUsize::new(0),
            deques: Mutex::new(deques.into_iter().map(Some).collect()),
            pool: Mutex::new(Vec::new()),
            woken: (0..max).map(|_| AtomicBool::new(false)).collect(),
            handles: Mutex::new(Vec::new()),
            stack_size,
            name,
            keep_alive,
        }
    }

    /// One more than the highest spare number ever started (the deques to
    /// steal from are among theirs).
    pub(crate) fn started(&self) -> usize {
        self.started.load(Ordering::Acquire)
    }

    /// How long a spare with nothing to do lives on.
    pub(crate) fn keep_alive(&self) -> Duration {
        self.keep_alive
    }

    /// Whether spare worker `index` is no longer needed.
    pub(crate) fn extra(&self) -> bool {
        self.running.load(Ordering::SeqCst) > self.blocked.load(Ordering::SeqCst)
    }

    /// The join handles of every spare started, for shutdown.
    pub(crate) fn take_handles(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut *self.handles.lock())
    }

    /// Wakes every parked spare (shutdown).
    pub(crate) fn wake_all(&self) {
        for (index, thread) in self.pool.lock().drain(..) {
            self.woken[index - self.first].store(true, Ordering::Release);
            thread.unpark();
        }
    }
}

/// Step 1 of the protocol: make sure a spare covers this blocked thread.
fn enter(shared: &'static Shared) {
    let spares = &shared.spares;
    let blocked = spares.blocked.fetch_add(1, Ordering::SeqCst) + 1;
    loop {
        let running = spares.running.load(Ordering::SeqCst);
        if running >= blocked {
            return;
        }
        if spares.running.compare_exchange(running, running + 1, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            if !activate(shared) {
                spares.running.fetch_sub(1, Ordering::SeqCst);
            }
            return;
        }
    }
}

/// Wakes a parked spare, or starts a new one; `false` when the maximum is
/// reached (or the OS refuses a thread).
#[cold]
fn activate(shared: &'static Shared) -> bool {
    let spares = &shared.spares;
    if let Some((index, thread)) = spares.pool.lock().pop() {
        spares.woken[index - spares.first].store(true, Ordering::Release);
        thread.unpark();
        return true;
    }
    let mut deques = spares.deques.lock();
    let Some(number) = deques.iter().position(Option::is_some) else { return false };
    // Handed over through a cell of its own, so that a thread the OS
    // refuses gives the deque back (its stealer is the runtime's).
    let handover = Arc::new(Mutex::new(deques[number].take()));
    let index = spares.first + number;
    // Before the thread starts: its deque is one to steal from from then on.
    spares.started.fetch_max(number + 1, Ordering::AcqRel);
    let theirs = handover.clone();
    let spawned = thread::Builder::new()
        .name(format!("{}-spare-{number}", spares.name))
        .stack_size(spares.stack_size)
        .spawn(move || {
            let deque = theirs.lock().take().expect("a started spare finds its deque");
            WorkerLocal::new(shared, index, deque).spare_main();
        });
    match spawned {
        Ok(handle) => {
            let mut handles = spares.handles.lock();
            handles.retain(|h| !h.is_finished());
            handles.push(handle);
            true
        }
        Err(_) => {
            deques[number] = handover.lock().take();
            false
        }
    }
}

/// Puts the deque of spare worker `index`, which is exiting, back in its
/// slot for the next spare started there.
pub(crate) fn give_back(shared: &Shared, index: usize, deque: Local<Runnable>) {
    let spares = &shared.spares;
    spares.deques.lock()[index - spares.first] = Some(deque);
}

/// Step 3: retire spare `index` if it is still extra; returns whether it did.
/// The caller has moved its leftover tasks out first.
pub(crate) fn try_retire(shared: &Shared) -> bool {
    let spares = &shared.spares;
    loop {
        let running = spares.running.load(Ordering::SeqCst);
        if running <= spares.blocked.load(Ordering::SeqCst) {
            return false;
        }
        if spares.running.compare_exchange(running, running - 1, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            return true;
        }
    }
}

/// Parks a retired spare until a blocker wakes it (`true`), or until
/// `deadline` (the end of its keep-alive) passes with nobody waking it
/// (`false`: the spare is out of the pool and exits), or shutdown (`true`:
/// the caller sees it).
pub(crate) fn park_retired(shared: &Shared, index: usize, deadline: Instant) -> bool {
    let spares = &shared.spares;
    let woken = &spares.woken[index - spares.first];
    spares.pool.lock().push((index, thread::current()));
    loop {
        if woken.swap(false, Ordering::Acquire) || shared.is_shutdown() {
            return true;
        }
        let now = Instant::now();
        if now < deadline {
            thread::park_timeout(deadline - now);
            continue;
        }
        let mut pool = spares.pool.lock();
        if let Some(at) = pool.iter().position(|&(i, _)| i == index) {
            pool.swap_remove(at);
            return false;
        }
        // A blocker took this spare out of the pool: its flag is on the way.
        drop(pool);
        while !woken.swap(false, Ordering::Acquire) && !shared.is_shutdown() {
            thread::park();
        }
        return true;
    }
}

/// Runs `f`, which may block its thread for a long time (a sleep, a lock,
/// blocking I/O), without taking a core from the other tasks: on a worker
/// thread, a spare worker runs tasks meanwhile. Elsewhere it just runs `f`.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let rt = dirk::Runtime::builder().threads(1).build()?;
/// let start = Instant::now();
/// rt.run(|| {
///     dirk::sync(|| {
///         for _ in 0..8 {
///             dirk::spawn(|| dirk::block_in_place(|| std::thread::sleep(Duration::from_millis(50))));
///         }
///     })
/// })?;
/// // Eight blocking tasks on one core overlap instead of taking 400 ms.
/// assert!(start.elapsed() < Duration::from_millis(300));
/// # Ok::<(), dirk::Error>(())
/// ```
pub fn block_in_place<R>(f: impl FnOnce() -> R) -> R {
    let Some(shared) = context::with_worker(|w| w.map(|w| w.shared)) else { return f() };
    // Group leaves held back by this worker must not wait for the blocking call.
    context::flush_leaves();
    enter(shared);
    struct Leave(&'static Shared);
    impl Drop for Leave {
        fn drop(&mut self) {
            self.0.spares.blocked.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let _leave = Leave(shared);
    f()
}
