//! What the current thread is doing, as thread-locals: which worker it is
//! (if any), or else how it helps while it waits, which task it runs,
//! which `dirk::sync` group and which `with_options` options new spawns
//! inherit.
//!
//! Every setter returns a guard that restores the previous value when
//! dropped, so nested runs on one thread (a worker helping while it waits)
//! and panics unwinding through a region leave the thread as they found it.

use std::cell::{Cell, RefCell};
use std::ptr;
use std::sync::Arc;

use super::Shared;
use super::wait::Awaited;
use super::worker::WorkerLocal;
use crate::sched::Options;
use crate::task::group::GroupRef;
use crate::task::raw::Header;

thread_local! {
    static WORKER: Cell<*const WorkerLocal> = const { Cell::new(ptr::null()) };
    static HELPER: RefCell<Option<Arc<dyn Helper>>> = const { RefCell::new(None) };
    static ENTERED: Cell<Option<&'static Shared>> = const { Cell::new(None) };
    static TASK: Cell<*const Header> = const { Cell::new(ptr::null()) };
    static GROUP: Cell<Membership> = const { Cell::new(Membership::NONE) };
    static OPTIONS: Cell<*const Arc<Options>> = const { Cell::new(ptr::null()) };
    static LEAVES: Cell<(Option<GroupRef>, usize)> = const { Cell::new((None, 0)) };
}

/// Records that a member of `group` ended. On a worker thread the decrement
/// is batched: a worker flushes its batch before it runs a task of another
/// group ([`flush_leaves_unless`]) and before it searches or parks
/// ([`flush_leaves`]). Holding back leaves while running tasks of the same
/// group delays nothing, since the group cannot end before those tasks do.
pub(crate) fn leave_group(group: GroupRef) {
    if WORKER.with(Cell::get).is_null() {
        return group.leave_many(1);
    }
    LEAVES.with(|slot| match slot.get() {
        (Some(g), n) if g == group => slot.set((Some(g), n + 1)),
        (pending, n) => {
            slot.set((Some(group), 1));
            if let Some(g) = pending {
                g.leave_many(n);
            }
        }
    })
}

/// Flushes batched leaves; see [`leave_group`].
pub(crate) fn flush_leaves() {
    if let (Some(group), n) = LEAVES.with(|slot| slot.replace((None, 0))) {
        group.leave_many(n);
    }
}

/// Flushes batched leaves unless they belong to `group` (the group of the
/// task about to run).
#[inline]
pub(crate) fn flush_leaves_unless(group: Option<GroupRef>) {
    let pending = LEAVES.with(|slot| slot.get().0);
    if pending.is_some() && pending != group {
        flush_leaves();
    }
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

/// Makes new spawns on this (non-worker) thread go to `rt` for the life of
/// the guard.
/// How a thread that is no worker of a runtime, but runs jobs of its own
/// (a GPU processor's runner), waits for a task: by running them.
pub(crate) trait Helper: std::any::Any + Send + Sync {
    /// Runs the thread's jobs until `done()` holds; `false` if `awaited`'s
    /// deadline passed first.
    fn help_until(self: Arc<Self>, done: &dyn Fn() -> bool, awaited: Option<Awaited<'_>>) -> bool;
}

/// Makes `helper` the current thread's for the life of the guard.
#[cfg_attr(not(feature = "gpu"), expect(dead_code, reason = "GPU processors' runners are the helpers"))]
pub(crate) fn enter_helper(helper: Arc<dyn Helper>) -> impl Drop + use<> {
    struct Restore(Option<Arc<dyn Helper>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            HELPER.with(|h| *h.borrow_mut() = previous);
        }
    }
    Restore(HELPER.with(|h| h.borrow_mut().replace(helper)))
}

/// The current thread's helper, if it has one.
pub(crate) fn helper() -> Option<Arc<dyn Helper>> {
    HELPER.with(|h| h.borrow().clone())
}

pub(crate) fn enter_runtime(rt: &'static Shared) -> impl Drop + use<> {
    let prev = ENTERED.with(|e| e.replace(Some(rt)));
    Restore(move || ENTERED.with(|e| e.set(prev)))
}

/// The runtime entered on this thread with [`enter_runtime`], if any.
#[inline]
pub(crate) fn entered() -> Option<&'static Shared> {
    ENTERED.with(Cell::get)
}

/// The group that spawns on this thread join, with the joins reserved in
/// advance: the first join of a context is one atomic add, later ones take
/// credits reserved in batches, and a context gives unused credits back when
/// it ends (while it is still a member itself, so the group cannot end early).
#[derive(Clone, Copy)]
struct Membership {
    group: Option<GroupRef>,
    credits: usize,
    joins: usize,
}

impl Membership {
    const NONE: Membership = Membership { group: None, credits: 0, joins: 0 };

    fn of(group: Option<GroupRef>) -> Membership {
        Membership { group, ..Membership::NONE }
    }

    fn end(self) {
        if let (Some(group), credits @ 1..) = (self.group, self.credits) {
            group.give_back(credits);
        }
    }
}

/// Joins to batch once a context has joined this many times.
const CREDIT_BATCH: usize = 32;

/// Marks the current thread as running the task whose header is `header`:
/// new spawns join its group and inherit its options.
pub(crate) fn enter_task(header: &Header) -> impl Drop + use<> {
    let prev_task = TASK.with(|t| t.replace(header));
    let prev_group = GROUP.with(|g| g.replace(Membership::of(header.group)));
    let opts = header.options.as_ref().map_or(ptr::null(), |o| o as *const Arc<Options>);
    let prev_opts = OPTIONS.with(|o| o.replace(opts));
    Restore(move || {
        TASK.with(|t| t.set(prev_task));
        GROUP.with(|g| g.replace(prev_group)).end();
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
    let prev = GROUP.with(|g| g.replace(Membership::of(Some(group))));
    Restore(move || GROUP.with(|g| g.replace(prev)).end())
}

/// Joins a new task to the group of this thread's context, if any, and
/// returns that group.
#[inline]
pub(crate) fn join_group() -> Option<GroupRef> {
    GROUP.with(|slot| {
        let mut m = slot.get();
        let group = m.group?;
        if m.credits > 0 {
            m.credits -= 1;
        } else if m.joins < 1 {
            group.join(1);
        } else {
            group.join(CREDIT_BATCH);
            m.credits = CREDIT_BATCH - 1;
        }
        m.joins += 1;
        slot.set(m);
        Some(group)
    })
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
