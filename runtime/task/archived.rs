//! Arguments read in place: [`RemoteArgs`], the archived arguments of one
//! call in a worker, and the scratch space that lets a task taking
//! `&Archived<Vec<T>>` or `&ArchivedString` also run locally.
//!
//! A remote call's arguments are byte ranges (in the frame that carried
//! them, in the shared-memory ring, or in a value the worker kept); the
//! probes validate each with bytecheck when the function asks for it and
//! hand out references into those bytes. Values a parameter needs
//! deserialized (`&T`, `&[String]`) are kept in the call's arena, which
//! lives as long as the arguments.
//!
//! Locally, an archived parameter needs an archive: the value is archived
//! into the running call's scratch space, which is emptied when the call
//! returns ([`scratch_scope`]).

use std::any::Any;
use std::cell::RefCell;

use rkyv::Archived;
use rkyv::string::ArchivedString;
use rkyv::util::AlignedVec;
use rkyv::vec::ArchivedVec;

use crate::Error;
use crate::task::Task;
use crate::task::slots::{PassAs, Value};
use crate::transport::wire::{self, Wire};

/// The archived arguments of one remote call.
pub struct RemoteArgs<'b> {
    args: Vec<&'b [u8]>,
    kept: RefCell<Vec<Box<dyn Any + Send>>>,
}

impl std::fmt::Debug for RemoteArgs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteArgs").field("args", &self.args.len()).finish()
    }
}

impl<'b> RemoteArgs<'b> {
    pub(crate) fn new(args: Vec<&'b [u8]>) -> Self {
        RemoteArgs { args, kept: RefCell::new(Vec::new()) }
    }

    /// The bytes of argument `i`.
    pub fn bytes(&self, i: usize) -> Result<&'b [u8], Error> {
        self.args
            .get(i)
            .copied()
            .ok_or_else(|| Error::Codec(format!("the call has {} arguments, the function more", self.args.len())))
    }

    /// Keeps a deserialized value for as long as the arguments live.
    pub fn keep<T: Send + 'static>(&self, value: T) -> &T {
        let boxed = Box::new(value);
        let ptr: *const T = &*boxed;
        self.kept.borrow_mut().push(boxed);
        // SAFETY: the box is owned by `kept`, which only grows while `self`
        // lives, and moving a box does not move its contents.
        unsafe { &*ptr }
    }
}

thread_local! {
    static SCRATCH: RefCell<Vec<AlignedVec<16>>> = const { RefCell::new(Vec::new()) };
}

/// Marks the start of a call: archives made for it are dropped when the
/// returned guard is. Calls nest (a task waiting runs other tasks).
pub(crate) fn scratch_scope() -> impl Drop {
    struct Scope(usize);
    impl Drop for Scope {
        fn drop(&mut self) {
            let _ = SCRATCH.try_with(|s| s.borrow_mut().truncate(self.0));
        }
    }
    Scope(SCRATCH.with(|s| s.borrow().len()))
}

/// Archives `value` into the running call's scratch space.
fn scratch<'a, T: Wire, A: for<'c> wire::Check<'c>>(value: &T) -> &'a A {
    let bytes = wire::to_vec(value).unwrap_or_else(|e| panic!("{e}"));
    let ptr: *const [u8] = bytes.as_slice();
    SCRATCH.with(|s| s.borrow_mut().push(bytes));
    // SAFETY: the buffer stays in SCRATCH until the `scratch_scope` of the
    // running call ends, which is after the called function returned; `'a`
    // is the borrow of the argument slot, which does not outlive that call.
    // Moving the `AlignedVec` into the list does not move its heap bytes.
    let bytes: &'a [u8] = unsafe { &*ptr };
    wire::access::<A>(bytes).unwrap_or_else(|e| panic!("{e}"))
}

#[diagnostic::do_not_recommend]
impl<'a, T: Wire> PassAs<'a, &'a ArchivedVec<Archived<T>>> for Task<Vec<T>>
where
    Vec<T>: Wire<Archived = ArchivedVec<Archived<T>>>,
{
    fn provide(&'a mut self) -> &'a ArchivedVec<Archived<T>> {
        let value: &Vec<T> = self.provide();
        scratch::<Vec<T>, _>(value)
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T: Wire> PassAs<'a, &'a ArchivedVec<Archived<T>>> for Value<Vec<T>>
where
    Vec<T>: Wire<Archived = ArchivedVec<Archived<T>>>,
{
    fn provide(&'a mut self) -> &'a ArchivedVec<Archived<T>> {
        let value: &Vec<T> = self.provide();
        scratch::<Vec<T>, _>(value)
    }
}

#[diagnostic::do_not_recommend]
impl<'a> PassAs<'a, &'a ArchivedString> for Task<String> {
    fn provide(&'a mut self) -> &'a ArchivedString {
        let value: &String = self.provide();
        scratch::<String, _>(value)
    }
}

#[diagnostic::do_not_recommend]
impl<'a> PassAs<'a, &'a ArchivedString> for Value<String> {
    fn provide(&'a mut self) -> &'a ArchivedString {
        let value: &String = self.provide();
        scratch::<String, _>(value)
    }
}
