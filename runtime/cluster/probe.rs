//! Compile-time probes: which parameters, results and arguments can cross a
//! process boundary, and how. Used only by code that `#[task]` and `spawn!`
//! emit.
//!
//! Each probe is autoref specialization: the emitted code calls a method on
//! `&&..&Probe<T>`, and rustc picks the impl with the most references whose
//! bounds hold for the concrete `T`. The last level always applies and says
//! "not across processes", so a `#[task]` with a parameter that does not
//! archive still compiles and runs locally.
//!
//! Parameter levels, first match wins (the argument was archived from the
//! slot's value type, e.g. `Vec<f64>` for `&[f64]`):
//!
//! 8. `&Mutable<T>`, `&Shard<T>`: a handle, bound to this process's value
//! 7. `&[T]` of plain numbers: the archived vector, read in place (zero-copy)
//! 6. `&[T]`: the vector, deserialized
//! 5. `&str`: the archived string, read in place
//! 4. `&A` of an archived type (`&Archived<T>`): read in place
//! 3. `&T`: deserialized, then borrowed
//! 2. `T`: deserialized
//! 1. anything else: cannot run remotely
//!
//! Result levels: a `Vec` of plain numbers (decoded with one copy), any
//! archivable result, or one that stays local.

use std::any::Any;
use std::marker::PhantomData;

use rkyv::Archived;
use rkyv::string::ArchivedString;
use rkyv::util::AlignedVec;
use rkyv::vec::ArchivedVec;

use crate::Error;
use crate::task::Task;
use crate::task::archived::RemoteArgs;
use crate::task::cell;
use crate::task::raw::TaskRef;
use crate::task::registry::{LiveFn, ResultGlue};
use crate::task::remote::Encode;
use crate::task::slots::Value;
use crate::transport::wire::{self, BlobWriter, Check, Wire};

/// Numbers whose archived form has their native layout, so an archived
/// vector of them is read as a slice in place.
///
/// # Safety
///
/// `Archived<Self>` has the size, alignment and bit meaning of `Self`.
pub unsafe trait Plain: Copy + 'static {}

macro_rules! plain {
    ($($t:ty),*) => { $(
        // SAFETY: on little-endian targets rkyv archives these numbers as
        // their little-endian (native) representation, with natural alignment.
        #[cfg(target_endian = "little")]
        unsafe impl Plain for $t {}
    )* };
}
plain!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

/// Probes a parameter type `P` of a `#[task]`.
pub struct ParamProbe<P>(PhantomData<fn() -> P>);

impl<P> ParamProbe<P> {
    /// A probe.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        ParamProbe(PhantomData)
    }
}

impl<P> std::fmt::Debug for ParamProbe<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ParamProbe")
    }
}

/// Level 8: a handle to a value living in this process.
pub trait LiveHandle<H> {
    /// This parameter can cross processes (as a handle).
    fn remote(&self) -> bool {
        true
    }
    /// Argument `i`: the handle, bound to this process's value.
    fn decode<'r>(&self, args: &'r RemoteArgs<'_>, i: usize) -> Result<&'r H, Error>;
}

impl<T: Send + 'static> LiveHandle<crate::Mutable<T>> for &&&&&&&ParamProbe<&crate::Mutable<T>> {
    fn decode<'r>(&self, args: &'r RemoteArgs<'_>, i: usize) -> Result<&'r crate::Mutable<T>, Error> {
        Ok(args.keep(super::data::read_mutable::<T>(args.bytes(i)?)?))
    }
}

impl<T: Send + 'static> LiveHandle<crate::Shard<T>> for &&&&&&&ParamProbe<&crate::Shard<T>> {
    fn decode<'r>(&self, args: &'r RemoteArgs<'_>, i: usize) -> Result<&'r crate::Shard<T>, Error> {
        Ok(args.keep(super::data::read_shard::<T>(args.bytes(i)?)?))
    }
}

/// Level 7: a slice of plain numbers, read in place.
pub trait PlainSlice<T> {
    /// This parameter can cross processes.
    fn remote(&self) -> bool {
        true
    }
    /// Argument `i`, read in place.
    fn decode<'r>(&self, args: &'r RemoteArgs<'_>, i: usize) -> Result<&'r [T], Error>;
}

impl<T: Plain + Wire> PlainSlice<T> for &&&&&&ParamProbe<&[T]> {
    fn decode<'r>(&self, args: &'r RemoteArgs<'_>, i: usize) -> Result<&'r [T], Error> {
        let archived = wire::access::<ArchivedVec<Archived<T>>>(args.bytes(i)?)?;
        let items = archived.as_slice();
        // SAFETY: `T: Plain`, so `Archived<T>` has `T`'s layout and meaning;
        // the slice borrows the argument bytes, which live as long as `args`.
        Ok(unsafe { std::slice::from_raw_parts(items.as_ptr().cast::<T>(), items.len()) })
    }
}

