//! Argument slots: how `spawn!(f(a, &b, 3))` turns each argument into what
//! `f` expects. Used only by code that `spawn!` emits.
//!
//! Each argument is wrapped once at the spawn site, picking its kind by
//! autoref specialisation on the argument's type:
//! - a `Task<T>` or `&Task<T>` becomes a `Task<T>` slot: a dependency whose
//!   result is read when the task runs;
//! - anything else becomes a [`Value<T>`], moved into the task.
//!
//! Inside the task, [`PassAs`] turns a slot into the parameter type `f`
//! declares, chosen by rustc from `f`'s signature: a `Value<T>` gives `T`,
//! `&T` or `&mut T`; a `Task<T>` gives `&T` (borrowed from the stored
//! result) or `T` (moved when this task holds the last reference to the
//! result, cloned otherwise). A `Vec<T>` also gives `&[T]`, a `String` also
//! gives `&str`. Task slots are the handles themselves so that rustc's
//! messages about them name `Task<T>`.

use std::cell::Cell;
use std::marker::PhantomData;

use smallvec::SmallVec;

use super::Task;
use super::cell::{self, Body};
use super::raw::TaskRef;

/// A plain argument value, moved into the task.
#[derive(Debug)]
pub struct Value<T>(Option<T>);

// SAFETY: the field is private and the only constructor,
// `ArgValue::dirk_slot`, requires `T: Send`, so every `Value<T>` that exists
// holds a `Send` value. (Lifetimes cannot weaken that: spawning requires
// `'static` slots.) Checking `Send` there, and only there, gives one error
// at the user's argument instead of a second one at the spawn.
unsafe impl<T> Send for Value<T> {}

impl<T> Value<T> {
    /// Moves the value out, for `PassAs` impls outside this module.
    /// The value, before it is provided (a file argument loads through it).
    pub(crate) fn peek(&self) -> Option<&T> {
        self.0.as_ref()
    }

    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(crate) fn take(&mut self) -> T {
        self.0.take().expect("each argument is provided once")
    }
}

/// Wraps one argument expression so that method resolution can tell task
/// handles from values (autoref specialisation).
pub struct Arg<T>(Cell<Option<T>>);

impl<T> std::fmt::Debug for Arg<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Arg")
    }
}

impl<T> Arg<T> {
    /// Wraps an argument.
    pub fn new(value: T) -> Self {
        Arg(Cell::new(Some(value)))
    }

    fn take(&self) -> T {
        self.0.take().expect("each argument is wrapped once")
    }
}

/// Picks a task slot for an owned `Task<T>`.
pub trait ArgTask<T> {
    /// The slot for this argument.
    fn dirk_slot(&self) -> Task<T>;
}

impl<T> ArgTask<T> for Arg<Task<T>> {
    fn dirk_slot(&self) -> Task<T> {
        self.take()
    }
}

/// Picks a task slot for a borrowed `&Task<T>`.
pub trait ArgTaskRef<T> {
    /// The slot for this argument.
    fn dirk_slot(&self) -> Task<T>;
}

impl<T> ArgTaskRef<T> for Arg<&Task<T>> {
    fn dirk_slot(&self) -> Task<T> {
        self.take().clone()
    }
}

/// Picks a [`Tasks`] slot for an owned `Vec<Task<T>>`: every handle is a
/// dependency.
pub trait ArgTasks<T> {
    /// The slot for this argument.
    fn dirk_slot(&self) -> Tasks<T>;
}

impl<T> ArgTasks<T> for Arg<Vec<Task<T>>> {
    fn dirk_slot(&self) -> Tasks<T> {
        let handles = self.take();
        // A few handles move into the task's cell and their vector is freed
        // here, on the thread that allocated it: freeing it on the thread
        // that runs the task costs more than such a task's scheduling.
        let handles = if handles.len() <= INLINE_TASKS { handles.into_iter().collect() } else { handles.into() };
        Tasks(handles, SmallVec::new(), Vec::new())
    }
}

