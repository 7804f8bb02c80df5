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
//! A worker that found its last task only after looking, and ran it in
//! under a microsecond, is *patient* the next time it is out of work: it
//! announces its search at once but looks at the other workers' deques
//! only every few microseconds, checking the shared queues and its own
//! condition in between. It was taking one tiny task per look from a
//! slower producer, and every look makes that producer's next push wait
//! for its cache lines (see [`SHORT_RUN`]). A longer task makes it quick
//! again.
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
/// out of work announces a search (see the module note); a patient worker
/// (see below) announces it at once.
const QUIET_ROUNDS: u32 = 6;

/// A task found after looking in vain that ran shorter than this makes the
/// worker look at the other workers' deques less often the next time it is
/// out of work.
///
/// Each look at a deque takes its cache lines away from the producer, whose
/// next push then waits for them (about a hundred nanoseconds here). A
/// worker that keeps looking at a producer slower than itself, and finds one
/// short task per look, costs the producer that wait on every task and
/// gains nothing: the producer is the bottleneck. Looking less often lets
/// tasks gather, so one look takes several of them. A task that runs
/// longer than this resets the worker to looking quickly, so work made of
/// longer tasks (where a late start shows) is not delayed.
const SHORT_RUN: std::time::Duration = std::time::Duration::from_micros(1);

/// Spin hints between a patient worker's looks at the other workers'
/// deques: the first step up, and the most (some 6 µs here).
const PATIENCE_MIN: u32 = 32;
const PATIENCE_MAX: u32 = 512;

/// While it waits to look again, a patient worker checks its condition and
/// the shared queues every `PATIENCE_SLICE` spin hints, and yields its core
/// every `PATIENCE_YIELD` hints: a thread outside the pool that waits for a
/// task may share that core.
const PATIENCE_SLICE: u32 = 8;
const PATIENCE_YIELD: u32 = 128;

