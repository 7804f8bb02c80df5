//! The device context a GPU task's body receives ([`Gpu`]), and running a
//! closure with one from any thread ([`with_gpu`], [`with_any_gpu`]).
//!
//! A context exists only on its processor's runner thread, for the length
//! of one body. It records the buffers the body's kernels write
//! ([`GpuVec::arg_mut`], [`Gpu::empty`]); when the body returns, their
//! launches are checked, so a kernel that failed to launch fails the body
//! with `Error::Gpu`.
//!
//! A closure given to `with_gpu` on another thread travels to the runner
//! as a `Job::Call` whose lifetime is erased; the caller waits (running
//! other tasks if it is a worker) until the call has run or was refused,
//! which the call's `Drop` signals in both cases.

use std::cell::RefCell;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::thread;

use crate::sync::latch::OneShot;
use cubecl::client::Client;
use cubecl::prelude::{CubeCount, CubeDim};
use cubecl::server::Handle;

use super::processor::{CallJob, Job, NO_DEVICE, Processor, Runner, current_runner};
use super::transfers::Transfers;
use super::{Element, GpuVec};
use crate::error::Error;
use crate::exec::{self, wait};

/// The device context of a GPU task: the first parameter of a
/// `#[task(gpu)]` function, through which its body allocates device memory
/// and launches CubeCL kernels.
///
/// ```
/// use dirk::prelude::*;
/// use dirk::gpu::{Gpu, GpuVec};
///
/// #[task(gpu)]
/// fn ramp(gpu: &Gpu, n: usize) -> GpuVec<u32> {
///     gpu.upload(&(0..n as u32).collect::<Vec<_>>())
/// }
///
/// assert_eq!(spawn!(ramp(4)).fetch_vec()?, [0, 1, 2, 3]);
/// # Ok::<(), dirk::Error>(())
/// ```
pub struct Gpu {
    pub(crate) runner: Arc<Runner>,
    client: Client,
    written: RefCell<Vec<Handle>>,
}

impl fmt::Debug for Gpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gpu").field("index", &self.runner.index).field("name", &self.runner.name()).finish()
    }
}

impl Gpu {
    /// The processor's index: the `i` of `Scope::gpu(i)`.
    pub fn index(&self) -> usize {
        self.runner.index
    }

    /// The device's name.
    pub fn name(&self) -> String {
        self.runner.name()
    }

    /// The processor this context belongs to.
    pub fn processor(&self) -> Processor {
        Processor(Arc::clone(&self.runner))
    }

    /// The CubeCL client to launch kernels with:
    /// `my_kernel::launch(gpu.client(), count, dim, args..)`.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Copies `data` to the device. The copy is queued and this returns at
    /// once; kernels launched after it see the data.
    pub fn upload<T: Element>(&self, data: &[T]) -> GpuVec<T> {
        let handle = self.upload_bytes(T::as_bytes(data));
        GpuVec::resident(Arc::clone(&self.runner), handle, data.len())
    }

    /// `len` elements of device memory for a kernel to fill, not
    /// initialised: pass it to the kernel with [`GpuVec::arg_mut`].
    pub fn empty<T: Element>(&self, len: usize) -> GpuVec<T> {
        let handle = self.client.empty(byte_len::<T>(len));
        GpuVec::resident(Arc::clone(&self.runner), handle, len)
    }

    /// A launch shape covering `n` units, one per element: cubes of up to
    /// 256 units, as many as needed (in two dimensions past 65535 cubes).
    /// A kernel indexes with `ABSOLUTE_POS` and skips positions `>= n`.
    pub fn grid(&self, n: usize) -> (CubeCount, CubeDim) {
        let max = self.client.properties().hardware.max_units_per_cube.max(1);
        let dim = 256.min(max);
        let cubes = n.div_ceil(dim as usize).max(1);
        let x = cubes.min(65_535);
        let y = cubes.div_ceil(x);
        (CubeCount::Static(x as u32, y as u32, 1), CubeDim::new_1d(dim))
    }

