//! Idle workers: searching, parking and waking without lost wake-ups.
//!
//! A worker out of work first *searches* (spins over the queues for a few
//! tens of microseconds), then *sleeps* (parks its thread). Two counters
//! describe the pool: `searching` and `sleeping`. Whoever queues work calls
//! [`Idle::notify_work`], which costs one fence and two loads, and wakes a
//! sleeper only when nobody is searching. So a busy or spinning pool is
//! never sent a system call.
//!
//! Protocol, with every step `SeqCst`:
//!
//! 1. A producer pushes the task, then reads `searching` and `sleeping`.
//! 2. A worker going to sleep adds itself to `sleepers`, increments
//!    `sleeping`, decrements `searching` if it was searching, then checks
//!    every queue once more before it parks.
//!
//! Either the producer reads the worker's increment (and wakes somebody), or
//! the worker's final check sees the producer's push. A producer that sees a
//! searcher relies on it: that searcher either finds the task or gives up
//! searching *before* its own final check, which then sees the task.
//!
//! A waker moves a sleeper out of `sleepers` and counts it as searching on
//! its behalf, then sets its `notified` flag and unparks it; the woken worker
//! searches and, when it finds work and was the last searcher, wakes the
//! next sleeper if more work is visible (tokio's rule), so sleepers wake one
//! at a time as work appears.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::thread::{self, Thread};
use std::time::Instant;

use crate::sync::Mutex;

/// How a parked worker came back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Woken {
    /// A waker chose it and counted it as searching.
    Notified,
    /// Its own condition became true (it is not searching).
    Ready,
    /// Its deadline passed (it is not searching).
    Timeout,
}

#[derive(Debug, Default)]
struct Slot {
    /// The thread of the worker; a spare that exited and was started again
    /// registers its new thread here.
    thread: Mutex<Option<Thread>>,
    notified: AtomicBool,
    asleep: AtomicBool,
}

#[derive(Debug)]
pub(crate) struct Idle {
    searching: AtomicUsize,
    sleeping: AtomicUsize,
    sleepers: Mutex<Vec<usize>>,
    slots: Box<[Slot]>,
    max_searching: usize,
}

impl Idle {
    /// Idle state for `workers` core workers and up to `spares` spares.
    pub(crate) fn new(workers: usize, spares: usize) -> Self {
        Idle {
            searching: AtomicUsize::new(0),
            sleeping: AtomicUsize::new(0),
            sleepers: Mutex::new(Vec::with_capacity(workers)),
            slots: (0..workers + spares).map(|_| Slot::default()).collect(),
            max_searching: workers.div_ceil(2).max(1),
        }
    }

    /// Records the thread of worker `index`; called by that thread at start.
    pub(crate) fn register(&self, index: usize) {
        *self.slots[index].thread.lock() = Some(thread::current());
    }

