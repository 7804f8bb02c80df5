//! Who is told when a task completes: dependent tasks, parked threads and
//! async wakers.
//!
//! The list is guarded by the `LOCKED` bit of the task's
//! [state](super::state), so registration and completion meet on one word:
//!
//! - a registrant sets `LOCKED | LISTENERS` in one compare-and-swap that
//!   fails if `COMPLETE` is set (then it is told "already complete"),
//!   pushes itself, and clears `LOCKED`;
//! - the completer sets `COMPLETE`; if `LISTENERS` was set it waits for
//!   `LOCKED` to clear (a registration in progress finishes its push) and
//!   takes the list. No registrant can start after `COMPLETE`, so the
//!   completer never takes the lock itself.
//!
//! A task nobody listens to completes without touching the list. Up to
//! three listeners are stored inline: a task with three dependents (a
//! stencil point) registers them without allocating.

use std::cell::UnsafeCell;
use std::task::Waker;
use std::thread::Thread;

use smallvec::SmallVec;

use super::raw::TaskRef;
use super::state::{COMPLETE, LISTENERS, State};

/// One party waiting for a task.
pub(crate) enum Listener {
    /// A task that takes this one as an input.
    Dependent(TaskRef),
    /// A thread parked in `fetch`, `wait` or `dirk::sleep`.
    Thread(Thread),
    /// An `async` caller awaiting the task.
    Waker(Box<Waker>),
}

type List = SmallVec<[Listener; 3]>;

/// The listener list of one task.
#[derive(Default)]
pub(crate) struct Listeners(UnsafeCell<List>);

// SAFETY: the list is only touched while holding the `LOCKED` bit of the
// owning task's state, or by the completer after `COMPLETE` with `LOCKED`
// clear (module note). Listeners are `Send`.
unsafe impl Sync for Listeners {}

impl Listeners {
    /// Adds `listener` unless the task is already complete, in which case the
    /// listener is handed back.
    pub(crate) fn register(&self, state: &State, listener: Listener) -> Result<(), Listener> {
        if !state.lock_unless_complete(LISTENERS) {
            return Err(listener);
        }
        // SAFETY: we hold LOCKED.
        unsafe { (*self.0.get()).push(listener) };
        state.unlock();
        Ok(())
    }

    /// Removes the registration of `thread`, if it is still there.
    pub(crate) fn unregister_thread(&self, state: &State, thread: &Thread) {
        if !state.lock_unless_complete(0) {
            return; // the completer takes (and unparks) it
        }
        // SAFETY: we hold LOCKED.
        unsafe { (*self.0.get()).retain(|l| !matches!(l, Listener::Thread(t) if t.id() == thread.id())) };
        state.unlock();
    }

    /// Takes every listener; called once, by the completer, after it set
    /// `COMPLETE` and saw `LISTENERS`.
    pub(crate) fn take(&self, state: &State) -> Taken {
        debug_assert!(state.load() & COMPLETE != 0);
        state.wait_unlocked();
        // SAFETY: COMPLETE is set and LOCKED is clear, so no registrant is
        // in the list and none can enter (module note).
        Taken(std::mem::take(unsafe { &mut *self.0.get() }).into_iter())
    }
}

/// The listeners taken from a completed task, told in registration order.
pub(crate) struct Taken(smallvec::IntoIter<[Listener; 3]>);

impl Default for Taken {
    fn default() -> Self {
        Taken(List::new().into_iter())
    }
}

impl Iterator for Taken {
    type Item = Listener;

    fn next(&mut self) -> Option<Listener> {
        self.0.next()
    }
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Listeners")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Registrations racing a completion: every listener is either told (it
    /// is in the taken list) or refused (it saw COMPLETE), never lost.
    #[test]
    fn no_registration_is_lost_to_a_racing_completion() {
        for _ in 0..20 {
            let state = Arc::new(State::default());
            let listeners = Arc::new(Listeners::default());
            let refused = Arc::new(AtomicUsize::new(0));
            let registrants: Vec<_> = (0..3)
                .map(|_| {
                    let (state, listeners, refused) = (state.clone(), listeners.clone(), refused.clone());
                    std::thread::spawn(move || {
                        for _ in 0..5 {
                            if listeners.register(&state, Listener::Thread(std::thread::current())).is_err() {
                                refused.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    })
                })
                .collect();
            std::thread::yield_now();
            let prev = state.set(COMPLETE);
            let told =
                if prev & LISTENERS != 0 || state.load() & LISTENERS != 0 { listeners.take(&state).count() } else { 0 };
            for r in registrants {
                r.join().unwrap();
            }
            // Anything registered after `take` would be lost: there must be none.
            let late = listeners.take(&state).count();
            assert_eq!(late, 0);
            assert_eq!(told + refused.load(Ordering::SeqCst), 15);
        }
    }
}
