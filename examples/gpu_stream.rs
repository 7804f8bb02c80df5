//! The streaming image filter on a GPU: synthetic frames, then a blur and
//! an edge kernel in a GPU stage of `streaming!`, then a CPU stage that
//! measures each frame (and checks frame 0 against the same filter on the
//! CPU).
//!
//! The GPU stage runs on GPU 0's runner: while the kernels of frame k run,
//! it already uploads frame k+1, waiting in its input; the blurred frame
//! never leaves the device, and only the edge map comes back.
//!
//! ```text
//! cargo run --release --features gpu --example gpu_stream
//! ```

use std::time::Instant;

use dirk::gpu::{GpuVec, processors};
use dirk::prelude::*;
use dirk::{Error, Scope};
use filter::{HEIGHT, WIDTH, edge_fraction, edges, edges_on_cpu, image};

#[path = "shared/filter.rs"]
mod filter;

/// Frame `k`, still on the host.
fn frame(k: u32) -> GpuVec<f32> {
    image(k as usize).into()
}

/// The fraction of pixels on a strong edge; frame 0 is also compared with
/// the CPU filter.
fn measure(k: u32, edges: GpuVec<f32>) -> Result<f32, String> {
    let edges = edges.host().map_err(|e| e.to_string())?; // the one download of this frame
    if k == 0 {
        let expected = edges_on_cpu(&frame(0).to_vec().map_err(|e| e.to_string())?);
        let worst = edges.iter().zip(&expected).map(|(g, e)| (g - e).abs()).fold(0.0, f32::max);
        if worst > 1e-4 {
            return Err(format!("frame 0 differs from the CPU filter by {worst}"));
        }
    }
    Ok(edge_fraction(edges))
}

fn main() -> Result<(), Error> {
    let frames = 200u32;
    let Some(gpu) = processors().into_iter().next() else {
        eprintln!("no GPU: install a Vulkan driver (Mesa's software one is `mesa-vulkan-drivers` on Debian)");
        return Ok(());
    };
    println!("filtering {frames} frames of {WIDTH}×{HEIGHT} on {gpu}");
    let before = gpu.transfers();
    let start = Instant::now();
    let mut next = 0u32;
    let fractions = streaming! {
        let k = { next += 1; (next <= frames).then_some(next - 1) }?;
        #[dirk(buffer = 4)] let image = frame(k);
        #[dirk(scope = Scope::gpu(0), buffer = 4)] let found = edges(image);
        let fraction = measure(k, found)?;
        (k, fraction)
    };
    for (k, fraction) in fractions.iter() {
        if k % 40 == 0 {
            println!("frame {k:3}: {:.2}% of pixels on an edge", 100.0 * fraction);
        }
    }
    fractions.wait()?;
    let took = start.elapsed();
    let moved = gpu.transfers() - before;
    println!(
        "{frames} frames in {took:.2?} ({:.1} frames/s); frame 0 matches the CPU filter",
        f64::from(frames) / took.as_secs_f64()
    );
    println!(
        "moved: {} uploads ({} started ahead of their frame), {} downloads",
        moved.uploads, moved.prefetches, moved.downloads
    );
    Ok(())
}
