//! A worker thread: its local run queue, where it looks for work, and the
//! loop it runs until shutdown.
//!
//! Where a worker looks, in order: the urgent queue when its runtime has
//! one (a cluster worker's: tasks whose inputs came from another process,
//! see `Shared::schedule_urgent`; one load when it is empty), its local
//! deque (LIFO: the task it just made ready is hot in cache), its pinned
//! queue (tasks scoped to this thread), the injector (spawns from outside
//! the pool, taken in batches), then the other workers' deques (stealing
//! up to half, at most 32, from a random victim). A worker that finds nothing looks again a few times over
//! a microsecond or two before it announces that it searches: a producer
//! reads that announcement on every push, and a thief that flips it for
//! every task it takes would cost the producer a cache miss per push.
//! Every 61st look starts at the pinned queue and the injector instead, so
//! a worker that keeps feeding itself cannot starve them.
//!
//! Shutdown: the worker finishes the task it is running, fails every task
//! left in its own deque with `Cancelled`, and exits.

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::Shared;
use super::context;
use super::deque::{self, Local, Pointer, Steal, Stealer};
use super::idle::Woken;
use crate::task::listeners::Listener;
use crate::task::raw::{Header, TaskRef};

pub(crate) type Runnable = TaskRef;

impl Pointer for TaskRef {
    fn into_raw(self) -> NonNull<()> {
        let ptr = self.as_ptr().cast();
        std::mem::forget(self);
        ptr
    }

    unsafe fn from_raw(ptr: NonNull<()>) -> Self {
        // SAFETY: `ptr` came from `into_raw`, which kept its reference.
        unsafe { TaskRef::from_raw(ptr.cast()) }
    }
}

/// A worker's deque: room for twice the length at which its worker starts
/// running its own tasks (see `WorkerLocal::push`).
pub(crate) fn deque() -> (Local<Runnable>, Stealer<Runnable>) {
    deque::new(2 * LOCAL_LIMIT)
}

/// A local deque longer than this makes the spawning worker run queued
/// tasks itself, so spawning millions of tasks does not grow memory.
const LOCAL_LIMIT: usize = 1 << 12;

/// Rounds of the search before a worker parks (some tens of microseconds).
pub(crate) const SEARCH_ROUNDS: u32 = 48;

/// Rounds of the search on a host with more threads than cores (see
/// `Shared::spin_less`): the spin-only ones.
pub(crate) const SHORT_SEARCH_ROUNDS: u32 = SPIN_ONLY_ROUNDS;

/// Search rounds that only spin; later rounds yield the core between looks.
/// Yielding early matters when a thread outside the pool (one waiting in
/// `fetch`) shares the searcher's core: a pure spin would keep it off the
/// core until the next scheduler tick.
const SPIN_ONLY_ROUNDS: u32 = 2;

/// Looks at the queues, 1, 2, 4, ... 32 spin hints apart, before a worker
/// out of work announces a search (see the module note).
const QUIET_ROUNDS: u32 = 6;

/// The most tasks one look at the injector moves to the local deque.
const INJECTOR_BATCH: usize = 16;

pub(crate) struct WorkerLocal {
    pub(crate) shared: &'static Shared,
    pub(crate) index: usize,
    local: Local<Runnable>,
    /// Whether the runtime has an urgent queue to look at first.
    urgent: bool,
    tick: Cell<u32>,
    rng: Cell<u32>,
    draining: Cell<bool>,
}

/// What [`WorkerLocal::next`] found.
enum Next {
    Task(Runnable),
    Ready,
    Timeout,
}

impl WorkerLocal {
    pub(crate) fn new(shared: &'static Shared, index: usize, local: Local<Runnable>) -> Self {
        WorkerLocal {
            shared,
            index,
            local,
            urgent: shared.has_urgent,
            tick: Cell::new(0),
            rng: Cell::new(0x9E37_79B9 ^ (index as u32).wrapping_mul(0x85EB_CA6B) | 1),
            draining: Cell::new(false),
        }
    }

    /// A core worker thread's whole life; `started` is called once the
    /// thread is set up (its own allocations made), before it looks for
    /// work.
    pub(crate) fn main(self, started: impl FnOnce()) {
        let _me = context::enter_worker(&self);
        self.shared.idle.register(self.index);
        self.register_with_epoch();
        started();
        let shared = self.shared;
        while let Next::Task(task) = self.next(&|| shared.is_shutdown(), None) {
            run(task);
        }
        context::flush_leaves();
        while let Some(task) = self.local.pop() {
            super::cancel_unrun(task);
        }
        shared.drain();
    }

