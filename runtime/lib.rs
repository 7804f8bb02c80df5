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
//! - [`streaming!`] runs a block of stages as a pipeline and returns a
//!   [`Stream`]; [`alloc::Counting`] lets a program count what it allocates.
//! - [`Scope`] and [`with_options`] say where tasks may run.
//! - Failures are [`Error`] values: a panicking task fails its dependents
//!   with [`Error::Upstream`] and nothing else.
//! - A global [`Runtime`] with one thread per core starts on first use;
//!   [`Runtime::builder`] makes others, with worker processes when asked
//!   ([`Builder::workers`]; under `mpirun` the other ranks): `#[task]`
//!   functions then run in any process, near their data ([`Scope::worker`],
//!   [`mutable`], [`shard`]).
//! - With the `gpu` feature, `#[task(gpu)]` functions launch CubeCL kernels
//!   on GPU processors (`Scope::gpu(i)`), and their data moves between host
//!   and device only when needed: see the `dirk::gpu` module.
//!
//! Everything a program needs is in [`prelude`].
//!
//! The crate is built in layers, each using only those below it: `id`,
//! `error` and `sync` (latches, the mutex); `trace` and `sched` (scopes,
//! the one function that places them, the cost model); `task` (handles,
//! cells, the `#[task]` registry) with `exec` (the thread pool, and the
//! extension trait through which what runs tasks elsewhere plugs in);
//! `transport`, `stream`, `datadeps`, `plan` and `gpu`; `cluster` (worker
//! processes); and `rt`, which assembles [`Runtime`] from a pool and its
//! extensions.

#![deny(missing_docs)]

// Lets the crate's own tests use its macros, whose output names `::dirk`.
extern crate self as dirk;

mod cluster;
pub mod datadeps;
mod error;
mod exec;
#[cfg(feature = "gpu")]
pub mod gpu;
mod id;
mod plan;
mod rt;
mod sched;
mod stream;
mod sync;
mod task;
pub mod trace;
mod transport;

pub mod alloc;
#[cfg(feature = "array")]
pub mod array;
pub mod fs;

#[doc(hidden)]
pub mod __private;

#[doc(hidden)]
pub mod __fuzz;

/// A streaming region: a block of stages run over and over, connected by
/// the names they use, returning a [`Stream`] of its tail expression.
///
/// ```
/// use dirk::prelude::*;
///
/// fn scale(x: f64, k: f64) -> f64 { x * k }
/// fn smooth(x: f64, previous: f64) -> f64 { 0.5 * x + 0.5 * previous }
///
/// let samples = vec![1.0, 2.0, 3.0, 4.0];
/// let mut next = samples.into_iter();
/// let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
/// let sink = log.clone();
/// let out = streaming! {
///     let x = next.next()?;                  // a source: called every iteration, ends on None
///     let y = scale(x, 2.0);                 // reads one element of x per iteration
///     let z = smooth(y, delay(z, 0.0));      // z's value of the previous iteration (0.0 at first)
///     sink.lock().unwrap().push(z);          // a stage without a name: a sink
///     z                                      // the tail: what the Stream yields
/// };
/// assert_eq!(out.iter().collect::<Vec<_>>(), [1.0, 2.5, 4.25, 6.125]);
/// out.wait()?;
/// assert_eq!(log.lock().unwrap().len(), 4);
/// # Ok::<(), dirk::Error>(())
/// ```
///
/// - Every statement is a *stage*, called once per iteration with one
///   element of each stream it names; `let x = ...` names its stream. Names
///   from outside the block are constants, moved into the region once as
///   by a `move` closure (`&file` borrows the region's copy; clone an `Arc`
///   before the block to keep using it). A stage may mutate what it
///   captured (`n += 1`): each stage is its own `FnMut`.
/// - `?` at the end of a stage ends its stream on `None` and fails the
///   region on `Err` ([`Error::Failed`]). [`finish_stream`] ends the calling
///   stage after this iteration's value. An ended stage closes its stream:
///   its consumers drain what is buffered and end too. With teardown (the
///   default), a stage whose consumers have all ended stops;
///   `#![dirk(teardown = false)]` keeps it running, its values dropped.
/// - `delay(x, init)` reads `x`'s previous element (`init` first) and is
///   the only way to close a cycle; a cycle without it, or a name used above
///   its `let`, is a compile error.
/// - A stream read by several stages is shared: a stage that only borrows
///   it (`&x`) reads it in place, one that takes it by value gets a clone
///   (so `T: Clone` is required there).
/// - Options: `#![dirk(max_evals = n, teardown = false, report_allocs)]` for
///   the region, `#[dirk(scope = .., buffer = n, max_evals = n, name = "..")]`
///   on a stage. A zero `buffer` or `max_evals` is a compile error when
///   written as a literal, [`Error::Config`] otherwise.
/// - Stages in a linear chain with the same scope run as one loop with no
///   buffer between them; other edges are bounded rings (`buffer` sets the
///   capacity of a stage's output; by default as many elements as fit in
///   64 KiB, from 4 to 1024). Stages run cooperatively on the runtime's
///   threads, so any region runs on one thread, and a stage waiting for
///   input or room costs nothing.
/// - A stage before a ring runs ahead of its readers by up to the ring's
///   capacity: when a reader ends (`finish_stream`, `?`, `max_evals`), the
///   elements made and not yet read are dropped. A source whose calls have
///   effects that must not run ahead (taking items from a queue) belongs in
///   the chain of its reader (no `buffer`, the same scope), or gets a small
///   `buffer`.
/// - A panicking stage fails the region with [`Error::Panicked`] naming it;
///   every other stage stops.
pub use dirk_macros::streaming;
pub use dirk_macros::{main, test};