    /// Waits until the device has run everything queued on it so far.
    pub fn sync(&self) -> Result<(), Error> {
        cubecl::future::block_on(self.client.sync()).map_err(|e| self.failure("waiting for the device", &e))
    }

    /// This processor's transfers so far.
    pub fn transfers(&self) -> Transfers {
        self.runner.counters.snapshot()
    }

    /// Uploads bytes (at least one, as devices refuse empty buffers), counted.
    pub(crate) fn upload_bytes(&self, bytes: &[u8]) -> Handle {
        self.runner.counters.uploaded(bytes.len());
        if bytes.is_empty() {
            return self.client.create_from_slice(&[0]);
        }
        self.client.create_from_slice(bytes)
    }

    /// Notes that a kernel of this body writes `handle`.
    pub(crate) fn wrote(&self, handle: &Handle) {
        self.written.borrow_mut().push(handle.clone());
    }

    /// Checks the launches that wrote this body's buffers.
    fn finish(self) -> Result<(), Error> {
        let written = self.written.take();
        if written.is_empty() {
            return Ok(());
        }
        self.client.check(&written).map_err(|e| self.failure("a kernel launch", &e))
    }

    /// `Error::Gpu` for a failed device operation.
    pub(crate) fn failure(&self, what: &str, cause: &dyn fmt::Display) -> Error {
        Error::Gpu(format!("{what} on {} failed: {}", self.runner, one_line(&cause.to_string())))
    }
}

/// Bytes of `len` elements of `T`, at least one.
pub(crate) fn byte_len<T>(len: usize) -> usize {
    (len * size_of::<T>()).max(1)
}

/// A CubeCL error message (several lines: causes, a backtrace) as one line.
pub(crate) fn one_line(message: &str) -> String {
    let mut out = String::new();
    for line in message.lines().map(str::trim) {
        if line.starts_with("Backtrace") || line.starts_with("Asked at") {
            break;
        }
        if line.is_empty() || line == "Caused by:" {
            continue;
        }
        if !out.is_empty() {
            out.push_str(if out.ends_with('.') { " " } else { ": " });
        }
        out.push_str(line.trim_end_matches(':'));
    }
    out
}

/// Runs `f` with the device context of GPU `index` of the current runtime,
/// on that GPU's runner thread, and returns its value.
///
/// On the runner itself (inside a GPU task on that GPU) `f` runs at once;
/// elsewhere the caller waits for the runner to get to it, and a worker
/// thread runs other tasks meanwhile. A panic in `f` resumes on the caller.
///
/// Fails with [`Error::Gpu`] when there is no such GPU, its device cannot
/// be opened, or a kernel `f` launched failed to launch.
///
/// ```
/// use dirk::gpu::{GpuVec, with_gpu};
///
/// let on_device: GpuVec<f32> = with_gpu(0, |gpu| gpu.upload(&[1.0, 2.0]))?;
/// assert_eq!(on_device.to_vec()?, [1.0, 2.0]);
/// # Ok::<(), dirk::Error>(())
/// ```
pub fn with_gpu<R, F>(index: usize, f: F) -> Result<R, Error>
where
    F: FnOnce(&Gpu) -> R + Send,
    R: Send,
{
    let gpus = super::processor::of(exec::current());
    let runners = gpus.all();
    let Some(runner) = runners.get(index) else {
        return Err(Error::Gpu(match runners.len() {
            0 => format!("there is no GPU {index}: {NO_DEVICE}"),
            n => format!("there is no GPU {index}: this runtime has GPUs 0..={}", n - 1),
        }));
    };
    run_on(runner, f)
}

/// [`with_gpu`] on whichever GPU is least busy (the caller's own, inside a
/// GPU task).
pub fn with_any_gpu<R, F>(f: F) -> Result<R, Error>
where
    F: FnOnce(&Gpu) -> R + Send,
    R: Send,
{
    let gpus = super::processor::of(exec::current());
    match gpus.pick() {
        Some(runner) => run_on(runner, f),
        None => Err(Error::Gpu(NO_DEVICE.to_owned())),
    }
}

