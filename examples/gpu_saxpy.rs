//! SAXPY (`y = a * x + y`) on a GPU as dirk tasks.
//!
//! A CPU task makes the inputs, two GPU tasks run kernels one after the
//! other (the intermediate result never leaves the device), and a CPU task
//! checks the result, which is downloaded once. Runs on any GPU CubeCL's
//! wgpu runtime finds, or on Mesa's software Vulkan driver without one.
//!
//! ```text
//! cargo run --release --features gpu --example gpu_saxpy
//! ```

use cubecl::prelude::*;
use dirk::gpu::{Gpu, GpuVec, processors};
use dirk::prelude::*;

#[cube(launch)]
fn saxpy_kernel(a: f32, x: &[f32], y: &mut [f32]) {
    let i = ABSOLUTE_POS;
    if i < y.len() {
        y[i] += a * x[i];
    }
}

/// `a * x + y` on the GPU; `y`'s buffer is reused for the result.
#[task(gpu)]
fn saxpy(gpu: &Gpu, a: f32, x: GpuVec<f32>, mut y: GpuVec<f32>) -> GpuVec<f32> {
    let (count, dim) = gpu.grid(y.len());
    saxpy_kernel::launch(gpu.client(), count, dim, a, x.arg(gpu), y.arg_mut(gpu));
    y
}

#[task]
fn inputs(n: usize) -> (Vec<f32>, Vec<f32>) {
    let x = (0..n).map(|i| (i % 1000) as f32 / 1000.0).collect();
    let y = (0..n).map(|i| (i % 7) as f32).collect();
    (x, y)
}

/// The largest difference from the same computation on the CPU.
#[task]
fn max_error(result: &[f32], x: &[f32], y: &[f32]) -> f32 {
    let expected = x.iter().zip(y).map(|(x, y)| 3.0 * x + (2.0 * x + y));
    result.iter().zip(expected).map(|(r, e)| (r - e).abs()).fold(0.0, f32::max)
}

#[dirk::main]
fn main() -> Result<(), Error> {
    let n = 1 << 22;
    let gpus = processors();
    let Some(gpu) = gpus.first() else {
        eprintln!("no GPU: install a Vulkan driver (Mesa's software one is `mesa-vulkan-drivers` on Debian)");
        return Ok(());
    };
    println!("{} processor(s); running on {gpu}", gpus.len());

    let start = std::time::Instant::now();
    let (x, y) = spawn!(inputs(n)).fetch()?;
    let shared_x = GpuVec::from(x.clone()); // one vector for both tasks: uploaded once
    let first = spawn!(saxpy(2.0, shared_x.clone(), y.clone())); // uploads x and y
    let second = spawn!(saxpy(3.0, shared_x, &first)); // x and `first` are on the GPU already
    let error = spawn!(max_error(&second, x, y)).fetch()?; // downloads `second`
    let elapsed = start.elapsed();

    let moved = gpu.transfers();
    println!("y = 3x + (2x + y) over {n} floats in {elapsed:.2?}, largest error {error:e}");
    println!(
        "moved: {} uploads ({} MiB), {} download(s) ({} MiB)",
        moved.uploads,
        moved.bytes_uploaded >> 20,
        moved.downloads,
        moved.bytes_downloaded >> 20
    );
    assert!(error < 1e-4, "the GPU result differs from the CPU's by {error}");
    Ok(())
}
