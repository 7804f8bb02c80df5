//! What the current thread is doing, as thread-locals: which worker it is
//! (if any), which task it runs, which `dirk::sync` group and which
//! `with_options` options new spawns inherit.
//!
//! Every setter returns a guard that restores the previous value when
//! dropped, so nested runs on one thread (a worker helping while it waits)
//! and panics unwinding through a region leave the thread as they found it.

use std::cell::Cell;
use std::ptr;
use std::sync::Arc;

use super::worker::WorkerLocal;
use crate::sched::Options;
use crate::task::group::GroupRef;
use crate::task::raw::Header;

thread_local! {
    static WORKER: Cell<*const WorkerLocal> = const { Cell::new(ptr::null()) };
    static TASK: Cell<*const Header> = const { Cell::new(ptr::null()) };
    static GROUP: Cell<Option<GroupRef>> = const { Cell::new(None) };
    static OPTIONS: Cell<*const Arc<Options>> = const { Cell::new(ptr::null()) };
}

/// Marks the current thread as worker `local` for the life of the guard.
pub(crate) fn enter_worker(local: &WorkerLocal) -> impl Drop + '_ {
    let prev = WORKER.with(|w| w.replace(local));
    Restore(move || WORKER.with(|w| w.set(prev)))
}

/// Runs `f` with the worker the current thread is, if it is one.
#[inline]
pub(crate) fn with_worker<R>(f: impl FnOnce(Option<&WorkerLocal>) -> R) -> R {
    let ptr = WORKER.with(Cell::get);
    // SAFETY: WORKER is non-null only while `enter_worker`'s guard is alive,
    // and that guard borrows the `WorkerLocal`, which therefore outlives
    // this call. Only the owning thread reads its own thread-local.
    f(unsafe { ptr.as_ref() })
}

/// Marks the current thread as running the task whose header is `header`:
/// new spawns join its group and inherit its options.
pub(crate) fn enter_task(header: &Header) -> impl Drop + use<> {
    let prev_task = TASK.with(|t| t.replace(header));
    let prev_group = GROUP.with(|g| g.replace(header.group));
    let opts = header.options.as_ref().map_or(ptr::null(), |o| o as *const Arc<Options>);
    let prev_opts = OPTIONS.with(|o| o.replace(opts));
    Restore(move || {
        TASK.with(|t| t.set(prev_task));
        GROUP.with(|g| g.set(prev_group));
        OPTIONS.with(|o| o.set(prev_opts));
    })
}

/// Runs `f` with the header of the task running on this thread, if any.
pub(crate) fn with_task<R>(f: impl FnOnce(Option<&Header>) -> R) -> R {
    let ptr = TASK.with(Cell::get);
    // SAFETY: TASK is non-null only while `enter_task`'s guard is alive; the
    // runner holds an `Arc` to the task for that whole time, so the header
    // outlives this call.
    f(unsafe { ptr.as_ref() })
}

/// Makes new spawns on this thread join `group` for the life of the guard.
pub(crate) fn enter_group(group: GroupRef) -> impl Drop + use<> {
    let prev = GROUP.with(|g| g.replace(Some(group)));
    Restore(move || GROUP.with(|g| g.set(prev)))
}

/// The group new spawns on this thread join.
#[inline]
pub(crate) fn group() -> Option<GroupRef> {
    GROUP.with(Cell::get)
}

/// Makes new spawns on this thread inherit `options` for the life of the
/// guard. The guard borrows `options`, which keeps the pointer valid.
pub(crate) fn enter_options(options: &Arc<Options>) -> impl Drop + '_ {
    let prev = OPTIONS.with(|o| o.replace(options));
    Restore(move || OPTIONS.with(|o| o.set(prev)))
}

/// The options new spawns on this thread inherit.
#[inline]
pub(crate) fn options() -> Option<Arc<Options>> {
    let ptr = OPTIONS.with(Cell::get);
    // SAFETY: OPTIONS is non-null only while a guard from `enter_options` or
    // `enter_task` is alive, and both keep the pointed-to `Arc` alive (the
    // caller's borrow, or the running task's header).
    unsafe { ptr.as_ref() }.cloned()
}

struct Restore<F: FnMut()>(F);

impl<F: FnMut()> Drop for Restore<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}
