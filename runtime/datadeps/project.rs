//! Projections: how `base[index]` inside a datadeps place becomes a raw
//! place without touching the memory that tasks own.
//!
//! `datadeps!` never lets Rust's `Index`/`IndexMut` run on the calling
//! thread while tasks may hold parts of the same value: `IndexMut` on a
//! `Vec` makes a `&mut [T]` of the whole buffer, which would alias a
//! running task's `&mut` of one half. Instead each step goes through
//! [`Project`], whose implementations compute addresses with raw pointers
//! and read nothing but the container's own *header* (a `Vec`'s pointer and
//! length, a reference's address), announcing each header to [`Reads`]
//! first, which holds the caller until no running task writes it.
//!
//! Implemented for slices, arrays, `Vec`, [`Matrix`](super::Matrix), and
//! through `&`, `&mut` and `Box` (the pointer is a header too).

use std::ops::{Range, RangeFrom, RangeFull, RangeInclusive, RangeTo, RangeToInclusive};

use super::span::{Extent, Span};
use super::tracker::{Path, Tracker};

/// A place as the runtime holds it: a raw pointer (or a raw view) and the
/// memory it covers.
///
/// # Safety
///
/// `span` covers every byte a reference made from this place can reach
/// directly (without following a pointer stored in it).
pub unsafe trait Place: Copy {
    /// The memory this place covers.
    fn span(&self) -> Span;
}

// SAFETY: a `&T` or `&mut T` reaches exactly the `size_of::<T>()` bytes at `self`.
unsafe impl<T> Place for *mut T {
    fn span(&self) -> Span {
        Span::of(self.cast_const())
    }
}

// SAFETY: a slice reference reaches its `len` elements.
unsafe impl<T> Place for *mut [T] {
    fn span(&self) -> Span {
        Span::of_slice(self.cast_const())
    }
}

/// The headers that evaluating one place reads, in order; handed to
/// [`Project::project`].
///
/// [`read`](Reads::read) waits until no task of the block that may still
/// write the header is running, and records the header as part of the
/// place's path: a later task that writes the header (say, pushes to the
/// `Vec`) runs after the task using this place.
pub struct Reads<'a> {
    pub(crate) tracker: Option<&'a std::cell::RefCell<Tracker>>,
    pub(crate) path: &'a mut Path,
    pub(crate) writing: bool,
}

impl std::fmt::Debug for Reads<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reads").field("path", &self.path).field("writing", &self.writing).finish()
    }
}

impl Reads<'_> {
    /// Whether the place is being evaluated for writing (`Out`/`InOut`).
    pub fn writing(&self) -> bool {
        self.writing
    }

    /// Announces that the projection is about to read `header` through a
    /// shared reference or a raw read: waits for running tasks that write it.
    pub fn read(&mut self, header: Span) {
        self.settle(header, false);
    }

    /// Announces that the projection is about to borrow `header` mutably
    /// (e.g. `Vec::as_mut_ptr`): waits for running tasks that read or write it.
    pub fn read_exclusive(&mut self, header: Span) {
        self.settle(header, true);
    }

    fn settle(&mut self, header: Span, exclusive: bool) {
        if let Some(tracker) = self.tracker {
            let tracker = tracker.borrow();
            if tracker.may_be_used(&header) {
                let pending = tracker.users_of(&header, exclusive);
                drop(tracker);
                settle_all(pending);
            }
        }
        self.path.push(Extent::of(&header));
    }
}

/// Waits for the bodies of tasks that use a header about to be read.
#[cold]
fn settle_all(tasks: super::tracker::Tasks) {
    for task in tasks {
        super::region::settle_body(&task);
    }
}

/// `base[index]` for datadeps places.
///
/// Implement it to make a container of your own usable in places such as
/// `InOut(grid[(1, 2)])`.
///
/// # Safety
///
/// Implementations promise:
///
/// - `project` reads no memory but the metadata of `base` and spans it first
///   passed to [`Reads::read`] (or [`Reads::read_exclusive`], when it makes a
///   `&mut` to them); it makes no reference to anything else.
/// - The output place is memory owned by `*base` (reachable only through
///   it) and never overlaps a header it read.
/// - Equal indices give equal places and indices that do not overlap (as
///   integer ranges, per dimension) give places that do not overlap, so
///   `datadeps!` may order literal indices at compile time.
/// - Without [`ProjectMut`], the output is only read; with it, writing through
///   the output is allowed whenever `*base` may be written.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be indexed by `{I}` in a datadeps! place",
    label = "this index is not supported here",
    note = "places index slices, arrays, `Vec`s and `dirk::datadeps::Matrix`, also through `&`, `&mut` and `Box`; implement `dirk::datadeps::Project` for another container"
)]
pub unsafe trait Project<I> {
    /// The place `base[index]`.
    type Output: Place;