fn run_on<R, F>(runner: &Arc<Runner>, f: F) -> Result<R, Error>
where
    F: FnOnce(&Gpu) -> R + Send,
    R: Send,
{
    match current_runner() {
        Some(me) if Arc::ptr_eq(&me, runner) => run_here(runner, f),
        _ => forward(runner, f),
    }
}

/// Runs `f` on this thread, which is `runner`'s.
fn run_here<R>(runner: &Arc<Runner>, f: impl FnOnce(&Gpu) -> R) -> Result<R, Error> {
    let client = runner.client().map_err(|reason| runner.unavailable(reason))?.clone();
    let gpu = Gpu { runner: Arc::clone(runner), client, written: RefCell::new(Vec::new()) };
    let value = f(&gpu);
    gpu.finish()?;
    Ok(value)
}

/// Hands `f` to `runner`'s thread and waits for its outcome.
fn forward<R, F>(runner: &Arc<Runner>, f: F) -> Result<R, Error>
where
    F: FnOnce(&Gpu) -> R + Send,
    R: Send,
{
    let latch = OneShot::new();
    let call = Forwarded { f: Some(f), latch: &raw const latch };
    let job: CallJob<'_> = Box::new(move |runner: &Arc<Runner>| call.run(runner));
    // SAFETY: the job borrows `latch` and whatever `f` borrows. It is either
    // called or dropped uncalled (a stopped runner refuses it), and in both
    // cases `Forwarded::drop` drops `f` and then opens the latch, its last touch
    // of borrowed data. This function does not return before it sees the
    // latch open, so every borrow outlives its use.
    let job: CallJob<'static> = unsafe { std::mem::transmute(job) };
    runner.push(Job::Call(job));
    wait::until(&|| latch.is_open(), None);
    match latch.into_value() {
        Some(Ok(outcome)) => outcome,
        Some(Err(panic)) => resume_unwind(panic),
        None => Err(Error::Gpu(format!("{runner} stopped (its runtime shut down) before it ran the call"))),
    }
}

type Outcome<R> = thread::Result<Result<R, Error>>;

struct Forwarded<F, R> {
    f: Option<F>,
    /// A pointer: the caller frees the latch as soon as it sees it open.
    latch: *const OneShot<Outcome<R>>,
}

// SAFETY: the call carries `f` (`Send`) to the runner's thread and sends
// an `R` (`Send`) back through the latch, which any thread may open.
unsafe impl<F: Send, R: Send> Send for Forwarded<F, R> {}

impl<F: FnOnce(&Gpu) -> R, R> Forwarded<F, R> {
    fn run(mut self, runner: &Arc<Runner>) {
        if let Some(f) = self.f.take() {
            let outcome = catch_unwind(AssertUnwindSafe(|| run_here(runner, f)));
            // SAFETY: the latch lives until it is opened, in `drop` below.
            unsafe { &*self.latch }.put(outcome);
        }
    }
}

impl<F, R> Drop for Forwarded<F, R> {
    fn drop(&mut self) {
        drop(self.f.take());
        // SAFETY: the latch lives until it is opened, here, and this call
        // does not touch it again.
        unsafe { OneShot::open(self.latch) };
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn cubecl_errors_become_one_line_without_their_backtrace() {
        let message = "Several failures at once\nCaused by:\n  A launch error happened\nCaused by:\n  Too many \
                       resources were requested during launch\nCube dim exceeds maximum bounds.\nRequested (2048, 1, \
                       1), max is (1024, 1024, 1024).\nBacktrace\nNo backtrace available\nAsked at:\nsomewhere";
        assert_eq!(
            one_line(message),
            "Several failures at once: A launch error happened: Too many resources were requested during launch: \
             Cube dim exceeds maximum bounds. Requested (2048, 1, 1), max is (1024, 1024, 1024)."
        );
        assert_eq!(one_line("plain"), "plain");
    }
}
