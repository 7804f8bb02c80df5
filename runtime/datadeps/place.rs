//! Evaluating the places of one call, and handing them to its task.
//!
//! `datadeps!` turns `InOut(x.a[i][j..k])` into a chain on the root's
//! [`Root`](super::root::Root):
//!
//! ```text
//! root.write("InOut(x.a[i][j..k])")    // a Cursor
//!     .through(probe(&raw mut (*x)))    // one per field step: a pointer read on the way?
//!     .head(&raw mut (*x).a)            // the fields, evaluated by Rust as a raw place
//!     .index(i).index(j..k)             // each index through `Project`
//! ```
//!
//! Every step reads only what it announces to [`Reads`], after the tasks
//! writing it have ended, and makes no reference to memory tasks may hold.
//! The result is a [`Tracked`] place: its [`Access`](super::tracker::Access)
//! goes to the tracker, its [`PlaceSlot`] into the task. Only the task turns
//! the slot into a reference (`PassAs`), when every earlier task touching
//! that memory has ended and while no later one can start.
//!
//! Autoderef in the field part (`x.b.f` with `b: Box<S>`) reads the box's
//! pointer. A probe made by autoref specialisation tells, per field step,
//! whether the value before it is a `&`, `&mut` or `Box` (its address is
//! then a header), a plain value (nothing is read), or a type with a `Deref`
//! of its own, which is refused at compile time: user `Deref` code would
//! run on the caller's thread with a reference to data tasks hold.

use std::cell::RefCell;
use std::marker::PhantomData;

use super::matrix::{MatMut, MatRef, Matrix, TilePlace};
use super::project::{Place, Project, ProjectMut, Reads};
use super::span::Span;
use super::tracker::{Access, Path, Tracker};
use crate::task::slots::{InputRef, PassAs, Slot};

/// The mode of a place read by its task (`In`).
#[derive(Debug)]
pub struct Read;

/// The mode of a place written by its task (`Out`, `InOut`).
#[derive(Debug)]
pub struct Write;

/// `Read` or `Write`.
pub trait Mode {
    /// Whether the task writes the place.
    const WRITE: bool;
}

impl Mode for Read {
    const WRITE: bool = false;
}

impl Mode for Write {
    const WRITE: bool = true;
}

/// A place being evaluated: the root and the headers read so far.
pub struct Cursor<'g, M> {
    /// `None` for a root no task of the block writes: nothing to order.
    tracker: Option<&'g RefCell<Tracker>>,
    path: Path,
    what: &'static str,
    mode: PhantomData<M>,
}

impl<M> std::fmt::Debug for Cursor<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor").field("what", &self.what).field("path", &self.path).finish()
    }
}

impl<'g, M: Mode> Cursor<'g, M> {
    pub(crate) fn new(tracker: Option<&'g RefCell<Tracker>>, what: &'static str) -> Self {
        Cursor { tracker, path: Path::new(), what, mode: PhantomData }
    }

    /// Whether the root's tracker orders this place.
    #[cfg(test)]
    pub(crate) fn is_tracked(&self) -> bool {
        self.tracker.is_some()
    }

    /// A field step follows; `pointer` is the address of the value before
    /// it when that value is a pointer Rust will follow (see the module note).
    pub fn through(mut self, pointer: Option<Span>) -> Self {
        if let Some(header) = pointer {
            Reads { tracker: self.tracker, path: &mut self.path, writing: false }.read(header);
        }
        self
    }

    /// The place reached by the root and its fields (a `*mut` for a place
    /// the task writes: the cast back keeps its provenance).
    pub fn head<T: ?Sized>(self, place: *const T) -> Tracked<'g, *mut T, M> {
        Tracked {
            tracker: self.tracker,
            place: Ok(place.cast_mut()),
            path: self.path,
            what: self.what,
            mode: PhantomData,
        }
    }
}

/// An evaluated place of one call (or the reason it could not be evaluated).
pub struct Tracked<'g, P, M> {
    tracker: Option<&'g RefCell<Tracker>>,
    place: Result<P, String>,
    path: Path,
    what: &'static str,
    mode: PhantomData<M>,
}

impl<P, M> std::fmt::Debug for Tracked<'_, P, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracked").field("what", &self.what).field("path", &self.path).finish_non_exhaustive()
    }
}

impl<'g, B: ?Sized> Tracked<'g, *mut B, Read> {
    /// `place[index]`, read by the task.
    pub fn index<I>(self, index: I) -> Tracked<'g, B::Output, Read>
    where
        B: Project<I>,
    {
        self.step(index, false)
    }
}