    /// Computes `base[index]`, or says why it is out of range (the message
    /// a panic of `Index` would give).
    ///
    /// # Safety
    ///
    /// `base` points to a live `Self` whose headers may be read once
    /// announced to `reads`; when `reads.writing()`, `*base` may be written.
    unsafe fn project(base: *mut Self, index: I, reads: &mut Reads<'_>) -> Result<Self::Output, String>;
}

/// Marks a [`Project`] whose output may be written through (`InOut(v[i])`).
///
/// # Safety
///
/// The output of `project` is memory that a writer of `*base` may write.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be written through in a datadeps! place",
    label = "`Out` and `InOut` need a place the block may write",
    note = "a shared reference (`&T`) only allows `In`: borrow the data with `&mut` to write it"
)]
pub unsafe trait ProjectMut<I>: Project<I> {}

/// An index into a run of elements: `usize` picks one element, a range
/// picks a sub-slice.
pub trait Subscript {
    /// The place of the picked elements of `T`.
    type Place<T>: Place;

    /// The picked elements of the `len` elements at `first`.
    ///
    /// # Safety
    ///
    /// `first` points to `len` consecutive `T`s of one allocation.
    unsafe fn locate<T>(self, first: *mut T, len: usize) -> Result<Self::Place<T>, String>;
}

impl Subscript for usize {
    type Place<T> = *mut T;

    unsafe fn locate<T>(self, first: *mut T, len: usize) -> Result<*mut T, String> {
        if self >= len {
            return Err(format!("index out of bounds: the len is {len} but the index is {self}"));
        }
        // SAFETY: `self < len`, so the element lies in the run (caller).
        Ok(unsafe { first.add(self) })
    }
}

/// `start..end` checked against `len`, with the messages of slice indexing.
fn checked_range(start: usize, end: usize, len: usize) -> Result<(usize, usize), String> {
    if start > end {
        return Err(format!("slice index starts at {start} but ends at {end}"));
    }
    if end > len {
        return Err(format!("range end index {end} out of range for slice of length {len}"));
    }
    Ok((start, end))
}

macro_rules! range_subscript {
    ($($ty:ty => |$r:ident, $len:ident| $bounds:expr;)*) => {$(
        impl Subscript for $ty {
            type Place<T> = *mut [T];

            unsafe fn locate<T>(self, first: *mut T, $len: usize) -> Result<*mut [T], String> {
                let $r = self;
                let (start, end) = $bounds?;
                // SAFETY: `start <= end <= len`, so the run lies in the
                // caller's run of `len` elements.
                Ok(std::ptr::slice_from_raw_parts_mut(unsafe { first.add(start) }, end - start))
            }
        }
    )*};
}

range_subscript! {
    Range<usize> => |r, len| checked_range(r.start, r.end, len);
    RangeFrom<usize> => |r, len| {
        if r.start > len {
            Err(format!("range start index {} out of range for slice of length {len}", r.start))
        } else {
            Ok((r.start, len))
        }
    };
    RangeTo<usize> => |r, len| checked_range(0, r.end, len);
    RangeFull => |_r, len| Ok::<_, String>((0, len));
    RangeToInclusive<usize> => |r, len| match r.end.checked_add(1) {
        Some(end) => checked_range(0, end, len),
        None => Err("attempted to index slice up to maximum usize".to_owned()),
    };
}

impl Subscript for RangeInclusive<usize> {
    type Place<T> = *mut [T];

    unsafe fn locate<T>(self, first: *mut T, len: usize) -> Result<*mut [T], String> {
        let (start, end) = match self.end().checked_add(1) {
            Some(end) => checked_range(*self.start(), end, len)?,
            None => return Err("attempted to index slice up to maximum usize".to_owned()),
        };
        // SAFETY: `start <= end <= len` (checked above).
        Ok(std::ptr::slice_from_raw_parts_mut(unsafe { first.add(start) }, end - start))
    }
}

