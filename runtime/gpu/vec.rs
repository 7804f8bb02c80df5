//! [`GpuVec<T>`]: a vector that lives on the host, on GPUs, or both, and is
//! copied between them only when someone needs it there.
//!
//! A `GpuVec` is a cheap handle (`Clone` shares the data) to an immutable
//! value: the host copy, once made, is kept in a `OnceLock` so readers can
//! borrow it (a downloaded copy is CubeCL's read buffer itself, not copied
//! again); device copies are kept per processor. Invariant: there is always
//! a host copy or at least one device copy.
//!
//! Protocol: copies are made under the `copies` lock, so two readers that
//! race to download or upload the same data move it once. A kernel writes
//! only through [`GpuVec::arg_mut`], which needs `&mut self` and, when the
//! data is shared with other handles, first copies it into a buffer of its
//! own on the device (copy on write), so no other reader ever sees a write.

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::sync::Mutex;
use cubecl::bytes::Bytes;
use cubecl::prelude::BufferArg;
use cubecl::server::Handle;

use super::Element;
use super::context::{Gpu, byte_len};
use super::kernels;
use super::processor::Runner;
use super::task::fail;
use crate::error::Error;

/// A vector for GPU tasks: on the host, on a GPU, or both; moved only when
/// needed (see the [module docs](super) for when that is).
///
/// ```
/// use dirk::gpu::{GpuVec, with_gpu};
///
/// let v = GpuVec::from(vec![1_u32, 2, 3]);          // on the host
/// with_gpu(0, |gpu| { v.arg(gpu); })?;          // uploaded for a kernel
/// assert!(v.is_on_host() && v.gpus() == [0]);
/// assert_eq!(v.host()?, [1, 2, 3]);                  // no download: the host copy is kept
/// # Ok::<(), dirk::Error>(())
/// ```
pub struct GpuVec<T: Element> {
    inner: Arc<Storage<T>>,
}

struct Storage<T> {
    len: usize,
    host: OnceLock<Host<T>>,
    copies: Mutex<Vec<Resident>>,
}

/// The host copy: the vector it was made from, or the bytes a download
/// produced (aligned for `T`, holding at least `len` elements).
enum Host<T> {
    Vec(Vec<T>),
    Read(Bytes),
}

impl<T: Element> Host<T> {
    fn elements(&self, len: usize) -> &[T] {
        match self {
            Host::Vec(data) => data,
            Host::Read(bytes) => &T::from_bytes(bytes)[..len],
        }
    }
}

/// A copy of the data on one processor.
struct Resident {
    runner: Arc<Runner>,
    handle: Handle,
}

impl<T: Element> GpuVec<T> {
    /// Data already on `runner`'s device.
    pub(crate) fn resident(runner: Arc<Runner>, handle: Handle, len: usize) -> Self {
        let storage = Storage { len, host: OnceLock::new(), copies: Mutex::new(vec![Resident { runner, handle }]) };
        GpuVec { inner: Arc::new(storage) }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.inner.len
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.inner.len == 0
    }

    /// Whether a host copy exists (reading it costs no download).
    pub fn is_on_host(&self) -> bool {
        self.inner.host.get().is_some()
    }

    /// The GPU processors that hold a copy, by index.
    pub fn gpus(&self) -> Vec<usize> {
        self.inner.copies.lock().iter().map(|r| r.runner.index).collect()
    }

    /// The data on the host, downloaded (once, and kept) if only a GPU has
    /// it. Fails with [`Error::Gpu`] when the download fails.
    pub fn host(&self) -> Result<&[T], Error> {
        if let Some(host) = self.inner.host.get() {
            return Ok(host.elements(self.inner.len));
        }
        let copies = self.inner.copies.lock();
        self.download(&copies)
    }

    /// A copy of the data on the host; see [`host`](GpuVec::host).
    pub fn to_vec(&self) -> Result<Vec<T>, Error> {
        self.host().map(<[T]>::to_vec)
    }

    /// Downloads from the first device copy unless a host copy appeared
    /// meanwhile. The caller holds the `copies` lock.
    fn download(&self, copies: &[Resident]) -> Result<&[T], Error> {
        let len = self.inner.len;
        if let Some(host) = self.inner.host.get() {
            return Ok(host.elements(len));
        }
        let from = copies.first().expect("a GpuVec without a host copy has a device copy");
        let data = if len == 0 { Host::Vec(Vec::new()) } else { read(&from.runner, &from.handle, len)? };
        Ok(self.inner.host.get_or_init(|| data).elements(len))
    }

    /// The buffer holding the data on `gpu`'s device, uploading it there
    /// first if needed (from the host copy, downloading that first if only
    /// another GPU has the data). For CubeCL arguments other than slices,
    /// such as tensors.
    ///
    /// Fails the running task with [`Error::Gpu`] when a copy fails.
    pub fn handle(&self, gpu: &Gpu) -> Handle {
        let mut copies = self.inner.copies.lock();
        if let Some(copy) = copies.iter().find(|r| Arc::ptr_eq(&r.runner, &gpu.runner)) {
            return copy.handle.clone();
        }
        let host = self.download(&copies).unwrap_or_else(|e| fail(e));
        let handle = gpu.upload_bytes(T::as_bytes(host));
        copies.push(Resident { runner: Arc::clone(&gpu.runner), handle: handle.clone() });
        handle
    }

