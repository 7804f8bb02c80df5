//! GPUs as dirk processors: tasks that launch [CubeCL](cubecl) kernels, and
//! arrays that move between host and device only when someone needs them.
//!
//! Enabled by the `gpu` cargo feature (CubeCL's wgpu runtime: Vulkan,
//! Metal, DirectX 12 or OpenGL; on a machine without a GPU, Mesa's software
//! Vulkan driver, Debian package `mesa-vulkan-drivers`, runs the kernels on
//! the CPU). The `cuda` feature adds NVIDIA GPUs through CubeCL's CUDA
//! runtime.
//!
//! # GPU tasks
//!
//! `#[task(gpu)]` marks a function whose body launches kernels. Its first
//! parameter is the device context, a [`&Gpu`](Gpu); the attribute removes
//! it from the function's signature, so a caller (and `spawn!`) passes only
//! the other arguments, and the body receives the context of the GPU
//! processor it runs on:
//!
//! ```
//! use dirk::prelude::*;
//! use dirk::gpu::{Gpu, GpuVec};
//! use cubecl::prelude::*;
//!
//! #[cube(launch)]
//! fn saxpy_kernel(a: f32, x: &[f32], y: &mut [f32]) {
//!     let i = ABSOLUTE_POS;
//!     if i < y.len() {
//!         y[i] += a * x[i];
//!     }
//! }
//!
//! #[task(gpu)]
//! fn saxpy(gpu: &Gpu, a: f32, x: GpuVec<f32>, mut y: GpuVec<f32>) -> GpuVec<f32> {
//!     let (count, dim) = gpu.grid(y.len());
//!     saxpy_kernel::launch(gpu.client(), count, dim, a, x.arg(gpu), y.arg_mut(gpu));
//!     y
//! }
//!
//! fn main() -> Result<(), dirk::Error> {
//!     let x = vec![1.0_f32, 2.0, 3.0];
//!     let y = spawn!(saxpy(2.0, x.clone(), vec![1.0_f32; 3])); // host vectors: uploaded
//!     let z = spawn!(saxpy(3.0, x, &y));                         // `y` stays on the GPU
//!     assert_eq!(z.fetch_vec()?, [6.0, 11.0, 16.0]);            // one download
//!     Ok(())
//! }
//! ```
//!
//! (`#[cube]` kernels live at module level: CubeCL expands each into a
//! module of its own.)
//!
//! The kernels are ordinary CubeCL `#[cube]` functions: a crate that writes
//! them depends on `cubecl` (the same version as dirk, `=0.11.3`), or brings
//! dirk's into scope with `use dirk::gpu::cubecl;` where its kernels are
//! defined. CubeCL's prelude has a `Scope` of its own (the kernel compiler's):
//! where both preludes are glob-imported, import dirk's by name
//! (`use dirk::Scope;`).
//!
//! # Where GPU tasks run
//!
//! Each GPU CubeCL offers is a processor beside the CPU threads, with one
//! runner thread that owns the device's client and runs the bodies of the
//! tasks placed there, one at a time, in order. `Scope::gpu(i)` places a
//! task on GPU `i` (an index no device has fails the task at once with
//! [`Error::Scope`](crate::Error::Scope)); an unscoped `#[task(gpu)]` runs
//! its body on the least busy GPU, with the CPU thread that picked it up
//! running other tasks while it waits. A body's kernels run asynchronously:
//! the task completes once they are queued, and the device runs them in
//! queue order, so the next task on the same GPU sees their results.
//! [`processors`] lists the runtime's GPUs; [`Builder::gpus`](crate::Builder::gpus)
//! chooses them instead of discovery. [`with_gpu`] runs a closure with a
//! device context outside any task.
//!
//! # Moving data
//!
//! A [`GpuVec<T>`] is a vector that lives on the host, on a GPU, or both,
//! and moves only when it must:
//!
//! - a `Vec<T>` (a value or a CPU task's result) passed where a GPU task
//!   takes a `GpuVec<T>` becomes one that is still on the host; it is
//!   uploaded when a kernel first takes it as an argument ([`GpuVec::arg`]);
//! - a GPU task's `GpuVec` result stays on its GPU; a GPU task that
//!   consumes it on the same GPU uses it in place;
//! - it is downloaded once, when the host first needs it: a CPU task that
//!   takes `&[T]` or `Vec<T>` from it, [`GpuVec::host`],
//!   [`GpuVec::to_vec`] or [`Task::fetch_vec`](crate::Task::fetch_vec).
//!   The host copy is kept for later readers.
//!
//! Every upload and download is counted per processor
//! ([`Processor::transfers`]), so a program can check that a graph moved no
//! more than it had to.
//!
//! # Failures
//!
//! A kernel whose launch fails (an invalid cube dimension, a kernel the
//! device cannot compile), a device that cannot be opened, and a failed
//! transfer fail the task with [`Error::Gpu`](crate::Error::Gpu), whose
//! message names the task and the device. Dependents fail with
//! `Error::Upstream` as for any other failure.
//!
//! # Streams of values
//!
//! A `streaming!` stage scoped with `#[dirk(scope = Scope::gpu(i))]` runs
//! its iterations on GPU `i`'s runner, and the `#[task(gpu)]` functions it
//! calls get that device's context at once. Results stay resident, so
//! consecutive GPU stages pass data on the device; after each iteration the
//! stage starts uploading the next element if it is a host `GpuVec`
//! already waiting in its input, overlapping the current kernels (counted
//! in [`Transfers::prefetches`]; see `gpu/prefetch.rs`).

mod context;
mod kernels;
mod prefetch;
mod processor;
mod provide;
#[doc(hidden)]
pub mod task;
mod transfers;
mod vec;

pub use cubecl;
pub use cubecl::Device;

pub use self::context::{Gpu, with_any_gpu, with_gpu};
pub(crate) use self::prefetch::Prefetch;
pub(crate) use self::processor::attach;
pub use self::processor::{Processor, processors};
pub use self::transfers::Transfers;
pub use self::vec::GpuVec;

/// An element type a [`GpuVec`] holds and a kernel reads: `f32`, `i32`,
/// `u32`, `u8` and the other plain types CubeCL supports (`f64` and 64-bit
/// integers where the device does).
pub trait Element: cubecl::CubeElement + cubecl::prelude::Scalar {}

impl<T: cubecl::CubeElement + cubecl::prelude::Scalar> Element for T {}