// SAFETY: indexing a slice reads only the pointer's length metadata; the
// elements are owned by the slice and disjoint ranges are disjoint memory.
unsafe impl<T, I: Subscript> Project<I> for [T] {
    type Output = I::Place<T>;

    unsafe fn project(base: *mut Self, index: I, _: &mut Reads<'_>) -> Result<I::Place<T>, String> {
        // SAFETY: `base` points to a live slice of `base.len()` elements (caller).
        unsafe { index.locate(base.cast::<T>(), base.len()) }
    }
}

// SAFETY: as for slices; writing through an element of a writable slice is allowed.
unsafe impl<T, I: Subscript> ProjectMut<I> for [T] {}

// SAFETY: an array is its elements, inline: nothing is read.
unsafe impl<T, I: Subscript, const N: usize> Project<I> for [T; N] {
    type Output = I::Place<T>;

    unsafe fn project(base: *mut Self, index: I, _: &mut Reads<'_>) -> Result<I::Place<T>, String> {
        // SAFETY: `base` points to a live array of N elements (caller).
        unsafe { index.locate(base.cast::<T>(), N) }
    }
}

// SAFETY: as above.
unsafe impl<T, I: Subscript, const N: usize> ProjectMut<I> for [T; N] {}

// SAFETY: a `Vec` is read only through its header (announced first); its
// elements live in its buffer, which it owns, away from the header.
unsafe impl<T, I: Subscript> Project<I> for Vec<T> {
    type Output = I::Place<T>;

    unsafe fn project(base: *mut Self, index: I, reads: &mut Reads<'_>) -> Result<I::Place<T>, String> {
        let header = Span::of(base.cast_const());
        let (first, len) = if reads.writing() {
            reads.read_exclusive(header);
            // SAFETY: no task holds any reference to the header now
            // (`read_exclusive`), and `as_mut_ptr` makes no reference to
            // the elements, which tasks may hold.
            let v = unsafe { &mut *base };
            (v.as_mut_ptr(), v.len())
        } else {
            reads.read(header);
            // SAFETY: no task writes the header now (`read`); the pointer
            // is used for reads only, as `as_ptr` requires.
            let v = unsafe { &*base };
            (v.as_ptr().cast_mut(), v.len())
        };
        // SAFETY: a Vec's pointer addresses `len` initialised elements.
        unsafe { index.locate(first, len) }
    }
}

// SAFETY: the elements of a writable Vec may be written.
unsafe impl<T, I: Subscript> ProjectMut<I> for Vec<T> {}

/// Reads the pointer stored at `base` (a reference's or a box's address).
///
/// # Safety
///
/// `base` points to a live `&B`, `&mut B` or `Box<B>` (`B: Sized` for the
/// box), all laid out as a `*mut B`.
unsafe fn pointee<P, B: ?Sized>(base: *mut P, reads: &mut Reads<'_>) -> *mut B {
    reads.read(Span::of(base.cast_const()));
    // SAFETY: per the contract, `*base` has the layout of a `*mut B`; reading
    // it as a raw pointer makes no reference.
    unsafe { base.cast::<*mut B>().read() }
}

// SAFETY: looks through the reference (its address is a header), then
// follows `B`'s own projection.
unsafe impl<I, B: ?Sized + Project<I>> Project<I> for &B {
    type Output = B::Output;

    unsafe fn project(base: *mut Self, index: I, reads: &mut Reads<'_>) -> Result<B::Output, String> {
        // SAFETY: `base` points to a live `&B` (caller).
        let inner = unsafe { pointee::<Self, B>(base, reads) };
        // SAFETY: `inner` points to a live `B`. Through a shared reference
        // the place is only read: `&B` is not `ProjectMut`.
        unsafe { B::project(inner, index, reads) }
    }
}

// SAFETY: as for `&B`.
unsafe impl<I, B: ?Sized + Project<I>> Project<I> for &mut B {
    type Output = B::Output;

    unsafe fn project(base: *mut Self, index: I, reads: &mut Reads<'_>) -> Result<B::Output, String> {
        // SAFETY: `base` points to a live `&mut B` (caller).
        let inner = unsafe { pointee::<Self, B>(base, reads) };
        // SAFETY: `inner` points to a live `B`, writable when `*base` is.
        unsafe { B::project(inner, index, reads) }
    }
}