/// Level 6: a slice, deserialized.
pub trait WireSlice<T> {
    /// This parameter can cross processes.
    fn remote(&self) -> bool {
        true
    }
    /// Argument `i`, deserialized and kept for the call.
    fn decode<'r>(&self, args: &'r RemoteArgs<'_>, i: usize) -> Result<&'r [T], Error>;
}

impl<T: Wire + Send + 'static> WireSlice<T> for &&&&&ParamProbe<&[T]> {
    fn decode<'r>(&self, args: &'r RemoteArgs<'_>, i: usize) -> Result<&'r [T], Error> {
        let v: Vec<T> = wire::decode(args.bytes(i)?)?;
        Ok(args.keep(v).as_slice())
    }
}

/// Level 5: a string, read in place.
pub trait WireStr {
    /// This parameter can cross processes.
    fn remote(&self) -> bool {
        true
    }
    /// Argument `i`, read in place.
    fn decode<'r>(&self, args: &'r RemoteArgs<'_>, i: usize) -> Result<&'r str, Error>;
}

impl WireStr for &&&&ParamProbe<&str> {
    fn decode<'r>(&self, args: &'r RemoteArgs<'_>, i: usize) -> Result<&'r str, Error> {
        Ok(wire::access::<ArchivedString>(args.bytes(i)?)?.as_str())
    }
}

/// Level 4: an archived value, read in place.
pub trait InPlace<A> {
    /// This parameter can cross processes.
    fn remote(&self) -> bool {
        true
    }
    /// Argument `i`, validated and read in place.
    fn decode<'r>(&self, args: &'r RemoteArgs<'_>, i: usize) -> Result<&'r A, Error>;
}

impl<A: for<'a> Check<'a>> InPlace<A> for &&&ParamProbe<&A> {
    fn decode<'r>(&self, args: &'r RemoteArgs<'_>, i: usize) -> Result<&'r A, Error> {
        wire::access::<A>(args.bytes(i)?)
    }
}

/// Level 3: a borrowed value, deserialized.
pub trait WireRef<T> {
    /// This parameter can cross processes.
    fn remote(&self) -> bool {
        true
    }
    /// Argument `i`, deserialized and kept for the call.
    fn decode<'r>(&self, args: &'r RemoteArgs<'_>, i: usize) -> Result<&'r T, Error>;
}

impl<T: Wire + Send + 'static> WireRef<T> for &&ParamProbe<&T> {
    fn decode<'r>(&self, args: &'r RemoteArgs<'_>, i: usize) -> Result<&'r T, Error> {
        let v: T = wire::decode(args.bytes(i)?)?;
        Ok(args.keep(v))
    }
}

/// Level 2: an owned value, deserialized.
pub trait WireOwned<T> {
    /// This parameter can cross processes.
    fn remote(&self) -> bool {
        true
    }
    /// Argument `i`, deserialized.
    fn decode(&self, args: &RemoteArgs<'_>, i: usize) -> Result<T, Error>;
}

impl<T: Wire> WireOwned<T> for &ParamProbe<T> {
    fn decode(&self, args: &RemoteArgs<'_>, i: usize) -> Result<T, Error> {
        wire::decode(args.bytes(i)?)
    }
}

/// Level 1: a parameter that cannot cross processes.
pub trait LocalOnly {
    /// This parameter cannot cross processes.
    fn remote(&self) -> bool {
        false
    }
    /// Never called for a task that is not remote; an error if it is.
    fn decode<Q>(&self, args: &RemoteArgs<'_>, i: usize) -> Result<Q, Error>;
}

impl<P> LocalOnly for ParamProbe<P> {
    fn decode<Q>(&self, _: &RemoteArgs<'_>, i: usize) -> Result<Q, Error> {
        Err(Error::Codec(format!("parameter {i} (`{}`) cannot cross processes", std::any::type_name::<P>())))
    }
}

/// Probes a `#[task]`'s result type `R`.
pub struct ResultProbe<R>(PhantomData<fn() -> R>);

impl<R> ResultProbe<R> {
    /// A probe.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        ResultProbe(PhantomData)
    }
}

impl<R> std::fmt::Debug for ResultProbe<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResultProbe")
    }
}

