//! Data dependencies: tasks that borrow the caller's data, ordered by the
//! memory they touch (Dagger's `spawn_datadeps`).
//!
//! Inside [`datadeps!`](crate::datadeps!), every call with an `In`, `Out`
//! or `InOut` argument becomes a task; the rest of the block is ordinary
//! Rust, run on the caller's thread.
//!
//! ```
//! use dirk::prelude::*;
//!
//! fn sort_in_place(xs: &mut [i32]) { xs.sort() }
//! fn copy_into(to: &mut [i32], from: &[i32]) { to.copy_from_slice(from) }
//!
//! let mut x = vec![4, 5, 6, 7, 1, 2, 3, 9, 8];
//! let mut c = vec![0; 9];
//! datadeps! {
//!     sort_in_place(InOut(x));
//!     copy_into(Out(c), In(x)); // runs after the sort: it reads what the sort wrote
//! }?;
//! assert_eq!(c, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
//! # Ok::<(), dirk::Error>(())
//! ```
//!
//! # Arguments
//!
//! - `In(p)` passes `&p`; `Out(p)` and `InOut(p)` pass `&mut p` (a `Vec`
//!   may also be taken as a slice, a `String` as a `str`). `p` is a *place*:
//!   a variable, then fields, then indexes, such as `x`, `s.grid`, `v[i]`,
//!   `v[a..b]`, `rows[i][j..]`, or a [`Matrix`] tile `m[(r0..r1, c0..c1)]`
//!   (passed as a [`MatRef`] or [`MatMut`]). A variable that is a reference
//!   (`r: &mut Vec<f64>`, `self`) is looked through: `InOut(r)` passes
//!   `&mut Vec<f64>`.
//! - Any other argument is evaluated when the call is reached and moved into
//!   the task, as with `spawn!`; a [`Task`](crate::Task) argument makes the
//!   task wait for that result.
//! - A task call is an expression: its value is the task's
//!   [`Task`](crate::Task) handle.
//!
//! # Order
//!
//! The results are those of running the calls in program order. A task
//! waits for every earlier task whose place overlaps its own when one of
//! the two writes (reads of the same data run in parallel). Overlap is
//! decided on the memory actually touched: two halves of one slice do not
//! overlap, a slice and its `Vec` do, struct fields by their own bytes,
//! matrix tiles, rows and columns by their elements. A task holding a whole
//! container (`InOut(v)`, which may push) also orders the tasks that hold
//! parts of it.
//!
//! When every task call of the block is a statement at its top level and
//! every index is a literal, the macro computes this order at compile time
//! and emits it as a plan; otherwise each root's run-time tracker computes
//! it from the addresses of the places. A variable that no task of the
//! block writes (only `In` places) is not tracked at all: its reads order
//! nothing, and the block's borrow keeps everything else from writing it.
//!
//! # The block
//!
//! `datadeps! { .. }` returns `Result<R, Error>` once every task made in it
//! (and every task those spawned) has ended: `Ok` with the value of the
//! block's last expression, or the first error in spawn order; a panic in a
//! task is an [`Error::Panicked`](crate::Error::Panicked). A place index out
//! of range, or two places of one call that overlap while one is written
//! (`f(InOut(v[i]), In(v[j]))` with `i == j`), fails that task the same way
//! instead of running it. A panic of the block's own statements is resumed
//! after the tasks have ended.
//!
//! A variable used in a place may not be touched outside a task from the
//! statement where a task first uses it to the end of the block (a compile
//! error), and must be declared before the block. `fetch` and `wait` on a
//! task inside the block are compile errors: return the handle and wait
//! after the block. The block is the body of a closure: `return` and `?`
//! inside it leave the block, not the enclosing function.
//!
//! # Soundness
//!
//! Tasks borrow the caller's data across threads. The emitted code contains
//! no `unsafe`; the runtime's guarantees are:
//!
//! - each root is borrowed once for the region's whole life, and places
//!   are raw places derived from that borrow, computed without making a
//!   reference to memory a task may hold ([`Project`]);
//! - a task turns its places into references only when it runs, after every
//!   earlier conflicting task has ended and before any later one starts;
//! - the block does not return, even by unwinding, before every task body
//!   has been dropped.

mod body;
mod index;
mod matrix;
mod place;
mod probe;
mod project;
mod region;
mod root;
mod run;
mod span;
mod tracker;

pub use self::matrix::{Axis, MatMut, MatRef, Matrix, TilePlace};
pub use self::project::{Place, Project, ProjectMut, Reads, Subscript};
pub use self::span::Span;

/// What the code `datadeps!` emits calls. Not a public API.
#[doc(hidden)]
pub mod private {
    pub use super::place::{AccessInfo, Cursor, Mode, PlaceSlot, Read, Tracked, Write};
    pub use super::probe::{
        BuiltinPointer, FollowDeref, NoWait, NoWaitAny, NoWaitTask, Probe, ProbeDeref, ProbePlain, ProbePointer,
        WaitAfterTheBlock,
    };
    pub use super::region::{Kept, Region, run};
    pub use super::root::{DirkRootMut, DirkRootRef, Root};
}