// SAFETY: a `&mut B` owns its target for its lifetime.
unsafe impl<I, B: ?Sized + ProjectMut<I>> ProjectMut<I> for &mut B {}

// SAFETY: a `Box<B>` of a sized `B` is laid out as a `*mut B` and owns `*B`.
unsafe impl<I, B: Project<I>> Project<I> for Box<B> {
    type Output = B::Output;

    unsafe fn project(base: *mut Self, index: I, reads: &mut Reads<'_>) -> Result<B::Output, String> {
        // SAFETY: `base` points to a live `Box<B>` with `B: Sized` (caller).
        let inner = unsafe { pointee::<Self, B>(base, reads) };
        // SAFETY: `inner` points to the box's live `B`.
        unsafe { B::project(inner, index, reads) }
    }
}

// SAFETY: a box owns its contents.
unsafe impl<I, B: ProjectMut<I>> ProjectMut<I> for Box<B> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(path: &mut Path, writing: bool) -> Reads<'_> {
        Reads { tracker: None, path, writing }
    }

    #[test]
    fn vec_elements_and_ranges_are_located_in_the_buffer() {
        let mut v = vec![1u64, 2, 3, 4];
        let base = &raw mut v;
        let mut path = Path::new();
        // SAFETY: `base` is a live Vec, nothing else uses it.
        let p = unsafe { Vec::project(base, 2usize, &mut reads(&mut path, false)) }.unwrap();
        // SAFETY: `p` points to element 2 of the live Vec.
        assert_eq!(unsafe { *p }, 3);
        assert_eq!(path.as_slice(), &[Extent::of(&Span::of(base.cast_const()))], "the header is the path");
        let mut path = Path::new();
        // SAFETY: as above.
        let s = unsafe { Vec::project(base, 1..3, &mut reads(&mut path, true)) }.unwrap();
        assert_eq!(s.len(), 2);
        // SAFETY: `s` is elements 1..3 of the live Vec, written by nobody else.
        unsafe { (*s)[0] = 20 };
        assert_eq!(v, [1, 20, 3, 4]);
    }

    #[test]
    fn out_of_range_indices_give_the_messages_of_indexing() {
        let mut v = vec![0u8; 3];
        let base = &raw mut v;
        let mut path = Path::new();
        // SAFETY: `base` is a live Vec.
        let err = unsafe { Vec::project(base, 5usize, &mut reads(&mut path, false)) }.unwrap_err();
        assert_eq!(err, "index out of bounds: the len is 3 but the index is 5");
        let mut path = Path::new();
        // SAFETY: as above.
        let err = unsafe { Vec::project(base, 2..7, &mut reads(&mut path, false)) }.unwrap_err();
        assert_eq!(err, "range end index 7 out of range for slice of length 3");
        let mut path = Path::new();
        #[allow(clippy::reversed_empty_ranges)]
        // SAFETY: as above.
        let err = unsafe { Vec::project(base, 2..1, &mut reads(&mut path, false)) }.unwrap_err();
        assert_eq!(err, "slice index starts at 2 but ends at 1");
    }

    #[test]
    fn references_are_looked_through_with_their_address_as_a_header() {
        let mut v = vec![1u32, 2, 3];
        let mut r: &mut Vec<u32> = &mut v;
        let base = &raw mut r;
        let mut path = Path::new();
        // SAFETY: `base` points to a live `&mut Vec`.
        let p = unsafe { <&mut Vec<u32>>::project(base, 1usize, &mut reads(&mut path, true)) }.unwrap();
        assert_eq!(path.len(), 2, "the reference, then the Vec header");
        // SAFETY: `p` is element 1 of the live Vec.
        unsafe { *p = 9 };
        assert_eq!(v, [1, 9, 3]);
    }

    #[test]
    fn arrays_read_nothing() {
        let mut a = [1i32; 8];
        let mut path = Path::new();
        // SAFETY: `a` is a live array.
        let s = unsafe { <[i32; 8]>::project(&raw mut a, ..4, &mut reads(&mut path, true)) }.unwrap();
        assert!(path.is_empty());
        assert_eq!(s.len(), 4);
    }
}