/// A vector of plain numbers: decoded with one copy of its bytes.
pub trait PlainVecResult<T> {
    /// The typed operations on the result.
    fn glue(&self) -> Option<ResultGlue>;
    /// Archives a result.
    #[allow(clippy::ptr_arg)] // called as `encode(&result)` like the other levels
    fn encode(&self, value: &Vec<T>) -> Result<AlignedVec<16>, Error>;
}

impl<T: Plain + Wire + Send + Sync> PlainVecResult<T> for &&ResultProbe<Vec<T>> {
    fn glue(&self) -> Option<ResultGlue> {
        Some(ResultGlue { finish: finish_plain::<T>, fill: fill_plain::<T> })
    }

    fn encode(&self, value: &Vec<T>) -> Result<AlignedVec<16>, Error> {
        wire::to_vec(value)
    }
}

fn plain_vec<T: Plain + Wire>(bytes: &[u8]) -> Result<Vec<T>, Error> {
    let archived = wire::access::<ArchivedVec<Archived<T>>>(bytes)?;
    let items = archived.as_slice();
    // SAFETY: `T: Plain`: `Archived<T>` has `T`'s layout and meaning.
    let items: &[T] = unsafe { std::slice::from_raw_parts(items.as_ptr().cast::<T>(), items.len()) };
    Ok(copy_large(items))
}

/// At this size a fresh vector's first-touch page faults cost more than
/// the copy: ask for huge pages.
const HUGE_COPY: usize = 4 << 20;

/// `items.to_vec()`, asking the kernel to back a large destination with
/// transparent huge pages first. A fresh 64 MiB vector otherwise takes
/// 16,384 page faults while it is written, which more than halves the
/// bandwidth of the copy; with huge pages it takes 32.
fn copy_large<T: Copy>(items: &[T]) -> Vec<T> {
    let bytes = size_of_val(items);
    if bytes < HUGE_COPY {
        return items.to_vec();
    }
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let base = out.as_mut_ptr() as usize;
        let (start, end) = (base.next_multiple_of(HUGE), (base + bytes) & !(HUGE - 1));
        if end > start {
            // SAFETY: the range lies inside `out`'s allocation, which nothing
            // has touched yet; MADV_HUGEPAGE is a hint that changes no
            // contents, and its failure (THP off) is harmless.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    out.extend_from_slice(items);
    out
}

/// # Safety
///
/// As [`finish`].
unsafe fn finish_plain<T: Plain + Wire + Send + Sync>(task: TaskRef, bytes: &[u8]) -> Result<(), Error> {
    match plain_vec::<T>(bytes) {
        // SAFETY: per this function's contract.
        Ok(value) => unsafe {
            cell::succeed_elsewhere(task, value);
            Ok(())
        },
        Err(e) => {
            cell::fail_elsewhere(task, e.clone());
            Err(e)
        }
    }
}

/// # Safety
///
/// As [`fill`].
unsafe fn fill_plain<T: Plain + Wire + Send + Sync>(task: &TaskRef, bytes: &[u8]) -> Result<(), Error> {
    let value = plain_vec::<T>(bytes)?;
    // SAFETY: per this function's contract.
    unsafe { cell::fill_elsewhere(task, value) };
    Ok(())
}

/// A result that archives.
pub trait WireResult<R> {
    /// The typed operations on the result.
    fn glue(&self) -> Option<ResultGlue>;
    /// Archives a result.
    fn encode(&self, value: &R) -> Result<AlignedVec<16>, Error>;
}

impl<R: Wire + Send + Sync + 'static> WireResult<R> for &ResultProbe<R> {
    fn glue(&self) -> Option<ResultGlue> {
        Some(ResultGlue { finish: finish::<R>, fill: fill::<R> })
    }

    fn encode(&self, value: &R) -> Result<AlignedVec<16>, Error> {
        wire::to_vec(value)
    }
}

/// A result that can be kept alive in a process (`dirk::mutable_on`,
/// `dirk::shard`): made by a function with no arguments.
pub trait LiveResult<R> {
    /// Keeps `f`'s result alive.
    fn live(&self, f: fn() -> R) -> Option<LiveFn>;
}

impl<R: Send + 'static> LiveResult<R> for &ResultProbe<R> {
    fn live(&self, f: fn() -> R) -> Option<LiveFn> {
        Some(LiveFn(Box::new(move || Box::new(f()))))
    }
}

/// A result that cannot be kept alive in a process.
pub trait LocalLive<R> {
    /// None.
    fn live(&self, f: fn() -> R) -> Option<LiveFn>;
}

impl<R> LocalLive<R> for ResultProbe<R> {
    fn live(&self, _: fn() -> R) -> Option<LiveFn> {
        None
    }
}