impl<'g, B: ?Sized> Tracked<'g, *mut B, Write> {
    /// `place[index]`, written by the task.
    pub fn index<I>(self, index: I) -> Tracked<'g, B::Output, Write>
    where
        B: ProjectMut<I>,
    {
        self.step(index, true)
    }
}

impl<'g, B: ?Sized, M> Tracked<'g, *mut B, M> {
    fn step<I, N>(self, index: I, writing: bool) -> Tracked<'g, B::Output, N>
    where
        B: Project<I>,
    {
        let Tracked { tracker, place, mut path, what, .. } = self;
        let place = place.and_then(|base| {
            let mut reads = Reads { tracker, path: &mut path, writing };
            // SAFETY: `base` was derived from the root, which the region
            // borrows for its whole life, by steps that each read only
            // announced headers; `Reads` waits for their writers. For a
            // `Write` cursor `B: ProjectMut`, so `*base` may be written.
            unsafe { B::project(base, index, &mut reads) }
        });
        Tracked { tracker, place, path, what, mode: PhantomData }
    }
}

/// What the region needs to know about one evaluated place.
#[derive(Debug)]
pub struct AccessInfo<'g> {
    /// The root's tracker; `None` when no task of the block writes the root.
    pub(crate) tracker: Option<&'g RefCell<Tracker>>,
    pub(crate) path: Path,
    pub(crate) span: Span,
    pub(crate) write: bool,
    pub(crate) what: &'static str,
    pub(crate) error: Option<String>,
}

impl AccessInfo<'_> {
    pub(crate) fn access(&self) -> Access<'_> {
        Access { path: &self.path, span: self.span, write: self.write }
    }

    /// Whether this place and `other` may not be borrowed by one call.
    pub(crate) fn aliases(&self, other: &AccessInfo<'_>) -> bool {
        // A root without a tracker is only read: its places alias nothing.
        matches!((self.tracker, other.tracker), (Some(a), Some(b)) if std::ptr::eq(a, b))
            && (self.write || other.write)
            && (self.span.overlaps(&other.span)
                || other.path.iter().any(|h| self.span.overlaps(&h.span()))
                || self.path.iter().any(|h| other.span.overlaps(&h.span())))
    }
}

impl<'g, P: Place, M: Mode> Tracked<'g, P, M> {
    fn split_checked(self) -> (PlaceSlot<P, M>, AccessInfo<'g>) {
        let Tracked { tracker, place, path, what, .. } = self;
        let (place, span, error) = match place {
            Ok(p) => (Some(p), p.span(), None),
            Err(e) => (None, Span::EMPTY, Some(e)),
        };
        let access = AccessInfo { tracker, path, span, write: M::WRITE, what, error };
        (PlaceSlot { place, mode: PhantomData }, access)
    }
}

// `split` is where a place's type is checked for crossing threads (the
// task reads `&T` on another thread, or holds `&mut T` there), so a type
// that cannot is reported once, at the user's argument.

