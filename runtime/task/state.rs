//! The task state word: one `AtomicU32` whose bits record where a task is in
//! its life.
//!
//! Protocol (every transition is one atomic read-modify-write, so all
//! transitions of one task are totally ordered):
//!
//! 1. `RUNNING` is set once, by the worker that pops the task. If
//!    `FINISHING` was already set (cancelled, or an input failed) the body is
//!    dropped unrun.
//! 2. `FINISHING` is claimed by exactly one party: the runner when the body
//!    returns, or [`fail`](super::raw::Header::fail) (cancellation, failed
//!    input, shutdown). The winner alone writes the result slot.
//! 3. `COMPLETE` (with `FAILED` when the result is an error) is set by the
//!    winner after writing the result, with release ordering; readers check
//!    it with acquire ordering before reading the slot.
//! 4. `LISTENERS` is set by anyone who registers in the listener list; the
//!    completer takes the list only when it sees the bit (see
//!    [`listeners`](super::listeners)).
//! 5. `BODY_DONE` says the body will not run any more: set by the runner when
//!    the body returned, or by `fail` together with `FINISHING` when the body
//!    never started. Whoever sets the second of `BODY_DONE` and `COMPLETE`
//!    gives the task's `dirk::sync` membership back, so a cancelled body that
//!    is still running keeps its group alive until it returns.
//! 6. `CANCEL` asks a running body to stop; `dirk::sleep` and
//!    `dirk::cancelled()` observe it.
//! 7. `LOCKED` guards the listener list (see [`listeners`](super::listeners)).
//! 8. `TAKEN` marks a value moved out by the last consumer (which held the
//!    only reference), so freeing the cell does not drop it again.
//! 9. `ELSEWHERE` is set with `COMPLETE` when a task ran in another process
//!    and its value stayed there. The value is written here when someone
//!    needs it (by exactly one party, the cluster's pull), and the bit is
//!    cleared with release ordering after the write; readers check it with
//!    acquire ordering (see `cluster/leader/pulls.rs`).

use std::sync::atomic::{AtomicU32, Ordering};

pub(crate) const RUNNING: u32 = 1 << 0;
pub(crate) const FINISHING: u32 = 1 << 1;
pub(crate) const COMPLETE: u32 = 1 << 2;
pub(crate) const FAILED: u32 = 1 << 3;
pub(crate) const LISTENERS: u32 = 1 << 4;
pub(crate) const BODY_DONE: u32 = 1 << 5;
pub(crate) const CANCEL: u32 = 1 << 6;
pub(crate) const TAKEN: u32 = 1 << 7;
pub(crate) const LOCKED: u32 = 1 << 8;
pub(crate) const ELSEWHERE: u32 = 1 << 9;

/// The state word of one task.
#[derive(Debug, Default)]
pub(crate) struct State(AtomicU32);

impl State {
    pub(crate) fn load(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }

    pub(crate) fn set(&self, bits: u32) -> u32 {
        self.0.fetch_or(bits, Ordering::AcqRel)
    }

    pub(crate) fn clear(&self, bits: u32) -> u32 {
        self.0.fetch_and(!bits, Ordering::AcqRel)
    }

    /// Claims `FINISHING` for a party that is not the runner, and sets
    /// `BODY_DONE` with it when the body has not started (it never will).
    /// Returns `None` when somebody else finishes the task, otherwise the
    /// state before the claim.
    pub(crate) fn claim_failure(&self) -> Option<u32> {
        let mut cur = self.0.load(Ordering::Acquire);
        loop {
            if cur & FINISHING != 0 {
                return None;
            }
            let body_done = if cur & RUNNING == 0 { BODY_DONE } else { 0 };
            match self.0.compare_exchange_weak(cur, cur | FINISHING | body_done, Ordering::AcqRel, Ordering::Acquire) {
                Ok(prev) => return Some(prev),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Applies `f` atomically while it returns `Some(next)`; returns the
    /// state before the change, or the state that made `f` refuse.
    pub(crate) fn update(&self, f: impl Fn(u32) -> Option<u32>) -> Result<u32, u32> {
        let mut cur = self.0.load(Ordering::Acquire);
        loop {
            let Some(next) = f(cur) else { return Err(cur) };
            match self.0.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(prev) => return Ok(prev),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Takes `LOCKED` (setting `extra` with it) unless `COMPLETE` is set;
    /// returns whether it did.
    pub(crate) fn lock_unless_complete(&self, extra: u32) -> bool {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            if cur & COMPLETE != 0 {
                return false;
            }
            if cur & LOCKED != 0 {
                backoff();
                cur = self.0.load(Ordering::Relaxed);
                continue;
            }
            match self.0.compare_exchange_weak(cur, cur | LOCKED | extra, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    pub(crate) fn unlock(&self) {
        self.0.fetch_and(!LOCKED, Ordering::Release);
    }

    /// Waits until no registrant holds `LOCKED`.
    pub(crate) fn wait_unlocked(&self) {
        while self.0.load(Ordering::Acquire) & LOCKED != 0 {
            backoff();
        }
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.load() & COMPLETE != 0
    }
}

/// A lock holder is inside a few instructions; yield in case it was preempted.
#[cold]
fn backoff() {
    std::thread::yield_now();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_before_running_marks_the_body_done() {
        let s = State::default();
        assert_eq!(s.claim_failure(), Some(0));
        assert_ne!(s.load() & BODY_DONE, 0);
        assert_eq!(s.claim_failure(), None, "only one party finishes a task");
        let prev = s.set(RUNNING);
        assert_ne!(prev & FINISHING, 0, "the runner sees the failure and skips the body");
    }

    #[test]
    fn failure_while_running_leaves_the_body_to_the_runner() {
        let s = State::default();
        s.set(RUNNING);
        assert_eq!(s.claim_failure(), Some(RUNNING));
        assert_eq!(s.load() & BODY_DONE, 0);
    }
}
