//! Cooperative cancellation for running task bodies: [`cancelled`] to poll,
//! [`sleep`] to wait in a way that ends early when the task is cancelled.
//!
//! A cancelled task is complete at once for its handles and dependents, but
//! Rust cannot stop a running function from outside. Bodies that run long
//! check `dirk::cancelled()` or wait with `dirk::sleep`, which registers the
//! thread as a listener of its own task and so is woken by the cancellation.
//!
//! On a worker thread `dirk::sleep` does not hold the core: it blocks inside
//! [`block_in_place`](crate::block_in_place), so a spare worker runs other
//! tasks meanwhile, and sleeping tasks overlap the way Dagger's yielding
//! `sleep` lets them, each waking on time.

use std::thread;
use std::time::{Duration, Instant};

use super::listeners::Listener;
use super::state::{CANCEL, FINISHING};
use crate::exec::context;

/// Whether the task running on this thread has been cancelled (always
/// `false` outside a task).
///
/// ```
/// use dirk::prelude::*;
///
/// let t = dirk::spawn(|| {
///     let mut steps = 0u64;
///     while !dirk::cancelled() && steps < 1_000_000_000 {
///         steps += 1;
///     }
///     steps
/// });
/// t.cancel();
/// assert!(t.fetch().unwrap_err().is_cancelled());
/// ```
pub fn cancelled() -> bool {
    context::with_task(|task| task.is_some_and(|h| h.state.load() & (CANCEL | FINISHING) == CANCEL | FINISHING))
}

/// Sleeps for at least `duration`, or until the task running on this thread
/// is cancelled, whichever comes first. Returns `true` when the full
/// duration passed. Outside a task it is `std::thread::sleep`.
///
/// On a worker thread a spare worker keeps the core busy while the task
/// sleeps (see [`block_in_place`](crate::block_in_place)).
///
/// ```
/// use dirk::prelude::*;
/// use std::time::{Duration, Instant};
///
/// let t = dirk::spawn(|| dirk::sleep(Duration::from_secs(100)));
/// let start = Instant::now();
/// t.cancel();
/// assert!(t.wait().unwrap_err().is_cancelled());
/// assert!(start.elapsed() < Duration::from_secs(1));
/// ```
pub fn sleep(duration: Duration) -> bool {
    let deadline = Instant::now() + duration;
    context::with_task(|task| {
        let Some(header) = task else {
            thread::sleep(duration);
            return true;
        };
        let stop = || header.state.load() & CANCEL != 0;
        let me = thread::current();
        if header.listeners.register(&header.state, Listener::Thread(me.clone())).is_err() {
            // Already complete: only a cancellation completes a running task.
            return false;
        }
        crate::block_in_place(|| {
            while !stop() && Instant::now() < deadline {
                thread::park_timeout(deadline.saturating_duration_since(Instant::now()));
            }
        });
        header.listeners.unregister_thread(&header.state, &me);
        !stop()
    })
}