    /// Starts copying the data to `runner`'s device unless it is there
    /// already: what a streaming GPU stage does with its next element
    /// (see `gpu/prefetch.rs`). The upload is queued and this
    /// returns at once (a copy only another GPU holds is downloaded first,
    /// which waits). `Ok(true)` when it uploaded.
    pub(crate) fn prefetch_to(&self, runner: &Arc<Runner>) -> Result<bool, Error> {
        let mut copies = self.inner.copies.lock();
        if copies.iter().any(|r| Arc::ptr_eq(&r.runner, runner)) {
            return Ok(false);
        }
        let client = runner.client().map_err(|reason| runner.unavailable(reason))?;
        let bytes = T::as_bytes(self.download(&copies)?);
        runner.counters.uploaded(bytes.len());
        let handle = client.create_from_slice(if bytes.is_empty() { &[0] } else { bytes });
        copies.push(Resident { runner: Arc::clone(runner), handle });
        Ok(true)
    }

    /// The data as a kernel argument for a `&[T]` parameter, uploaded to
    /// `gpu` first if it is not there yet. Pass it only to parameters the
    /// kernel reads: a kernel that writes through it breaks every other
    /// holder of this data (use [`arg_mut`](GpuVec::arg_mut) for those).
    ///
    /// Fails the running task with [`Error::Gpu`] when a copy fails.
    pub fn arg(&self, gpu: &Gpu) -> BufferArg {
        let handle = self.handle(gpu);
        // SAFETY: `handle` holds `len` elements of `T` (every buffer of this
        // vector was made for exactly that many).
        unsafe { BufferArg::from_raw_parts(handle, self.inner.len) }
    }

    /// The data as a kernel argument for a `&mut [T]` parameter, on `gpu`.
    ///
    /// When other handles share the data, it is first copied into a buffer
    /// of this handle's own on the device, so they never see the write;
    /// copies on the host and on other GPUs are dropped, being stale once
    /// the kernel runs. The launch is checked when the task's body returns.
    ///
    /// Fails the running task with [`Error::Gpu`] when a copy fails.
    pub fn arg_mut(&mut self, gpu: &Gpu) -> BufferArg {
        let len = self.inner.len;
        let source = self.handle(gpu);
        let handle = match Arc::get_mut(&mut self.inner) {
            Some(own) => {
                own.host = OnceLock::new();
                own.copies.get_mut().retain(|r| Arc::ptr_eq(&r.runner, &gpu.runner));
                source
            }
            None => {
                let copy = gpu.client().empty(byte_len::<T>(len));
                kernels::copy::<T>(gpu, &source, &copy, len);
                *self = GpuVec::resident(Arc::clone(&gpu.runner), copy.clone(), len);
                copy
            }
        };
        gpu.wrote(&handle);
        // SAFETY: `handle` holds `len` elements of `T`, as above.
        unsafe { BufferArg::from_raw_parts(handle, len) }
    }
}

/// Downloads `len` elements of `T` from `handle` on `runner`'s device,
/// counted. Runs on the calling thread: CubeCL orders the read after the
/// kernels queued on the buffer by the runner.
fn read<T: Element>(runner: &Runner, handle: &Handle, len: usize) -> Result<Host<T>, Error> {
    let client = runner.client().map_err(|reason| runner.unavailable(reason))?;
    let bytes = client.read_one(handle.clone()).map_err(|e| {
        Error::Gpu(format!("a download from {runner} failed: {}", super::context::one_line(&e.to_string())))
    })?;
    runner.counters.downloaded(bytes.len());
    if bytes.len() < len * size_of::<T>() {
        return Err(Error::Gpu(format!(
            "a download from {runner} returned {} bytes, not {}",
            bytes.len(),
            len * size_of::<T>()
        )));
    }
    if bytes.as_ptr().align_offset(align_of::<T>()) == 0 {
        Ok(Host::Read(bytes)) // kept as it is: no copy
    } else {
        let mut data = copy_elements(&bytes);
        data.truncate(len);
        Ok(Host::Vec(data))
    }
}

/// The whole elements of `T` in `bytes`, copied into a vector of `T`'s
/// alignment (`bytes` may be aligned for bytes only).
fn copy_elements<T: Element>(bytes: &[u8]) -> Vec<T> {
    let len = bytes.len() / size_of::<T>();
    let mut out = Vec::<T>::with_capacity(len);
    // SAFETY: `out` has room for `len` elements, which is `len *
    // size_of::<T>()` bytes, no more than `bytes` holds; the regions are
    // distinct allocations. `T` is plain old data (`CubeElement: Pod`), so
    // any bytes are a valid `T`, and all `len` elements are written before
    // `set_len`.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.as_mut_ptr().cast::<u8>(), len * size_of::<T>());
        out.set_len(len);
    }
    out
}

impl<T: Element> From<Vec<T>> for GpuVec<T> {
    /// A vector on the host; uploaded when a kernel first needs it.
    fn from(data: Vec<T>) -> Self {
        let storage =
            Storage { len: data.len(), host: OnceLock::from(Host::Vec(data)), copies: Mutex::new(Vec::new()) };
        GpuVec { inner: Arc::new(storage) }
    }
}

impl<T: Element> From<&[T]> for GpuVec<T> {
    fn from(data: &[T]) -> Self {
        GpuVec::from(data.to_vec())
    }
}

impl<T: Element> FromIterator<T> for GpuVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        GpuVec::from(iter.into_iter().collect::<Vec<T>>())
    }
}

impl<T: Element> Clone for GpuVec<T> {
    /// Another handle to the same data (no copy).
    fn clone(&self) -> Self {
        GpuVec { inner: Arc::clone(&self.inner) }
    }
}

impl<T: Element> fmt::Debug for GpuVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuVec")
            .field("len", &self.inner.len)
            .field("on_host", &self.is_on_host())
            .field("gpus", &self.gpus())
            .finish()
    }
}