/// Looks of a patient worker before it searches as usual (some 25 µs).
const PATIENT_ROUNDS: u32 = 4;

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
    /// Spin hints between a patient worker's looks at the other deques; 0
    /// when it looks quickly (see [`SHORT_RUN`]).
    patience: Cell<u32>,
    /// When the task being run was found after looking in vain.
    found_idle: Cell<Option<Instant>>,
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
            patience: Cell::new(0),
            found_idle: Cell::new(None),
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
        let me = context::enter_worker(&self);
        self.shared.idle.register(self.index);
        self.register_with_epoch();
        let shared = self.shared;
        let keep_alive = shared.spares.keep_alive();
        // Since when this spare has had nothing to run.
        let mut idle_since = Instant::now();
        loop {
            match self.next(&|| shared.is_shutdown() || shared.spares.extra(), Some(idle_since + keep_alive)) {
                Next::Task(task) => {
                    run(task);
                    idle_since = Instant::now();
                }
                _ if shared.is_shutdown() => break,
                next => {
                    context::flush_leaves();
                    // Leftover tasks go where the others can take them.
                    while let Some(task) = self.local.pop() {
                        shared.inject(task);
                    }
                    // Idle for the keep-alive time and no longer needed:
                    // exit at once; needed no more before that: wait in the
                    // pool of retired spares for the rest of it.
                    let idle = matches!(next, Next::Timeout);
                    if super::blocking::try_retire(shared)
                        && (idle || !super::blocking::park_retired(shared, self.index, idle_since + keep_alive))
                    {
                        // The thread ends and its (empty) deque waits for
                        // the next spare.
                        drop(me);
                        let (index, local) = (self.index, self.local);
                        super::blocking::give_back(shared, index, local);
                        return;
                    }
                    // Woken to work, or still needed: idle from now.
                    idle_since = Instant::now();
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
        if let Some(found) = self.found_idle.take() {
            self.adapt_patience(found.elapsed());
        }
        if let Some(task) = self.find_task() {
            return Next::Task(task);
        }
        // No task at hand: the next run does not start where the last ended.
        crate::trace::record::pause();
        let patience = self.patience.get();
        if patience == 0 {
            for round in 0..QUIET_ROUNDS {
                for _ in 0..(1u32 << round) {
                    std::hint::spin_loop();
                }
                if let Some(task) = self.find_task() {
                    return Next::Task(self.found_after_looking(task));
                }
                if ready() {
                    return Next::Ready;
                }
            }
        }
        // Out of work: batched group leaves must not wait for more work.
        context::flush_leaves();
        let idle = &self.shared.idle;
        let mut searching = idle.try_start_search();
        if patience > 0 {
            // Searching (so a producer need not wake a sleeper for its
            // task), but looking at the other deques only now and then.
            if let Some(found) = self.look_patiently(patience, ready, deadline) {
                if searching {
                    idle.end_search(|| self.shared.has_work(None));
                }
                return found;
            }
        }
        loop {
            if searching {
                match self.search(ready) {
                    Some(task) => {
                        idle.end_search(|| self.shared.has_work(None));
                        return Next::Task(self.found_after_looking(task));
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

    /// Notes that `task` was found after looking in vain, to time its run.
    fn found_after_looking(&self, task: Runnable) -> Runnable {
        self.found_idle.set(Some(Instant::now()));
        task
    }

    /// Looks less often after a short task found by looking, and quickly
    /// again after a long one (see [`SHORT_RUN`]). A runtime sharing its
    /// cores with more threads spins little, and is never patient.
    fn adapt_patience(&self, ran: std::time::Duration) {
        let patient = ran < SHORT_RUN && !self.shared.spins_less();
        let patience = if patient { (self.patience.get() * 2).clamp(PATIENCE_MIN, PATIENCE_MAX) } else { 0 };
        self.patience.set(patience);
    }

    /// The looks of a patient worker: `None` when they found nothing.
    fn look_patiently(&self, patience: u32, ready: &dyn Fn() -> bool, deadline: Option<Instant>) -> Option<Next> {
        for _ in 0..PATIENT_ROUNDS {
            match self.wait_patiently(patience, ready) {
                Next::Task(task) => return Some(Next::Task(self.found_after_looking(task))),
                Next::Ready => return Some(Next::Ready),
                Next::Timeout => {}
            }
            if let Some(task) = self.find_task() {
                return Some(Next::Task(self.found_after_looking(task)));
            }
            if ready() {
                return Some(Next::Ready);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
        }
        None
    }

    /// Waits `hints` spin hints before the next look at the other workers'
    /// deques, checking `ready` and the shared queues now and then (those a
    /// producer outside the pool fills, who waits for the answer);
    /// `Timeout` when neither gave anything.
    fn wait_patiently(&self, hints: u32, ready: &dyn Fn() -> bool) -> Next {
        for slice in 1..=hints / PATIENCE_SLICE {
            if (slice * PATIENCE_SLICE).is_multiple_of(PATIENCE_YIELD) {
                std::thread::yield_now();
            } else {
                for _ in 0..PATIENCE_SLICE {
                    std::hint::spin_loop();
                }
            }
            if ready() {
                return Next::Ready;
            }
            if let Some(task) = self.take_urgent().or_else(|| self.steal_shared()) {
                return Next::Task(task);
            }
        }
        Next::Timeout
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
        if let Some(task) = self.take_urgent() {
            return Some(task);
        }
        if let Some(task) = self.local.pop() {
            return Some(task);
        }
        self.steal_shared().or_else(|| self.steal_others())
    }

    /// The oldest urgent task, when this worker's runtime has the queue.
    fn take_urgent(&self) -> Option<Runnable> {
        if self.urgent { self.shared.take_urgent() } else { None }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::exec::{Pool, PoolConfig};

    #[test]
    fn short_tasks_found_by_looking_make_a_worker_patient_and_a_long_one_quick_again() {
        let rt = Pool::start(PoolConfig::new(1)).unwrap();
        let (local, _) = deque();
        let worker = WorkerLocal::new(rt.shared(), 0, local);
        let steps: Vec<u32> = (0..6)
            .map(|_| {
                worker.adapt_patience(Duration::from_nanos(200));
                worker.patience.get()
            })
            .collect();
        assert_eq!(steps, [PATIENCE_MIN, 64, 128, 256, PATIENCE_MAX, PATIENCE_MAX]);
        worker.adapt_patience(SHORT_RUN);
        assert_eq!(worker.patience.get(), 0, "a task of a microsecond or more resets it");
        rt.shared().spin_less();
        worker.adapt_patience(Duration::from_nanos(200));
        assert_eq!(worker.patience.get(), 0, "a runtime that spins less is never patient");
    }

    #[test]
    fn a_patient_worker_still_takes_every_task_and_sees_its_condition() {
        let rt = Pool::start(PoolConfig::new(2)).unwrap();
        // Tiny tasks, spawned slower than they run, as make the other
        // worker patient: every task still runs.
        let sum = rt.shared().run(|| {
            let tasks: Vec<_> = (0..2000u64)
                .map(|i| {
                    let t = crate::spawn(move || i);
                    let until = Instant::now() + Duration::from_micros(2);
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                    t
                })
                .collect();
            tasks.into_iter().map(|t| t.fetch().unwrap()).sum::<u64>()
        });
        assert_eq!(sum, 1999 * 2000 / 2);
        // A worker waiting patiently notices its condition between looks.
        let (local, _) = deque();
        let worker = WorkerLocal::new(rt.shared(), 0, local);
        let started = Instant::now();
        let waited = worker.wait_patiently(PATIENCE_MAX, &|| started.elapsed() > Duration::from_nanos(1));
        assert!(matches!(waited, Next::Ready));
        assert!(matches!(worker.wait_patiently(PATIENCE_SLICE, &|| false), Next::Timeout));
    }

    #[test]
    fn a_patient_worker_takes_a_task_from_outside_the_pool_between_looks() {
        use std::sync::Arc;
        use std::sync::atomic::AtomicBool;

        // The pool's one worker is held by a task, so a spawn from this
        // thread stays in the injector for the worker below to find.
        let rt = Pool::start(PoolConfig::new(1)).unwrap();
        let (started, release) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (running, held) = (Arc::clone(&started), Arc::clone(&release));
        let blocker = rt.shared().enter(|| {
            crate::spawn(move || {
                running.store(true, Ordering::Release);
                while !held.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
            })
        });
        while !started.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_micros(50));
        }
        let from_outside = rt.shared().enter(|| crate::spawn(|| 7));
        let (local, _) = deque();
        let worker = WorkerLocal::new(rt.shared(), 0, local);
        let Next::Task(task) = worker.wait_patiently(PATIENCE_MAX, &|| false) else {
            release.store(true, Ordering::Release);
            panic!("the injected task was not taken");
        };
        task.run();
        release.store(true, Ordering::Release);
        assert_eq!(from_outside.fetch().unwrap(), 7);
        blocker.wait().unwrap();
    }
}
