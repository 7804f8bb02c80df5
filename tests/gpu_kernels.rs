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
        y[i] += a * x[i];
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

/// Sums `input` in blocks: unit `u` of the launch adds every `total`-th
/// element from its position, then each cube adds its units' sums in
/// shared memory and writes one sum per cube.
#[cube(launch)]
fn block_sums(input: &[i32], output: &mut [i32], #[comptime] block: usize) {
    let mut partial = Shared::new_slice(block);
    let unit = UNIT_POS as usize;
    let total = CUBE_COUNT * block;
    let mut sum = 0i32;
    for i in range_stepped(ABSOLUTE_POS, input.len(), total) {
        sum += input[i];
    }
    partial[unit] = sum;
    sync_cube();
    // A runtime value (the cube's size is `block`): `block / 2` would be a
    // compile-time constant, which a runtime loop cannot change.
    let mut step = CUBE_DIM as usize / 2;
    while step > 0 {
        if unit < step {
            let other = partial[unit + step];
            partial[unit] += other;
        }
        sync_cube();
        step /= 2;
    }
    if unit == 0 {
        output[CUBE_POS] = partial[0];
    }
}

/// The sum of `xs`, computed on the GPU in rounds of block sums; the
/// result stays on the device (a vector of one element).
#[task(gpu)]
fn gpu_sum(gpu: &Gpu, xs: GpuVec<i32>) -> GpuVec<i32> {
    const BLOCK: usize = 256;
    let mut current = xs;
    loop {
        let cubes = current.len().div_ceil(BLOCK).clamp(1, 64);
        let mut sums = gpu.empty::<i32>(cubes);
        block_sums::launch(
            gpu.client(),
            CubeCount::Static(cubes as u32, 1, 1),
            CubeDim::new_1d(BLOCK as u32),
            current.arg(gpu),
            sums.arg_mut(gpu),
            BLOCK,
        );
        if cubes == 1 {
            return sums;
        }
        current = sums;
    }
}

#[test]
fn a_reduction_matches_the_cpu() {
    within(GPU_LIMIT, || {
        for n in [1, 255, 256, 1000, 65_536 + 17, 1_000_000] {
            let xs: Vec<i32> = (0..n).map(|i| i % 1000 - 500).collect();
            let expected: i32 = xs.iter().sum();
            let total = spawn!(gpu_sum(xs));
            assert_eq!(total.fetch_vec().unwrap(), [expected], "sum of {n} elements");
        }
    });
}

/// `output = image ⊛ weights` with zero padding: one unit per pixel of a
/// `width` × `height` image, weights a square of side `2 * radius + 1`.
#[cube(launch)]
fn convolve(image: &[f32], weights: &[f32], output: &mut [f32], width: u32, height: u32, #[comptime] radius: u32) {
    let pos = ABSOLUTE_POS;
    if pos < output.len() {
        let x = (pos % width as usize) as i32;
        let y = (pos / width as usize) as i32;
        let side = 2 * radius + 1;
        let mut acc = 0.0f32;
        for dy in 0..side {
            for dx in 0..side {
                let sx = x + dx as i32 - radius as i32;
                let sy = y + dy as i32 - radius as i32;
                if sx >= 0 && sy >= 0 && sx < width as i32 && sy < height as i32 {
                    acc += image[(sy as u32 * width + sx as u32) as usize] * weights[(dy * side + dx) as usize];
                }
            }
        }
        output[pos] = acc;
    }
}

#[task(gpu)]
fn gpu_convolve(gpu: &Gpu, image: GpuVec<f32>, weights: GpuVec<f32>, width: usize, radius: u32) -> GpuVec<f32> {
    let height = image.len() / width;
    let mut output = gpu.empty::<f32>(image.len());
    let (count, dim) = gpu.grid(image.len());
    convolve::launch(
        gpu.client(),
        count,
        dim,
        image.arg(gpu),
        weights.arg(gpu),
        output.arg_mut(gpu),
        width as u32,
        height as u32,
        radius,
    );
    output
}

fn convolve_cpu(image: &[f32], weights: &[f32], width: usize, radius: usize) -> Vec<f32> {
    let height = image.len() / width;
    let side = 2 * radius + 1;
    let mut out = vec![0.0; image.len()];
    for y in 0..height {
        for x in 0..width {
            let mut acc = 0.0;
            for dy in 0..side {
                for dx in 0..side {
                    let (sx, sy) = ((x + dx) as isize - radius as isize, (y + dy) as isize - radius as isize);
                    if sx >= 0 && sy >= 0 && (sx as usize) < width && (sy as usize) < height {
                        acc += image[sy as usize * width + sx as usize] * weights[dy * side + dx];
                    }
                }
            }
            out[y * width + x] = acc;
        }
    }
    out
}

#[test]
fn a_2d_convolution_matches_the_cpu() {
    within(GPU_LIMIT, || {
        let (width, height) = (123, 77);
        let image: Vec<f32> = (0..width * height).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect();
        for radius in [1_u32, 2] {
            let side = 2 * radius as usize + 1;
            let weights: Vec<f32> = (0..side * side).map(|i| (i % 5) as f32 - 1.5).collect();
            let expected = convolve_cpu(&image, &weights, width, radius as usize);
            let out = spawn!(gpu_convolve(image.clone(), weights, width, radius)).fetch_vec().unwrap();
            assert_eq!(out.len(), expected.len());
            for (i, (gpu, cpu)) in out.iter().zip(&expected).enumerate() {
                assert!((gpu - cpu).abs() <= 1e-4 * cpu.abs().max(1.0), "pixel {i}: GPU {gpu}, CPU {cpu}");
            }
        }
    });
}
