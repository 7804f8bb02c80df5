//! Who is told when a task completes: dependent tasks, parked threads and
//! async wakers.
//!
//! Registration and completion meet on the `LISTENERS` and `COMPLETE` bits of
//! the task's [state](super::state):
//!
//! - a registrant locks the list, sets `LISTENERS`, and pushes itself only if
//!   `COMPLETE` was not yet set (otherwise it is told "already complete");
//! - the completer sets `COMPLETE`, and takes the list under the lock only if
//!   `LISTENERS` was set.
//!
//! Both bits change by read-modify-write on one word, so either the completer
//! sees the registrant's bit (and then waits on the lock for its push), or
//! the registrant sees `COMPLETE`. A task nobody listens to completes with a
//! single atomic operation and never touches the lock.

use std::task::Waker;
use std::thread::Thread;

use parking_lot::Mutex;

use super::raw::TaskRef;
use super::state::{COMPLETE, LISTENERS, State};

/// One party waiting for a task.
pub(crate) enum Listener {
    /// A task that takes this one as an input.
    Dependent(TaskRef),
    /// A thread parked in `fetch`, `wait` or `dirk::sleep`.
    Thread(Thread),
    /// An `async` caller awaiting the task.
    Waker(Waker),
}

/// The list behind the lock. Most tasks have zero or one listener, so those
/// cases do not allocate.
#[derive(Default)]
enum List {
    #[default]
    Empty,
    One(Listener),
    Many(Vec<Listener>),
}

/// The listener list of one task.
#[derive(Default)]
pub(crate) struct Listeners(Mutex<List>);

impl Listeners {
    /// Adds `listener` unless the task is already complete, in which case the
    /// listener is handed back.
    pub(crate) fn register(&self, state: &State, listener: Listener) -> Result<(), Listener> {
        let mut list = self.0.lock();
        if state.set(LISTENERS) & COMPLETE != 0 {
            return Err(listener);
        }
        *list = match std::mem::take(&mut *list) {
            List::Empty => List::One(listener),
            List::One(first) => List::Many(vec![first, listener]),
            List::Many(mut all) => {
                all.push(listener);
                List::Many(all)
            }
        };
        Ok(())
    }

    /// Removes the registration of `thread`, if it is still there.
    pub(crate) fn unregister_thread(&self, thread: &Thread) {
        let mut list = self.0.lock();
        let is_it = |l: &Listener| matches!(l, Listener::Thread(t) if t.id() == thread.id());
        match &mut *list {
            List::One(l) if is_it(l) => *list = List::Empty,
            List::Many(all) => all.retain(|l| !is_it(l)),
            _ => {}
        }
    }

    /// Takes every listener; called once, by the completer, after it set
    /// `COMPLETE` and saw `LISTENERS`.
    pub(crate) fn take(&self) -> Taken {
        match std::mem::take(&mut *self.0.lock()) {
            List::Empty => Taken::Empty,
            List::One(l) => Taken::One(l),
            List::Many(all) => Taken::Many(all.into_iter()),
        }
    }
}

/// The listeners taken from a completed task, told in registration order.
#[derive(Default)]
pub(crate) enum Taken {
    #[default]
    Empty,
    One(Listener),
    Many(std::vec::IntoIter<Listener>),
}

impl Iterator for Taken {
    type Item = Listener;

    fn next(&mut self) -> Option<Listener> {
        match self {
            Taken::Many(rest) => rest.next(),
            _ => match std::mem::take(self) {
                Taken::One(l) => Some(l),
                _ => None,
            },
        }
    }
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = match &*self.0.lock() {
            List::Empty => 0,
            List::One(_) => 1,
            List::Many(all) => all.len(),
        };
        f.debug_struct("Listeners").field("len", &n).finish()
    }
}