impl<T> ArgTasks<T> for Arg<&Vec<Task<T>>> {
    fn dirk_slot(&self) -> Tasks<T> {
        Tasks(self.take().iter().cloned().collect(), SmallVec::new(), Vec::new())
    }
}

impl<T> ArgTasks<T> for Arg<&[Task<T>]> {
    fn dirk_slot(&self) -> Tasks<T> {
        Tasks(self.take().iter().cloned().collect(), SmallVec::new(), Vec::new())
    }
}

/// Handles of a [`Tasks`] argument kept in the task's own cell.
const INLINE_TASKS: usize = 4;

/// Several task results as one argument: `spawn!(f(handles))` with
/// `handles: Vec<Task<T>>` runs `f` after all of them and gives it a
/// `&[&T]` or a `Vec<&T>` (borrowed from the results), or a `Vec<T>`,
/// `&[T]` or `&Vec<T>` (each value moved or cloned like a single input).
#[derive(Debug)]
pub struct Tasks<T>(SmallVec<[Task<T>; INLINE_TASKS]>, SmallVec<[*const T; INLINE_TASKS]>, Vec<T>);

// SAFETY: the pointers in the second field point into the results of the
// tasks in the first, and the values in the third are such results (moved
// or cloned); every task result is `Send + Sync`. Both are only filled
// while providing, on the thread running the task.
unsafe impl<T> Send for Tasks<T> {}

/// Picks [`Value`] for everything else.
pub trait ArgValue<T> {
    /// The slot for this argument; it moves to the thread that runs the task.
    fn dirk_slot(&self) -> Value<T>
    where
        T: Send;
}

impl<T> ArgValue<T> for &Arg<T> {
    fn dirk_slot(&self) -> Value<T>
    where
        T: Send,
    {
        Value(Some(self.take()))
    }
}

/// How an argument of [`spawn!`](crate::spawn!) becomes the parameter `P`
/// that the called function declares: a value passes as itself (or a
/// reference to it), a `Task<T>` as its result (`T` or `&T`), a
/// `Vec<Task<T>>` as all of its results. The table on `spawn!` lists every
/// pair; dirk implements them, and a compile error that names this trait
/// says that an argument is not one of them.
#[diagnostic::on_unimplemented(
    message = "this argument cannot be passed where the function expects `{P}`",
    label = "expected `{P}` here",
    note = "a `Task<T>` gives the function a `T` (for `T: Clone`) or a `&T`, a `Vec<Task<T>>` gives a `Vec<T>`, `&[T]` or `&[&T]`, and any other argument is passed as it is: pass a task whose result is `{P}`, or change the parameter"
)]
pub trait PassAs<'a, P> {
    /// Gives the argument to the function.
    fn provide(&'a mut self) -> P;
}