impl<'g, T: ?Sized> Tracked<'g, *mut T, Read>
where
    *mut T: Place,
{
    /// The slot that carries the place into the task, and the access to track.
    pub fn split(self) -> (PlaceSlot<*mut T, Read>, AccessInfo<'g>)
    where
        T: Sync,
    {
        self.split_checked()
    }
}

impl<'g, T: ?Sized> Tracked<'g, *mut T, Write>
where
    *mut T: Place,
{
    /// The slot that carries the place into the task, and the access to track.
    pub fn split(self) -> (PlaceSlot<*mut T, Write>, AccessInfo<'g>)
    where
        T: Send,
    {
        self.split_checked()
    }
}

impl<'g, T> Tracked<'g, TilePlace<T>, Read> {
    /// The slot that carries the place into the task, and the access to track.
    pub fn split(self) -> (PlaceSlot<TilePlace<T>, Read>, AccessInfo<'g>)
    where
        T: Sync,
    {
        self.split_checked()
    }
}

impl<'g, T> Tracked<'g, TilePlace<T>, Write> {
    /// The slot that carries the place into the task, and the access to track.
    pub fn split(self) -> (PlaceSlot<TilePlace<T>, Write>, AccessInfo<'g>)
    where
        T: Send,
    {
        self.split_checked()
    }
}

/// A place inside a task's argument slots; the task turns it into the
/// reference or view its function takes.
pub struct PlaceSlot<P, M> {
    place: Option<P>,
    mode: PhantomData<M>,
}

impl<P, M> std::fmt::Debug for PlaceSlot<P, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlaceSlot")
    }
}

// SAFETY: slots are only made by `Tracked::split`, whose bounds make the
// place's type `Sync` for a `Read` slot (the task reads `&T` on another
// thread) and `Send` for a `Write` slot (it holds `&mut T` there).
unsafe impl<P, M> Send for PlaceSlot<P, M> {}

impl<P, M> Slot for PlaceSlot<P, M> {
    fn inputs(&self, _: &mut dyn FnMut(InputRef<'_>)) {}
}

impl<P: Copy, M> PlaceSlot<P, M> {
    fn get(&self) -> P {
        self.place.expect("a place that failed to evaluate never reaches its task")
    }
}

// SAFETY (for every `provide` below): slots are made only by the code
// `datadeps!` emits, moved into the task of the call whose place it is, and
// provided inside that task's body. The body runs after every earlier task
// whose access conflicts with this place has ended successfully, and every
// later conflicting task runs after it (see the tracker). The root outlives
// the body: the region borrows it and does not return before every body is
// dropped. The reference lives for the `&'a mut self` borrow of the slot,
// which ends when the call of the task's function returns.

#[diagnostic::do_not_recommend]
impl<'a, T: ?Sized> PassAs<'a, &'a T> for PlaceSlot<*mut T, Read> {
    fn provide(&'a mut self) -> &'a T {
        // SAFETY: see above; no task writes the place while this one runs.
        unsafe { &*self.get() }
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T: ?Sized> PassAs<'a, &'a mut T> for PlaceSlot<*mut T, Write> {
    fn provide(&'a mut self) -> &'a mut T {
        // SAFETY: see above; no other task touches the place while this one runs.
        unsafe { &mut *self.get() }
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T: ?Sized> PassAs<'a, &'a T> for PlaceSlot<*mut T, Write> {
    fn provide(&'a mut self) -> &'a T {
        // SAFETY: see above.
        unsafe { &*self.get() }
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T> PassAs<'a, &'a [T]> for PlaceSlot<*mut Vec<T>, Read> {
    fn provide(&'a mut self) -> &'a [T] {
        // SAFETY: see above.
        unsafe { &*self.get() }
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T> PassAs<'a, &'a mut [T]> for PlaceSlot<*mut Vec<T>, Write> {
    fn provide(&'a mut self) -> &'a mut [T] {
        // SAFETY: see above.
        unsafe { &mut *self.get() }
    }
}

#[diagnostic::do_not_recommend]
impl<'a> PassAs<'a, &'a str> for PlaceSlot<*mut String, Read> {
    fn provide(&'a mut self) -> &'a str {
        // SAFETY: see above.
        unsafe { &*self.get() }
    }
}

#[diagnostic::do_not_recommend]
impl<'a> PassAs<'a, &'a mut str> for PlaceSlot<*mut String, Write> {
    fn provide(&'a mut self) -> &'a mut str {
        // SAFETY: see above.
        unsafe { &mut *self.get() }
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T> PassAs<'a, MatRef<'a, T>> for PlaceSlot<TilePlace<T>, Read> {
    fn provide(&'a mut self) -> MatRef<'a, T> {
        // SAFETY: see above.
        unsafe { self.get().view() }
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T> PassAs<'a, MatRef<'a, T>> for PlaceSlot<TilePlace<T>, Write> {
    fn provide(&'a mut self) -> MatRef<'a, T> {
        // SAFETY: see above.
        unsafe { self.get().view() }
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T> PassAs<'a, MatMut<'a, T>> for PlaceSlot<TilePlace<T>, Write> {
    fn provide(&'a mut self) -> MatMut<'a, T> {
        // SAFETY: see above.
        unsafe { self.get().view_mut() }
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T> PassAs<'a, MatRef<'a, T>> for PlaceSlot<*mut Matrix<T>, Read> {
    fn provide(&'a mut self) -> MatRef<'a, T> {
        // SAFETY: see above.
        unsafe { (*self.get()).view() }
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T> PassAs<'a, MatMut<'a, T>> for PlaceSlot<*mut Matrix<T>, Write> {
    fn provide(&'a mut self) -> MatMut<'a, T> {
        // SAFETY: see above.
        unsafe { (*self.get()).view_mut() }
    }
}
