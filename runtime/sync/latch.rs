//! Latches: what a thread waits on for work done on other threads. A
//! [`OneShot`] opens once, carrying a value; a [`Count`] opens when its
//! count of members falls to zero. Each remembers the thread that made it
//! (the waiter) and unparks it when it opens; the waiter waits with
//! `exec::wait::until(|| latch.is_open(), ..)`, running other tasks
//! meanwhile when it is a worker.
//!
//! The waiter usually keeps the latch on its stack and returns, freeing
//! it, as soon as it sees it open. So opening is the opener's last touch:
//! it clones the waiter's handle first, then publishes `done` (release),
//! then unparks the clone. For the same reason the functions that may open
//! a latch take a raw pointer, not a reference: a reference passed to a
//! function must stay valid until that function returns, which the waiter
//! does not wait for.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, Thread};

use super::Mutex;

/// Publishes `done` and wakes `waiter`; the latch may be gone after the store.
fn open(done: &AtomicBool, waiter: &Thread) {
    let waiter = waiter.clone();
    done.store(true, Ordering::Release);
    // The latch (and `done` with it) may be freed from here on.
    waiter.unpark();
}

/// A latch that opens once, with a value for its waiter (or none, when the
/// work was dropped undone).
#[derive(Debug)]
pub(crate) struct OneShot<R> {
    value: Mutex<Option<R>>,
    done: AtomicBool,
    waiter: Thread,
}

impl<R> OneShot<R> {
    /// A closed latch whose waiter is the current thread.
    pub(crate) fn new() -> OneShot<R> {
        OneShot { value: Mutex::new(None), done: AtomicBool::new(false), waiter: thread::current() }
    }

    /// Leaves the value for the waiter; call before [`open`](OneShot::open).
    pub(crate) fn put(&self, value: R) {
        *self.value.lock() = Some(value);
    }

    /// Opens the latch and wakes the waiter.
    ///
    /// # Safety
    ///
    /// `this` points to a live latch; the caller does not touch it after
    /// this call, as the waiter may free it as soon as it is open.
    pub(crate) unsafe fn open(this: *const Self) {
        // SAFETY: live on entry, per the contract; `open` touches it last.
        let latch = unsafe { &*this };
        open(&latch.done, &latch.waiter);
    }

    /// Whether the latch is open (an acquire: what was put is visible).
    pub(crate) fn is_open(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// The value put before the latch opened.
    pub(crate) fn into_value(self) -> Option<R> {
        self.value.into_inner()
    }
}

/// A latch that opens when its count of members falls to zero.
#[derive(Debug)]
pub(crate) struct Count {
    live: AtomicUsize,
    done: AtomicBool,
    waiter: Thread,
}

impl Count {
    /// A latch of `members` members whose waiter is the current thread.
    pub(crate) fn new(members: usize) -> Count {
        Count { live: AtomicUsize::new(members), done: AtomicBool::new(false), waiter: thread::current() }
    }

    /// Adds `n` members. The caller is a member itself, so the count is not
    /// zero and the latch not open.
    pub(crate) fn add(&self, n: usize) {
        self.live.fetch_add(n, Ordering::Relaxed);
    }

    /// Removes `n` members without opening the latch: the caller stays a
    /// member itself, so the count stays above zero.
    pub(crate) fn give_back(&self, n: usize) {
        let before = self.live.fetch_sub(n, Ordering::AcqRel);
        debug_assert!(before > n, "members are given back by a member that stays");
    }

    /// Removes `n` members; the last opens the latch and wakes the waiter.
    /// Returns whether this opened it.
    ///
    /// # Safety
    ///
    /// `this` points to a live latch with at least `n` members; the caller
    /// does not touch it after this call, as the waiter may free it as soon
    /// as it is open.
    pub(crate) unsafe fn leave(this: *const Self, n: usize) -> bool {
        // SAFETY: live on entry, per the contract; it stays alive while its
        // count is above zero, so until the decrement below.
        let latch = unsafe { &*this };
        if latch.live.fetch_sub(n, Ordering::AcqRel) != n {
            return false;
        }
        open(&latch.done, &latch.waiter);
        true
    }

    /// Whether the count fell to zero.
    pub(crate) fn is_open(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_one_shot_hands_its_value_to_the_waiter() {
        let latch = Arc::new(OneShot::new());
        let opener = {
            let latch = Arc::clone(&latch);
            thread::spawn(move || {
                latch.put(42);
                // SAFETY: the `Arc` keeps the latch alive past this call.
                unsafe { OneShot::open(Arc::as_ptr(&latch)) };
            })
        };
        while !latch.is_open() {
            thread::park();
        }
        opener.join().unwrap();
        let latch = Arc::try_unwrap(latch).expect("the opener's clone is gone");
        assert_eq!(latch.into_value(), Some(42));
    }

    #[test]
    fn a_count_opens_when_its_last_member_leaves() {
        let latch = Arc::new(Count::new(1));
        latch.add(3);
        latch.give_back(1);
        let leavers: Vec<_> = (0..2)
            .map(|_| {
                let latch = Arc::clone(&latch);
                // SAFETY: the `Arc` keeps the latch alive past this call.
                thread::spawn(move || unsafe { Count::leave(Arc::as_ptr(&latch), 1) })
            })
            .collect();
        let opened: Vec<bool> = leavers.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(opened, [false, false], "the waiter's own membership holds it closed");
        assert!(!latch.is_open());
        // SAFETY: `latch` is alive; the waiter leaves last.
        assert!(unsafe { Count::leave(Arc::as_ptr(&latch), 1) });
        assert!(latch.is_open());
    }
}