    /// A spare worker's life (see `blocking`): work while some worker is
    /// blocked, retire to the pool when none needs covering.
    pub(crate) fn spare_main(self) {
        let _me = context::enter_worker(&self);
        self.shared.idle.register(self.index);
        self.register_with_epoch();
        let shared = self.shared;
        loop {
            match self.next(&|| shared.is_shutdown() || shared.spares.extra(), None) {
                Next::Task(task) => run(task),
                _ if shared.is_shutdown() => break,
                _ => {
                    context::flush_leaves();
                    // Leftover tasks go where the others can take them.
                    while let Some(task) = self.local.pop() {
                        shared.inject(task);
                    }
                    if super::blocking::try_retire(shared) {
                        super::blocking::park_retired(shared, self.index);
                    }
                }
            }
        }
        context::flush_leaves();
        while let Some(task) = self.local.pop() {
            super::cancel_unrun(task);
        }
        shared.drain();
    }

    /// A thread's first steal from a crossbeam deque (a compiled plan's
    /// runners use them) registers it with crossbeam's epoch collector,
    /// which allocates. Doing it at start keeps that allocation out of a
    /// program's steady state.
    fn register_with_epoch(&self) {
        let _ = crossbeam_deque::Worker::<u8>::new_lifo().stealer().steal();
    }

    /// Queues a task on this worker's own deque.
    pub(crate) fn push(&self, task: Runnable) {
        match self.local.push(task) {
            // The length bound reads only this worker's own state; the
            // exact length, only when that bound is over the limit.
            Ok(()) if self.local.len_at_most() > LOCAL_LIMIT && !self.draining.get() => {
                if self.local.len() > LOCAL_LIMIT {
                    self.drain_some();
                }
            }
            Ok(()) => {}
            // Full while draining (tasks run by `drain_some` spawn more).
            Err(task) => self.shared.injector.push(task),
        }
        self.shared.idle.notify_work();
    }

    /// Whether this worker has a task queued to run next (its own deque,
    /// or the urgent queue).
    pub(crate) fn has_next(&self) -> bool {
        !self.local.is_empty() || (self.urgent && self.shared.urgent_queued.load(Ordering::Relaxed) != 0)
    }

    /// Queues a task on this worker's own deque if the deque is empty;
    /// hands it back otherwise (see `Shared::schedule_yielded`).
    pub(crate) fn push_if_idle(&self, task: Runnable) -> Result<(), Runnable> {
        if !self.local.is_empty() {
            return Err(task);
        }
        self.local.push(task)?;
        self.shared.idle.notify_work();
        Ok(())
    }

    #[cold]
    fn drain_some(&self) {
        self.draining.set(true);
        while self.local.len() > LOCAL_LIMIT / 2 {
            match self.local.pop() {
                Some(task) => run(task),
                None => break,
            }
        }
        self.draining.set(false);
        // The spawning task's body goes on: the runs it hosted are over.
        crate::trace::record::pause();
    }

    /// Runs other tasks until `done()` holds or the deadline passes; returns
    /// whether `done()` holds. This is how a task waits inside a worker.
    ///
    /// When waiting for a task (`awaited`), the thread registers as its
    /// listener first, so that the completion unparks it if it sleeps.
    pub(crate) fn help_until(
        &self,
        done: &dyn Fn() -> bool,
        awaited: Option<&Header>,
        deadline: Option<Instant>,
    ) -> bool {
        let me = std::thread::current();
        if let Some(header) = awaited
            && header.listeners.register(&header.state, Listener::Thread(me.clone())).is_err()
        {
            return true;
        }
        let finished = loop {
            if done() {
                break true;
            }
            match self.next(done, deadline) {
                Next::Task(task) => run(task),
                Next::Ready => break true,
                Next::Timeout => {
                    if let Some(header) = awaited {
                        header.listeners.unregister_thread(&header.state, &me);
                    }
                    break done();
                }
            }
        };
        // The waiting task's body goes on: the runs it hosted are over.
        crate::trace::record::pause();
        finished
    }

