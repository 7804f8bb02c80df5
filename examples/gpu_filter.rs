//! An image filter on a GPU over a sequence of frames: each frame is
//! blurred and its edges found by two kernels (the blurred frame stays on
//! the device between them), then a CPU task measures it.
//!
//! Frames are independent tasks, so the CPU makes frame k+1 while the GPU
//! filters frame k; only the edge map of each frame comes back. Frame 0 is
//! checked against the same filter on the CPU.
//!
//! ```text
//! cargo run --release --features gpu --example gpu_filter
//! ```

use dirk::gpu::processors;
use dirk::prelude::*;
use filter::{HEIGHT, WIDTH, edge_fraction, edges, edges_on_cpu, image};

#[path = "shared/filter.rs"]
mod filter;

/// Frame `k`, made by a task on a CPU thread.
#[task]
fn frame(k: usize) -> Vec<f32> {
    image(k)
}

#[dirk::main]
fn main() -> Result<(), Error> {
    let frames = 60;
    let Some(gpu) = processors().into_iter().next() else {
        eprintln!("no GPU: install a Vulkan driver (Mesa's software one is `mesa-vulkan-drivers` on Debian)");
        return Ok(());
    };
    println!("filtering {frames} frames of {WIDTH}×{HEIGHT} on {gpu}");

    let start = std::time::Instant::now();
    let filtered: Vec<_> = (0..frames).map(|k| spawn!(edges(spawn!(frame(k))))).collect();
    let fractions: Vec<_> = filtered.iter().map(|e| spawn!(edge_fraction(e))).collect();
    for (k, fraction) in fractions.iter().enumerate().step_by(10) {
        println!("frame {k:3}: {:.2}% of pixels on an edge", 100.0 * fraction.fetch()?);
    }
    dirk::sync(|| fractions.iter().try_for_each(Task::wait))??;
    let elapsed = start.elapsed();

    let expected = edges_on_cpu(&spawn!(frame(0)).fetch()?);
    let got = filtered[0].fetch_vec()?;
    let worst = got.iter().zip(&expected).map(|(g, e)| (g - e).abs()).fold(0.0, f32::max);
    assert!(worst < 1e-4, "frame 0 differs from the CPU filter by {worst}");

    let moved = gpu.transfers();
    println!(
        "{frames} frames in {elapsed:.2?} ({:.1} frames/s); frame 0 matches the CPU filter (largest difference {worst:e})",
        frames as f64 / elapsed.as_secs_f64()
    );
    println!("moved: {} uploads, {} downloads (one of each per frame)", moved.uploads, moved.downloads);
    Ok(())
}
