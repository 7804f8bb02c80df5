//! Compile-time checks the code of `datadeps!` makes through autoref
//! specialisation: method resolution picks the first of several impls whose
//! bounds hold, and the last resort either does nothing or names an error.
//!
//! - [`Probe`]: before each field step of a place, is the value a builtin
//!   pointer (`&`, `&mut`, `Box`: Rust reads its address, a header), a plain
//!   value (nothing is read), or a type with its own `Deref` (refused: that
//!   code would run on the caller's thread while tasks hold the data)?
//! - [`NoWait`]: is the receiver of a `fetch`/`wait` inside the block a task
//!   handle (refused) or something else (a `Barrier`, a child process)?

use std::ops::Deref;

use super::span::Span;
use crate::task::Task;

/// The value before a field step, as a raw place, for [`ProbePointer`] and
/// its fallbacks (autoref specialisation: call `(&&Probe::new(p)).dirk_probe()`).
#[derive(Debug)]
pub struct Probe<T: ?Sized>(*const T);

impl<T: ?Sized> Probe<T> {
    /// Wraps the raw place.
    pub fn new(place: *const T) -> Self {
        Probe(place)
    }
}

/// `&T`, `&mut T` and `Box<T>`: pointers whose target Rust reaches without
/// running user code.
pub trait BuiltinPointer: Deref {}

impl<T: ?Sized> BuiltinPointer for &T {}
impl<T: ?Sized> BuiltinPointer for &mut T {}
impl<T: ?Sized> BuiltinPointer for Box<T> {}

/// Chosen first: the value is a builtin pointer, whose address is a header.
pub trait ProbePointer {
    /// The header Rust reads to follow the pointer.
    fn dirk_probe(&self) -> Option<Span>;
}

impl<T: BuiltinPointer> ProbePointer for &Probe<T> {
    fn dirk_probe(&self) -> Option<Span> {
        Some(Span::of(self.0))
    }
}

/// Never implemented: names the error for a field reached through a
/// `Deref` of a user's type.
#[diagnostic::on_unimplemented(
    message = "datadeps! cannot reach a field through `{Self}`, whose `Deref` runs code while tasks may hold the data",
    label = "this place goes through `{Self}`",
    note = "borrow the data into a variable before the block (`let data = &mut *guard;`) and use that in the place"
)]
pub trait FollowDeref {}

/// Chosen second: any other `Deref` type, refused at compile time.
pub trait ProbeDeref {
    /// The type with a `Deref` of its own.
    type Target: ?Sized;
    /// Never compiles: see [`FollowDeref`].
    fn dirk_probe(&self) -> Option<Span>
    where
        Self::Target: FollowDeref;
}

impl<T: ?Sized + Deref> ProbeDeref for &&Probe<T> {
    type Target = T;

    fn dirk_probe(&self) -> Option<Span>
    where
        T: FollowDeref,
    {
        None
    }
}

/// Chosen last: a plain value; a field step reads nothing.
pub trait ProbePlain {
    /// Nothing to read.
    fn dirk_probe(&self) -> Option<Span>;
}

impl<T: ?Sized> ProbePlain for Probe<T> {
    fn dirk_probe(&self) -> Option<Span> {
        None
    }
}

/// The receiver of a `fetch`, `wait` or `wait_timeout` call inside a
/// `datadeps!` block (call `(&NoWait::new(&receiver)).dirk_no_wait()`).
#[derive(Debug)]
pub struct NoWait<'a, T: ?Sized>(&'a T);

impl<'a, T: ?Sized> NoWait<'a, T> {
    /// Wraps the receiver.
    pub fn new(receiver: &'a T) -> Self {
        NoWait(receiver)
    }
}

/// Never implemented: names the error for waiting on a task inside the block.
#[diagnostic::on_unimplemented(
    message = "a task is waited for inside datadeps!, which orders its tasks by their data instead",
    label = "this waits for a task of the block",
    note = "return the handle from the block and call `fetch` or `wait` after it, or pass the handle to a task call as an argument"
)]
pub trait WaitAfterTheBlock {}

/// Chosen first: the receiver is a task handle.
pub trait NoWaitTask {
    /// The handle type.
    type Handle: ?Sized;
    /// Never compiles: see [`WaitAfterTheBlock`].
    fn dirk_no_wait(&self)
    where
        Self::Handle: WaitAfterTheBlock;
}

impl<T> NoWaitTask for NoWait<'_, Task<T>> {
    type Handle = Task<T>;

    fn dirk_no_wait(&self)
    where
        Task<T>: WaitAfterTheBlock,
    {
    }
}

impl<T> NoWaitTask for NoWait<'_, &Task<T>> {
    type Handle = Task<T>;

    fn dirk_no_wait(&self)
    where
        Task<T>: WaitAfterTheBlock,
    {
    }
}

/// Chosen otherwise: not a task; nothing to check.
pub trait NoWaitAny {
    /// Does nothing.
    fn dirk_no_wait(&self) {}
}

impl<T: ?Sized> NoWaitAny for &NoWait<'_, T> {}