    /// Finds the next task, searching and then parking while there is none,
    /// until `ready()` holds or the deadline passes.
    fn next(&self, ready: &dyn Fn() -> bool, deadline: Option<Instant>) -> Next {
        if let Some(task) = self.find_task() {
            return Next::Task(task);
        }
        // No task at hand: the next run does not start where the last ended.
        crate::trace::record::pause();
        for round in 0..QUIET_ROUNDS {
            for _ in 0..(1u32 << round) {
                std::hint::spin_loop();
            }
            if let Some(task) = self.find_task() {
                return Next::Task(task);
            }
            if ready() {
                return Next::Ready;
            }
        }
        // Out of work: batched group leaves must not wait for more work.
        context::flush_leaves();
        let idle = &self.shared.idle;
        let mut searching = idle.try_start_search();
        loop {
            if searching {
                match self.search(ready) {
                    Some(task) => {
                        idle.end_search(|| self.shared.has_work(None));
                        return Next::Task(task);
                    }
                    None if ready() => {
                        idle.end_search(|| self.shared.has_work(None));
                        return Next::Ready;
                    }
                    None => {}
                }
            } else if ready() {
                return Next::Ready;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                if searching {
                    idle.end_search(|| self.shared.has_work(None));
                }
                return Next::Timeout;
            }
            let wake = || ready() || self.shared.has_work(Some(self.index));
            match idle.park(self.index, searching, &wake, deadline) {
                Woken::Notified => searching = true,
                Woken::Ready | Woken::Timeout => {
                    searching = false;
                    if let Some(task) = self.find_task() {
                        return Next::Task(task);
                    }
                }
            }
        }
    }

    /// Spins over the queues for a while.
    fn search(&self, ready: &dyn Fn() -> bool) -> Option<Runnable> {
        for round in 0..self.shared.search_rounds.load(Ordering::Relaxed) {
            if let Some(task) = self.find_task() {
                return Some(task);
            }
            if ready() {
                return None;
            }
            if round < SPIN_ONLY_ROUNDS {
                for _ in 0..(1 << round) {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::yield_now();
            }
        }
        None
    }

    /// One look at every queue, in the order the module note gives.
    #[inline]
    fn find_task(&self) -> Option<Runnable> {
        let tick = self.tick.get().wrapping_add(1);
        self.tick.set(tick);
        if tick.is_multiple_of(61)
            && let Some(task) = self.steal_shared()
        {
            return Some(task);
        }
        if self.urgent
            && let Some(task) = self.shared.take_urgent()
        {
            return Some(task);
        }
        if let Some(task) = self.local.pop() {
            return Some(task);
        }
        self.steal_shared().or_else(|| self.steal_others())
    }

    fn steal_shared(&self) -> Option<Runnable> {
        if let Some(pinned) = self.shared.pinned.get(self.index)
            && let Some(task) = take(|| pinned.steal().into())
        {
            return Some(task);
        }
        self.steal_injector()
    }

    /// Takes the oldest task of the injector and moves up to half of the
    /// rest (at most `INJECTOR_BATCH`) to the local deque.
    fn steal_injector(&self) -> Option<Runnable> {
        let injector = &self.shared.injector;
        let first = take(|| injector.steal().into())?;
        for _ in 0..(injector.len() / 2).min(INJECTOR_BATCH) {
            let Some(task) = take(|| injector.steal().into()) else { break };
            if let Err(task) = self.local.push(task) {
                injector.push(task);
                break;
            }
        }
        Some(first)
    }

    fn steal_others(&self) -> Option<Runnable> {
        let n = self.shared.workers();
        if n <= 1 {
            return None;
        }
        let start = self.random() as usize % n;
        (0..n)
            .map(|k| (start + k) % n)
            .filter(|&victim| victim != self.index)
            .find_map(|victim| take(|| self.shared.stealers[victim].steal_batch_and_pop(&self.local)))
    }

    fn random(&self) -> u32 {
        // xorshift32
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng.set(x);
        x
    }
}

/// Runs a task on this worker, first flushing group leaves it holds back
/// for another group (see `context::leave_group`).
#[inline]
fn run(task: Runnable) {
    context::flush_leaves_unless(task.header().group);
    task.run();
}

/// Retries a steal until it succeeds or finds the queue empty.
fn take(mut steal: impl FnMut() -> Steal<Runnable>) -> Option<Runnable> {
    loop {
        match steal() {
            Steal::Success(task) => return Some(task),
            Steal::Empty => return None,
            Steal::Retry => std::hint::spin_loop(),
        }
    }
}