/// # Passing arguments
///
/// Each argument of `spawn!(f(a, b, ..))` is either a task handle, which
/// makes the new task wait for it, or a value, moved into the task. What
/// `f` receives is what its parameter declares:
///
/// | argument | parameter of `f` | what `f` gets |
/// |---|---|---|
/// | a value `x: T` | `T`, `&T`, `&mut T` | the value (moved in) |
/// | `Task<T>` or `&Task<T>` | `&T` | the result, borrowed where it is |
/// | `Task<T>` or `&Task<T>` | `T` (`T: Clone`) | moved when this task is its last reader, cloned otherwise |
/// | `Task<Vec<T>>`, `Task<String>` | `&[T]`, `&str` | borrowed |
/// | `Vec<Task<T>>`, `&Vec<Task<T>>`, `&[Task<T>]` | `&[&T]`, `Vec<&T>` | every result, borrowed (a fan-in) |
/// | the same | `Vec<T>`, `&[T]`, `&Vec<T>` (`T: Clone`) | every result, each moved or cloned as above |
///
/// A task whose input failed does not run; it fails with
/// [`Error::Upstream`]. [`join_all`] turns a list of tasks into one task
/// of a `Vec`.
///
/// ```
/// use dirk::prelude::*;
///
/// #[task]
/// fn square(x: u64) -> u64 { x * x }
///
/// #[task]
/// fn total(xs: &[u64]) -> u64 { xs.iter().sum() }
///
/// #[task]
/// fn describe(name: &str, n: u64) -> String { format!("{name}: {n}") }
///
/// let parts: Vec<Task<u64>> = (1..=4).map(|i| spawn!(square(i))).collect();
/// let sum = spawn!(total(parts));                   // fan-in: waits for all four
/// let text = spawn!(describe("sum of squares".to_string(), &sum));
/// assert_eq!(text.take()?, "sum of squares: 30");   // `take`: the value itself, no copy
/// # Ok::<(), dirk::Error>(())
/// ```
pub use dirk_macros::spawn;

/// # Passing arguments
///
/// Callers of a `#[task]` function pass, for each parameter, either a
/// value or a task handle whose result becomes the argument: a `&T` or `T`
/// parameter takes a `Task<T>`, a `&[T]`, `&Vec<T>`, `Vec<T>`, `Vec<&T>`
/// or `&[&T]` parameter takes a `Vec<Task<T>>` (every element is a
/// dependency). The table on [`spawn!`] says what moves and what is
/// borrowed. Arguments and results that archive with rkyv let the task run
/// in another worker process.
///
/// ```
/// use dirk::prelude::*;
///
/// #[task]
/// fn mean(xs: &[f64]) -> f64 { xs.iter().sum::<f64>() / xs.len() as f64 }
///
/// #[task]
/// fn half(x: f64) -> f64 { x / 2.0 }
///
/// let halves: Vec<Task<f64>> = [2.0, 4.0, 6.0].into_iter().map(|x| spawn!(half(x))).collect();
/// assert_eq!(spawn!(mean(halves)).fetch()?, 2.0);
/// # Ok::<(), dirk::Error>(())
/// ```
pub use dirk_macros::task;

pub use crate::cluster::data::{Mutable, Shard, mutable, mutable_on, shard};
pub use dirk_macros::datadeps;

pub use crate::error::{Error, Name, ScopeError};
pub use crate::exec::blocking::block_in_place;
pub use crate::plan::{Graph, NodeId, Plan};
pub use crate::rt::{Builder, Runtime};
pub use crate::sched::{Options, Scope, WorkerScope, with_options};
pub use crate::stream::stage::StageOutcome;
pub use crate::stream::{Iter as StreamIter, StageStats, Stats, Stream, finish_stream};
pub use crate::task::cancel::{cancelled, sleep};
pub use crate::task::group::sync;
pub use crate::task::slots::PassAs;
pub use crate::task::spawn::{join_all, spawn};
pub use crate::task::{Task, TaskFuture, TaskId};
pub use crate::transport::wire::Wire;

/// In a task run for another process: the address range of the bytes its
/// argument `i` was read from (in the shared-memory ring, the frame that
/// carried it, or a value the worker kept); `None` elsewhere.
///
/// Lets a program check that an argument was read in place: a `&[f64]`
/// parameter's pointer lies inside this range.
pub fn received_bytes(i: usize) -> Option<std::ops::Range<usize>> {
    cluster::received_bytes(i)
}

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
/// started in, 1..=k in the worker processes started by
/// [`Builder::workers`] (or the MPI rank under `mpirun`).
pub fn current_worker() -> usize {
    cluster::current_worker()
}

/// Bytes of frames this process has sent to or received from other
/// processes of its cluster over their sockets (values that travel through
/// the shared-memory rings are not counted): lets a program check that
/// large values do not go through the socket.
pub fn socket_bytes() -> u64 {
    transport::socket::socket_bytes()
}

/// The README's example, compiled and run as a doctest so it stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Everything a dirk program needs: `use dirk::prelude::*;`.
pub mod prelude {
    pub use crate::{Error, Options, Runtime, Scope, Task, TaskId, spawn, task};

    pub use crate::datadeps;
    pub use crate::{Stream, streaming};
}