/// A result that does not archive.
pub trait LocalResult<R> {
    /// None: the result cannot cross processes.
    fn glue(&self) -> Option<ResultGlue>;
    /// An error: the result cannot cross processes.
    fn encode(&self, value: &R) -> Result<AlignedVec<16>, Error>;
}

impl<R> LocalResult<R> for ResultProbe<R> {
    fn glue(&self) -> Option<ResultGlue> {
        None
    }

    fn encode(&self, _: &R) -> Result<AlignedVec<16>, Error> {
        Err(Error::Codec(format!("the result type `{}` cannot cross processes", std::any::type_name::<R>())))
    }
}

/// # Safety
///
/// `task` was built with value type `R`, and the caller claimed it.
unsafe fn finish<R: Wire + Send + Sync + 'static>(task: TaskRef, bytes: &[u8]) -> Result<(), Error> {
    match wire::decode::<R>(bytes) {
        Ok(value) => {
            // SAFETY: per this function's contract.
            unsafe { cell::succeed_elsewhere(task, value) };
            Ok(())
        }
        Err(e) => {
            cell::fail_elsewhere(task, e.clone());
            Err(e)
        }
    }
}

/// # Safety
///
/// `task` was built with value type `R`, completed `ELSEWHERE`, and the
/// caller is its only filler.
unsafe fn fill<R: Wire + Send + Sync + 'static>(task: &TaskRef, bytes: &[u8]) -> Result<(), Error> {
    let value = wire::decode::<R>(bytes)?;
    // SAFETY: per this function's contract.
    unsafe { cell::fill_elsewhere(task, value) };
    Ok(())
}

fn encode_any<T: Wire + 'static>(value: &dyn Any, writer: BlobWriter) -> Result<BlobWriter, Error> {
    let value = value.downcast_ref::<T>().ok_or_else(|| {
        Error::Codec(format!("an argument is not the `{}` it was spawned with", std::any::type_name::<T>()))
    })?;
    wire::serialize_into(value, writer)
}

/// Probes the value type of one argument slot at a `spawn!`.
pub struct SlotProbe<T>(PhantomData<fn() -> T>);

impl<T> std::fmt::Debug for SlotProbe<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SlotProbe")
    }
}

/// The value type of a slot: `T` for `Value<T>` and `Task<T>`.
pub trait SlotValue {
    /// The value type.
    type Value;
}

impl<T> SlotValue for Value<T> {
    type Value = T;
}

impl<T> SlotValue for Task<T> {
    type Value = T;
}

/// A list of input handles stays in its process: its probe finds no codec.
impl<T> SlotValue for crate::task::slots::Tasks<T> {
    type Value = Vec<Task<T>>;
}

/// The probe for `slot`'s value type.
pub fn slot_probe<S: SlotValue>(_: &S) -> SlotProbe<S::Value> {
    SlotProbe(PhantomData)
}

/// A file, which the worker that runs the task opens itself.
pub trait FileSlot {
    /// Where the file is, for the worker.
    fn encoder(&self) -> Option<Encode>;
}

/// A handle to a value that lives in one process (or one per process).
pub trait HandleSlot {
    /// How to send the handle, and where its task runs.
    fn encoder(&self) -> Option<Encode>;
}

impl<T: Send + 'static> HandleSlot for &&SlotProbe<crate::Mutable<T>> {
    fn encoder(&self) -> Option<Encode> {
        Some(Encode {
            write: super::data::write_handle::<crate::Mutable<T>>,
            pin: Some(super::data::pin_mutable::<T>),
            file: None,
        })
    }
}

impl<T: Send + 'static> HandleSlot for &&SlotProbe<crate::Shard<T>> {
    fn encoder(&self) -> Option<Encode> {
        Some(Encode {
            write: super::data::write_handle::<crate::Shard<T>>,
            pin: Some(super::data::pin_shard::<T>),
            file: None,
        })
    }
}

/// An argument that archives.
pub trait WireSlot {
    /// How to archive it.
    fn encoder(&self) -> Option<Encode>;
}

impl<T: Wire + 'static> WireSlot for &SlotProbe<T> {
    fn encoder(&self) -> Option<Encode> {
        Some(Encode { write: encode_any::<T>, pin: None, file: None })
    }
}

/// An argument that does not archive.
pub trait LocalSlot {
    /// None: it cannot cross processes.
    fn encoder(&self) -> Option<Encode>;
}

impl<T> LocalSlot for SlotProbe<T> {
    fn encoder(&self) -> Option<Encode> {
        None
    }
}
