//! The body of a datadeps task: the user's call with its lifetime erased,
//! the tasks it must run after, and its hold on the region.
//!
//! A datadeps task borrows the caller's data (raw places, and arguments
//! that may borrow for the region's `'scope`), so its closure is not
//! `'static`, while the runtime stores bodies as `'static`. The erasure is
//! sound because of one protocol (the same as `Runtime::run`'s):
//!
//! 1. every body holds a [`Hold`] on its region's [`Latch`], taken before
//!    the task is spawned;
//! 2. the hold is released only when the body is dropped, after the
//!    erased closure (run or not) and everything it captured;
//! 3. the region does not return, nor unwind out of `run`, before the latch
//!    counts no hold: so nothing the closure borrows is freed before the
//!    closure is gone.
//!
//! The last release wakes the region's thread. A releaser touches the
//! latch only until its decrement, except the last, which first copies the
//! waiter's handle and then sets `done`, after which the latch may be freed.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::Thread;

use smallvec::SmallVec;

use crate::exec::wait;
use crate::task::cell::Body;
use crate::task::raw::TaskRef;

/// Counts the bodies of a region still alive, plus one for the region.
pub(crate) struct Latch {
    live: AtomicUsize,
    done: AtomicBool,
    waiter: Thread,
}

impl Latch {
    /// A latch for a region running on the current thread.
    pub(crate) fn new() -> Latch {
        Latch { live: AtomicUsize::new(1), done: AtomicBool::new(false), waiter: std::thread::current() }
    }

    /// A hold for a new body. Called by the region's thread, which holds
    /// its own count until [`finish`](Latch::finish), so the count is not zero.
    pub(crate) fn hold(&self) -> Hold {
        self.live.fetch_add(1, Ordering::Relaxed);
        Hold(NonNull::from(self))
    }

    /// Gives up the region's own count and waits until every body is gone.
    pub(crate) fn finish(&self) {
        if self.live.fetch_sub(1, Ordering::AcqRel) != 1 {
            wait::until(&|| self.done.load(Ordering::Acquire), None);
        }
    }
}

/// A body's share of its region's latch; released when dropped.
pub(crate) struct Hold(NonNull<Latch>);

// SAFETY: a hold only touches the latch's atomics and clones its `Thread`,
// all `Sync`; the latch outlives every hold (module note).
unsafe impl Send for Hold {}

impl Drop for Hold {
    fn drop(&mut self) {
        // SAFETY: the latch lives until the count reaches zero, which this
        // hold's decrement below is part of.
        let latch = unsafe { self.0.as_ref() };
        if latch.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            let waiter = latch.waiter.clone();
            latch.done.store(true, Ordering::Release);
            // `latch` may be freed from here on.
            waiter.unpark();
        }
    }
}

/// A call with its borrows' lifetimes erased; see the module note.
pub(crate) struct Job<R>(Box<dyn FnOnce() -> R + Send + 'static>);

impl<R> Job<R> {
    /// Erases the lifetime of `f`.
    ///
    /// # Safety
    ///
    /// The returned job is run or dropped inside a body that holds the latch
    /// of a region that outlives `'s` (module note).
    pub(crate) unsafe fn new<'s>(f: impl FnOnce() -> R + Send + 's) -> Job<R> {
        let boxed: Box<dyn FnOnce() -> R + Send + 's> = Box::new(f);
        // SAFETY: only the lifetime bound changes; the caller guarantees the
        // borrows outlive every use of the job.
        Job(unsafe {
            std::mem::transmute::<Box<dyn FnOnce() -> R + Send + 's>, Box<dyn FnOnce() -> R + Send + 'static>>(boxed)
        })
    }
}

/// The body of one datadeps task.
///
/// Fields drop in order: the job (and what it captured) before the hold.
pub(crate) struct DepsBody<R> {
    job: Job<R>,
    after: SmallVec<[TaskRef; 4]>,
    hold: Hold,
}

impl<R> DepsBody<R> {
    pub(crate) fn new(job: Job<R>, after: SmallVec<[TaskRef; 4]>, hold: Hold) -> Self {
        DepsBody { job, after, hold }
    }
}

impl<R: Send + Sync + 'static> Body for DepsBody<R> {
    type Output = R;

    fn for_each_input(&self, f: &mut dyn FnMut(&TaskRef)) {
        for task in &self.after {
            f(task);
        }
    }

    fn call(self) -> R {
        let DepsBody { job, after, hold } = self;
        drop(after);
        let value = (job.0)();
        drop(hold);
        value
    }
}
