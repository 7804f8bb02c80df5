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

use std::cell::Cell;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use super::tracker::Tasks;
use crate::exec::wait;
use crate::sync::latch::Count;
use crate::task::cell::Body;
use crate::task::raw::TaskRef;

/// Counts the bodies of a region still alive, plus one for the region and
/// the holds its thread reserved in advance.
pub(crate) struct Latch(Count);

impl Latch {
    /// A latch for a region running on the current thread.
    pub(crate) fn new() -> Latch {
        Latch(Count::new(1))
    }

    /// A hold for a new body, taken from `credits`, counts the region's
    /// thread reserved in advance (a batch at a time, so that making a task
    /// does not write the cache line every finishing task writes). Called by
    /// the region's thread, which holds its own count until
    /// [`finish`](Latch::finish), so the count is not zero.
    pub(crate) fn hold(&self, credits: &Cell<usize>) -> Hold {
        if credits.get() == 0 {
            self.0.add(CREDIT_BATCH);
            credits.set(CREDIT_BATCH);
        }
        credits.set(credits.get() - 1);
        Hold(NonNull::from(self))
    }

    /// Gives back the region's own count and its unused `credits`, then
    /// waits until every body is gone.
    pub(crate) fn finish(&self, credits: &Cell<usize>) {
        let own = 1 + credits.replace(0);
        // SAFETY: this thread owns the latch and waits below until no hold
        // is left, so it is alive throughout.
        if !unsafe { Count::leave(&raw const self.0, own) } {
            wait::until(&|| self.0.is_open(), None);
        }
    }
}

/// Holds reserved at once by a region's thread.
const CREDIT_BATCH: usize = 64;

/// A body's share of its region's latch; released when dropped.
pub(crate) struct Hold(NonNull<Latch>);

// SAFETY: a hold only touches the latch's atomics and clones its `Thread`,
// all `Sync`; the latch outlives every hold (module note).
unsafe impl Send for Hold {}

impl Drop for Hold {
    fn drop(&mut self) {
        // SAFETY: the latch lives until its count falls to zero, which this
        // hold's leaving is part of; the hold does not touch it again.
        unsafe { Count::leave(&raw const (*self.0.as_ptr()).0, 1) };
    }
}

/// Closures up to this many words are stored in the task's own cell.
const INLINE_WORDS: usize = 8;

type Inline = MaybeUninit<[usize; INLINE_WORDS]>;

/// A call with its borrows' lifetimes erased; see the module note.
///
/// A small closure is stored inline, with two functions that know its type
/// (to call it, to drop it); a larger one is boxed as a trait object.
pub(crate) struct Job<R>(Erased<R>);

enum Erased<R> {
    Inline { bytes: Inline, call: unsafe fn(*mut u8) -> R, drop: unsafe fn(*mut u8), live: bool },
    Boxed(Option<Box<dyn FnOnce() -> R + Send + 'static>>),
}

// SAFETY: `Job::new` only takes `Send` closures; the inline bytes are such
// a closure, and the functions beside them are plain function pointers.
unsafe impl<R> Send for Job<R> {}

/// Calls the closure of type `F` stored at `bytes`, moving it out.
///
/// # Safety
///
/// `bytes` holds a live `F`, which the caller will not use again.
unsafe fn call_inline<F: FnOnce() -> R, R>(bytes: *mut u8) -> R {
    // SAFETY: per the contract.
    let f = unsafe { bytes.cast::<F>().read() };
    f()
}

/// Drops the closure of type `F` stored at `bytes`.
///
/// # Safety
///
/// `bytes` holds a live `F`, which the caller will not use again.
unsafe fn drop_inline<F>(bytes: *mut u8) {
    // SAFETY: per the contract.
    unsafe { bytes.cast::<F>().drop_in_place() }
}

impl<R> Job<R> {
    /// Erases the lifetime of `f`.
    ///
    /// # Safety
    ///
    /// The returned job is run or dropped inside a body that holds the latch
    /// of a region that outlives `'s` (module note).
    pub(crate) unsafe fn new<'s, F: FnOnce() -> R + Send + 's>(f: F) -> Job<R> {
        if size_of::<F>() <= size_of::<Inline>() && align_of::<F>() <= align_of::<Inline>() {
            let mut bytes = Inline::uninit();
            // SAFETY: the buffer is large and aligned enough for an `F`.
            unsafe { bytes.as_mut_ptr().cast::<F>().write(f) };
            return Job(Erased::Inline { bytes, call: call_inline::<F, R>, drop: drop_inline::<F>, live: true });
        }
        let boxed: Box<dyn FnOnce() -> R + Send + 's> = Box::new(f);
        // SAFETY: only the lifetime bound changes; the caller guarantees the
        // borrows outlive every use of the job.
        Job(Erased::Boxed(Some(unsafe {
            std::mem::transmute::<Box<dyn FnOnce() -> R + Send + 's>, Box<dyn FnOnce() -> R + Send + 'static>>(boxed)
        })))
    }

    /// Runs the call.
    pub(crate) fn run(mut self) -> R {
        match &mut self.0 {
            Erased::Inline { bytes, call, live, .. } => {
                *live = false;
                // SAFETY: the bytes hold the closure `call` was made for,
                // live until now; `live` is cleared, so it is not dropped again.
                unsafe { call(bytes.as_mut_ptr().cast()) }
            }
            Erased::Boxed(f) => (f.take().expect("a job runs once"))(),
        }
    }
}

impl<R> Drop for Job<R> {
    fn drop(&mut self) {
        if let Erased::Inline { bytes, drop, live: true, .. } = &mut self.0 {
            // SAFETY: the closure was never called, so it is live, and this
            // is the job's last use.
            unsafe { drop(bytes.as_mut_ptr().cast()) }
        }
    }
}

/// The body of one datadeps task.
///
/// Fields drop in order: the job (and what it captured) before the hold.
pub(crate) struct DepsBody<R> {
    job: Job<R>,
    after: Tasks,
    hold: Hold,
}

impl<R> DepsBody<R> {
    pub(crate) fn new(job: Job<R>, after: Tasks, hold: Hold) -> Self {
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
        let value = job.run();
        drop(hold);
        value
    }
}
