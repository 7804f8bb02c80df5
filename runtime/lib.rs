//! # dirk
//!
//! Parallel computing made easy: annotate ordinary Rust functions, spawn
//! them with their dependencies, and dirk runs the resulting task graph on
//! every core.
//!
//! ```
//! use dirk::prelude::*;
//!
//! #[task]
//! fn add(a: i64, b: i64) -> i64 { a + b }
//!
//! #[task]
//! fn total(xs: &[f64]) -> f64 { xs.iter().sum() }
//!
//! let a = spawn!(add(1, 2));          // Task<i64>, already scheduled
//! let b = spawn!(add(&a, 10));        // a handle where an i64 is expected: a dependency
//! let c = spawn!(add(a, b));
//! assert_eq!(c.fetch()?, 16);
//!
//! let xs = spawn!((|n: usize| vec![0.5; n])(4));
//! assert_eq!(spawn!(total(&xs)).fetch()?, 2.0);
//! # Ok::<(), dirk::Error>(())
//! ```
//!
//! - [`spawn!`] schedules a call and returns a [`Task`] handle at once; a
//!   handle passed where its result type is expected makes a dependency.
//! - [`sync`] waits for everything spawned inside a closure.
//! - [`Scope`] and [`with_options`] say where tasks may run.
//! - Failures are [`Error`] values: a panicking task fails its dependents
//!   with [`Error::Upstream`] and nothing else.
//! - A global [`Runtime`] with one thread per core starts on first use;
//!   [`Runtime::builder`] makes others.
//!
//! Everything a program needs is in [`prelude`].

#![deny(missing_docs)]

mod error;
mod exec;
mod sched;
mod stream;
mod task;

pub mod alloc;

#[doc(hidden)]
pub mod __private;

pub use dirk_macros::streaming;
pub use dirk_macros::{main, spawn, task, test};

pub use crate::error::{Error, Name, ScopeError};
pub use crate::exec::{Builder, Runtime};
pub use crate::sched::{Options, Scope, WorkerScope, with_options};
pub use crate::stream::{Iter as StreamIter, StageStats, Stats, Stream, finish_stream};
pub use crate::task::cancel::{cancelled, sleep};
pub use crate::task::group::sync;
pub use crate::task::spawn::spawn;
pub use crate::task::{Task, TaskFuture, TaskId};

/// The index of the worker thread running the caller, or `None` when the
/// caller is not on a worker thread.
///
/// ```
/// let rt = dirk::Runtime::builder().threads(2).build()?;
/// assert!(rt.run(dirk::current_thread).is_some_and(|t| t < 2));
/// assert_eq!(dirk::current_thread(), None);
/// # Ok::<(), dirk::Error>(())
/// ```
pub fn current_thread() -> Option<usize> {
    exec::context::with_worker(|w| w.map(|w| w.index))
}

/// The worker (process) running the caller: 0 in the process the program
/// started in.
pub fn current_worker() -> usize {
    0
}

/// The README's example, compiled and run as a doctest so it stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Everything a dirk program needs: `use dirk::prelude::*;`.
pub mod prelude {
    pub use crate::{Error, Options, Runtime, Scope, Task, TaskId, spawn, task};
    pub use crate::{Stream, streaming};
}