    /// Becomes a searcher unless enough workers search already.
    pub(crate) fn try_start_search(&self) -> bool {
        let mut cur = self.searching.load(Ordering::SeqCst);
        loop {
            if cur >= self.max_searching {
                return false;
            }
            match self.searching.compare_exchange_weak(cur, cur + 1, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Stops searching. The last searcher to stop while work is still
    /// visible wakes a sleeper to take it.
    pub(crate) fn end_search(&self, more_work: impl FnOnce() -> bool) {
        if self.searching.fetch_sub(1, Ordering::SeqCst) == 1 && more_work() {
            self.notify_work();
        }
    }

    /// Work was queued that any worker may run.
    #[inline]
    pub(crate) fn notify_work(&self) {
        fence(Ordering::SeqCst);
        if self.searching.load(Ordering::Relaxed) == 0 && self.sleeping.load(Ordering::Relaxed) > 0 {
            self.wake_one();
        }
    }

    /// Work was queued that only worker `index` may run.
    #[inline]
    pub(crate) fn notify_worker(&self, index: usize) {
        fence(Ordering::SeqCst);
        if self.slots[index].asleep.load(Ordering::Relaxed) {
            self.wake(Some(index));
        }
    }

    /// Wakes every sleeper (shutdown).
    pub(crate) fn wake_all(&self) {
        for index in 0..self.slots.len() {
            self.wake(Some(index));
        }
    }

    #[cold]
    fn wake_one(&self) {
        self.wake(None);
    }

    /// Moves one sleeper (`which`, or the most recent) out of `sleepers`,
    /// counts it as searching, and unparks it.
    #[cold]
    fn wake(&self, which: Option<usize>) {
        let mut sleepers = self.sleepers.lock();
        let index = match which {
            Some(index) => match sleepers.iter().position(|&i| i == index) {
                Some(pos) => sleepers.swap_remove(pos),
                None => return,
            },
            None => {
                if self.searching.load(Ordering::SeqCst) != 0 {
                    return; // a searcher will find the work (module note)
                }
                match sleepers.pop() {
                    Some(index) => index,
                    None => return,
                }
            }
        };
        self.sleeping.fetch_sub(1, Ordering::SeqCst);
        self.searching.fetch_add(1, Ordering::SeqCst);
        let slot = &self.slots[index];
        slot.asleep.store(false, Ordering::Relaxed);
        drop(sleepers);
        slot.notified.store(true, Ordering::Release);
        let thread = slot.thread.lock().clone();
        if let Some(thread) = thread {
            thread.unpark();
        }
    }

    /// Parks worker `index` until it is notified, `ready()` holds, or the
    /// deadline passes. `ready` must also cover "some queue has work": it is
    /// checked after announcing the sleep (step 2 of the protocol).
    pub(crate) fn park(
        &self,
        index: usize,
        searching: bool,
        ready: &dyn Fn() -> bool,
        deadline: Option<Instant>,
    ) -> Woken {
        let slot = &self.slots[index];
        {
            let mut sleepers = self.sleepers.lock();
            sleepers.push(index);
            self.sleeping.fetch_add(1, Ordering::SeqCst);
            slot.asleep.store(true, Ordering::SeqCst);
        }
        if searching {
            self.searching.fetch_sub(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        let mut timed_out = false;
        while !ready() {
            if slot.notified.swap(false, Ordering::Acquire) {
                return Woken::Notified;
            }
            match deadline {
                None => thread::park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        timed_out = true;
                        break;
                    }
                    thread::park_timeout(deadline - now);
                }
            }
        }
        {
            let mut sleepers = self.sleepers.lock();
            if let Some(pos) = sleepers.iter().position(|&i| i == index) {
                sleepers.swap_remove(pos);
                self.sleeping.fetch_sub(1, Ordering::SeqCst);
                slot.asleep.store(false, Ordering::Relaxed);
                return if timed_out { Woken::Timeout } else { Woken::Ready };
            }
        }
        // A waker took us out of `sleepers` first and counted us as
        // searching; its `notified` store follows its unlock closely.
        while !slot.notified.swap(false, Ordering::Acquire) {
            thread::yield_now();
        }
        Woken::Notified
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_notification_wakes_a_sleeper_and_counts_it_searching() {
        let idle = Arc::new(Idle::new(2, 0));
        let work = Arc::new(AtomicBool::new(false));
        let (i2, w2) = (idle.clone(), work.clone());
        let sleeper = thread::spawn(move || {
            i2.register(0);
            i2.park(0, false, &|| false, Some(Instant::now() + Duration::from_secs(10)))
        });
        while idle.sleeping.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        w2.store(true, Ordering::SeqCst);
        idle.notify_work();
        assert_eq!(sleeper.join().unwrap(), Woken::Notified);
        assert_eq!(idle.searching.load(Ordering::SeqCst), 1);
        assert_eq!(idle.sleeping.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_searcher_suppresses_wakeups() {
        let idle = Idle::new(2, 0);
        assert!(idle.try_start_search());
        assert!(!idle.try_start_search(), "two workers allow one searcher");
        idle.sleepers.lock().push(1);
        idle.sleeping.store(1, Ordering::SeqCst);
        idle.notify_work();
        assert_eq!(idle.sleepers.lock().len(), 1, "nobody woken while a worker searches");
    }

    #[test]
    fn park_times_out_and_leaves_the_sleepers() {
        let idle = Idle::new(1, 0);
        idle.register(0);
        let woken = idle.park(0, false, &|| false, Some(Instant::now() + Duration::from_millis(20)));
        assert_eq!(woken, Woken::Timeout);
        assert!(idle.sleepers.lock().is_empty());
        assert_eq!(idle.sleeping.load(Ordering::SeqCst), 0);
    }
}
