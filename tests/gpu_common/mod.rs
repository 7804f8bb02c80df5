//! GPU tasks the GPU tests share: small kernels whose CPU versions are
//! obvious, and the time bound for tests that compile shaders.

#![allow(dead_code)]

use std::time::Duration;

use cubecl::prelude::*;
use dirk::gpu::{Gpu, GpuVec};
use dirk::task;

/// GPU tests compile shaders on first use, which a software driver does on
/// the CPU: allow more than the usual few seconds.
pub(crate) const GPU_LIMIT: Duration = Duration::from_secs(120);

#[cube(launch)]
pub(crate) fn saxpy_kernel(a: f32, x: &[f32], y: &mut [f32]) {
    let i = ABSOLUTE_POS;
    if i < y.len() {
        y[i] += a * x[i];
    }
}

/// `a * x + y`, in place in `y` (which is copied first on the device when
/// another task also reads it).
#[task(gpu)]
pub(crate) fn saxpy(gpu: &Gpu, a: f32, x: GpuVec<f32>, mut y: GpuVec<f32>) -> GpuVec<f32> {
    let (count, dim) = gpu.grid(y.len());
    saxpy_kernel::launch(gpu.client(), count, dim, a, x.arg(gpu), y.arg_mut(gpu));
    y
}

#[cube(launch)]
pub(crate) fn scale_kernel(a: f32, x: &[f32], out: &mut [f32]) {
    let i = ABSOLUTE_POS;
    if i < out.len() {
        out[i] = a * x[i];
    }
}

/// `a * x` into a new device buffer.
#[task(gpu)]
pub(crate) fn scale(gpu: &Gpu, x: &GpuVec<f32>, a: f32) -> GpuVec<f32> {
    let mut out = gpu.empty::<f32>(x.len());
    let (count, dim) = gpu.grid(x.len());
    scale_kernel::launch(gpu.client(), count, dim, a, x.arg(gpu), out.arg_mut(gpu));
    out
}

/// A launch the device refuses: more units per cube than any device has.
#[task(gpu)]
pub(crate) fn oversized_launch(gpu: &Gpu, x: GpuVec<f32>) -> GpuVec<f32> {
    let mut out = gpu.empty::<f32>(x.len());
    scale_kernel::launch(
        gpu.client(),
        CubeCount::Static(1, 1, 1),
        CubeDim::new_1d(1 << 20),
        2.0,
        x.arg(gpu),
        out.arg_mut(gpu),
    );
    out
}

/// The name of the thread a GPU task's body runs on.
#[task(gpu)]
pub(crate) fn body_thread(_gpu: &Gpu) -> String {
    std::thread::current().name().unwrap_or("").to_owned()
}
