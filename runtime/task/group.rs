//! `dirk::sync`: wait for every task spawned inside a closure, and for the
//! tasks those tasks spawned (Dagger's `@sync`).
//!
//! A group counts its live members: one for the closure itself, one per
//! task spawned while the group was current (on the calling thread, or
//! inside a member task's body). A member leaves when its body will not run
//! any more *and* its result is written (see the task
//! [state protocol](super::state)), so a member that spawns a nested task
//! joins it to the group before leaving itself, and the count reaches zero
//! only when the whole tree has ended.
//!
//! Tasks hold a raw [`GroupRef`], not an `Arc`: the group lives on the stack
//! of `sync`, which does not return before `done` is set. The member that
//! brings the count to zero copies the waiter's thread handle *before*
//! setting `done` and never touches the group after it, so the group may be
//! freed the instant `done` becomes visible.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::ptr::NonNull;

use crate::sync::Mutex;

use crate::Error;
use crate::exec::{context, wait};
use crate::sync::latch::Count;
use crate::task::TaskId;

pub(crate) struct Group {
    members: Count,
    first_error: Mutex<Option<(TaskId, Error)>>,
}

/// A member's pointer to its group. Copyable; valid until the member leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GroupRef(NonNull<Group>);

// SAFETY: a `GroupRef` is only dereferenced by members that have not left
// yet, and the group outlives all of them (see the module note); `Group`
// itself is `Sync` (atomics, a mutex and a `Thread`).
unsafe impl Send for GroupRef {}
// SAFETY: as above; every method takes `self` by value and touches only
// `Sync` fields.
unsafe impl Sync for GroupRef {}

impl GroupRef {
    fn group(&self) -> &Group {
        // SAFETY: callers are members that have not left, so the group is
        // alive (module note).
        unsafe { self.0.as_ref() }
    }

    /// Adds `n` members (or reserves `n` joins). Called by a spawner that is
    /// itself a member (a task, or the closure), so the count is not zero.
    pub(crate) fn join(self, n: usize) {
        self.group().members.add(n);
    }

    /// Returns `n` reserved joins that were not used. Called by a context
    /// that is still a member itself, so the count stays above zero.
    pub(crate) fn give_back(self, n: usize) {
        self.group().members.give_back(n);
    }

    /// Records the error of a member that failed; the smallest task id (the
    /// first spawned) wins.
    pub(crate) fn record_error(self, task: TaskId, error: &Error) {
        let mut first = self.group().first_error.lock();
        if first.as_ref().is_none_or(|(id, _)| task < *id) {
            *first = Some((task, error.clone()));
        }
    }

    /// Removes `n` members. The group may be freed as soon as this returns.
    pub(crate) fn leave_many(self, n: usize) {
        // SAFETY: the group is alive (this member has not left), and this
        // is the member's last touch of it.
        unsafe { Count::leave(&raw const (*self.0.as_ptr()).members, n) };
    }
}

/// Runs `f`, then waits until every task spawned inside it (and every task
/// those tasks spawned) has ended. Returns `f`'s value, or the error of the
/// first failed task in spawn order.
///
/// This is Dagger's `@sync`. On a worker thread the wait runs other tasks
/// instead of blocking, so `sync` may be nested and used inside tasks.
///
/// ```
/// use dirk::prelude::*;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// static DONE: AtomicUsize = AtomicUsize::new(0);
/// #[task]
/// fn work(i: usize) { DONE.fetch_add(i, Ordering::Relaxed); }
///
/// let n = dirk::sync(|| {
///     for i in 1..=10 {
///         spawn!(work(i)); // the handle may be dropped: `sync` still waits
///     }
///     10
/// })?;
/// assert_eq!(n, 10);
/// assert_eq!(DONE.load(Ordering::Relaxed), 55);
/// # Ok::<(), dirk::Error>(())
/// ```
///
/// A panic in `f` itself is resumed after the spawned tasks have ended.
pub fn sync<R>(f: impl FnOnce() -> R) -> Result<R, Error> {
    let group = Group { members: Count::new(1), first_error: Mutex::new(None) };
    let member = GroupRef(NonNull::from(&group));
    let outcome = {
        let _current = context::enter_group(member);
        catch_unwind(AssertUnwindSafe(f))
    };
    member.leave_many(1);
    wait::until(&|| group.members.is_open(), None);
    let value = outcome.unwrap_or_else(|panic| resume_unwind(panic));
    match group.first_error.into_inner() {
        Some((_, error)) => Err(error),
        None => Ok(value),
    }
}