#[diagnostic::do_not_recommend]
impl<'a, T> PassAs<'a, T> for Value<T> {
    fn provide(&'a mut self) -> T {
        self.0.take().expect("each argument is provided once")
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T> PassAs<'a, &'a T> for Value<T> {
    fn provide(&'a mut self) -> &'a T {
        self.0.as_ref().expect("each argument is provided once")
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T> PassAs<'a, &'a mut T> for Value<T> {
    fn provide(&'a mut self) -> &'a mut T {
        self.0.as_mut().expect("each argument is provided once")
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T: Clone> PassAs<'a, T> for Task<T> {
    fn provide(&'a mut self) -> T {
        // The last user of a result takes it; others clone it.
        // SAFETY: `Task<T>` holds a task with value type `T`.
        if let Some(value) = unsafe { cell::take_value::<T>(&self.raw) } {
            return value;
        }
        self.ok().clone()
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T> PassAs<'a, &'a T> for Task<T> {
    fn provide(&'a mut self) -> &'a T {
        self.ok()
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T> PassAs<'a, &'a [&'a T]> for Tasks<T> {
    fn provide(&'a mut self) -> &'a [&'a T] {
        self.1.clear();
        self.1.extend(self.0.iter().map(|t| t.ok() as *const T));
        // SAFETY: `*const T` and `&T` have the same layout; every pointer
        // was just made from a reference into a result that the handles in
        // `self.0` keep alive (and unchanged) for as long as `self` is
        // borrowed, which bounds `'a`.
        unsafe { std::slice::from_raw_parts(self.1.as_ptr().cast::<&'a T>(), self.1.len()) }
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T> PassAs<'a, Vec<&'a T>> for Tasks<T> {
    fn provide(&'a mut self) -> Vec<&'a T> {
        self.0.iter().map(Task::ok).collect()
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T: Clone> PassAs<'a, Vec<T>> for Tasks<T> {
    fn provide(&'a mut self) -> Vec<T> {
        self.0.iter_mut().map(|t| t.provide()).collect()
    }
}

/// The results side by side, for `fn f(xs: &[T])`: each moved here when
/// this task is its last reader, cloned otherwise (a slice of `T` needs
/// them contiguous; `&[&T]` borrows them where they are).
#[diagnostic::do_not_recommend]
impl<'a, T: Clone> PassAs<'a, &'a [T]> for Tasks<T> {
    fn provide(&'a mut self) -> &'a [T] {
        PassAs::<&'a Vec<T>>::provide(self)
    }
}

/// The results side by side, for `fn f(xs: &Vec<T>)`.
#[diagnostic::do_not_recommend]
impl<'a, T: Clone> PassAs<'a, &'a Vec<T>> for Tasks<T> {
    fn provide(&'a mut self) -> &'a Vec<T> {
        let values: Vec<T> = self.0.iter_mut().map(|t| t.provide()).collect();
        self.2 = values;
        &self.2
    }
}

/// A `Vec<T>` result read as a slice, for `fn f(xs: &[T])`.
#[diagnostic::do_not_recommend]
impl<'a, T> PassAs<'a, &'a [T]> for Task<Vec<T>> {
    fn provide(&'a mut self) -> &'a [T] {
        self.ok()
    }
}

/// A `String` result read as a `&str`, for `fn f(s: &str)`.
#[diagnostic::do_not_recommend]
impl<'a> PassAs<'a, &'a str> for Task<String> {
    fn provide(&'a mut self) -> &'a str {
        self.ok()
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T> PassAs<'a, &'a [T]> for Value<Vec<T>> {
    fn provide(&'a mut self) -> &'a [T] {
        self.0.as_deref().expect("each argument is provided once")
    }
}

#[diagnostic::do_not_recommend]
impl<'a> PassAs<'a, &'a str> for Value<String> {
    fn provide(&'a mut self) -> &'a str {
        self.0.as_deref().expect("each argument is provided once")
    }
}

impl<T> Task<T> {
    /// The value of an input that succeeded (a task runs only then).
    fn ok(&self) -> &T {
        match self.result() {
            Some(Ok(value)) => value,
            _ => unreachable!("a task runs only after all its inputs succeeded"),
        }
    }
}

/// A task among a call's arguments, with its types erased.
#[derive(Clone, Copy)]
pub struct InputRef<'a>(pub(crate) &'a TaskRef);

impl std::fmt::Debug for InputRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("InputRef").field(&self.0.header().id).finish()
    }
}

/// One slot, as the runtime sees it: the dependencies it holds, if any.
pub trait Slot {
    /// Calls `f` with each task this slot reads.
    fn inputs(&self, f: &mut dyn FnMut(InputRef<'_>));
}

/// A slot of a call that may run in another process (a `spawn!`).
pub trait RemoteSlot: Slot {
    /// The slot for sending it to another process.
    fn slot_ref(&self) -> SlotRef<'_>;
}

/// A slot's content as the cluster sends it: a value moved into the task,
/// an input task (with its value when that is complete and here), or a
/// slot that stays in its process (a list of input tasks, a place borrowed
/// by `datadeps!`).
#[derive(Clone, Copy)]
pub enum SlotRef<'a> {
    /// A plain value.
    Value(&'a dyn std::any::Any),
    /// An input task.
    Task(InputRef<'a>, Option<&'a dyn std::any::Any>),
    /// A slot that cannot cross processes.
    Local,
}

impl std::fmt::Debug for SlotRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SlotRef::Value(_) => f.write_str("SlotRef::Value"),
            SlotRef::Task(t, _) => f.debug_tuple("SlotRef::Task").field(t).finish(),
            SlotRef::Local => f.write_str("SlotRef::Local"),
        }
    }
}

impl<T> Slot for Value<T> {
    fn inputs(&self, _: &mut dyn FnMut(InputRef<'_>)) {}
}

impl<T: 'static> RemoteSlot for Value<T> {
    fn slot_ref(&self) -> SlotRef<'_> {
        SlotRef::Value(self.0.as_ref().expect("a slot is read before it is provided"))
    }
}

impl<T> Slot for Tasks<T> {
    fn inputs(&self, f: &mut dyn FnMut(InputRef<'_>)) {
        for task in &self.0 {
            f(InputRef(&task.raw));
        }
    }
}

impl<T> RemoteSlot for Tasks<T> {
    fn slot_ref(&self) -> SlotRef<'_> {
        SlotRef::Local
    }
}

impl<T> Slot for Task<T> {
    fn inputs(&self, f: &mut dyn FnMut(InputRef<'_>)) {
        f(InputRef(&self.raw));
    }
}

impl<T: 'static> RemoteSlot for Task<T> {
    fn slot_ref(&self) -> SlotRef<'_> {
        let value = match self.result() {
            Some(Ok(value)) => Some(value as &dyn std::any::Any),
            _ => None,
        };
        SlotRef::Task(InputRef(&self.raw), value)
    }
}

/// The argument slots of one call, as a nested tuple `(a0, (a1, ()))`.
pub trait Slots {
    /// Calls `f` with every dependency among the slots, in order.
    fn each_input(&self, f: &mut dyn FnMut(InputRef<'_>));
}

/// The slots of a call that may run in another process.
pub trait RemoteSlots: Slots {
    /// Calls `f` with every slot, in order.
    fn each_slot(&self, f: &mut dyn FnMut(SlotRef<'_>));
}

impl Slots for () {
    fn each_input(&self, _: &mut dyn FnMut(InputRef<'_>)) {}
}

impl RemoteSlots for () {
    fn each_slot(&self, _: &mut dyn FnMut(SlotRef<'_>)) {}
}

impl<A: Slot, Rest: Slots> Slots for (A, Rest) {
    fn each_input(&self, f: &mut dyn FnMut(InputRef<'_>)) {
        self.0.inputs(f);
        self.1.each_input(f);
    }
}

impl<A: RemoteSlot, Rest: RemoteSlots> RemoteSlots for (A, Rest) {
    fn each_slot(&self, f: &mut dyn FnMut(SlotRef<'_>)) {
        f(self.0.slot_ref());
        self.1.each_slot(f);
    }
}

/// A call of a function with its argument slots: the body of a `spawn!`.
pub(crate) struct Call<S, F, R> {
    slots: S,
    f: F,
    result: PhantomData<fn() -> R>,
}

impl<S, F, R> Call<S, F, R> {
    pub(crate) fn new(slots: S, f: F) -> Self {
        Call { slots, f, result: PhantomData }
    }
}

impl<S, F, R> Body for Call<S, F, R>
where
    S: Slots + Send + 'static,
    F: FnOnce(S) -> R + Send + 'static,
    R: Send + Sync + 'static,
{
    type Output = R;

    fn for_each_input(&self, f: &mut dyn FnMut(&TaskRef)) {
        self.slots.each_input(&mut |input| f(input.0));
    }

    fn call(self) -> R {
        let _scratch = super::archived::scratch_scope();
        (self.f)(self.slots)
    }
}

impl<S: Slots, F, R> Call<S, F, R> {
    /// The slots, for sending the call to another process.
    pub(crate) fn slots(&self) -> &S {
        &self.slots
    }
}
