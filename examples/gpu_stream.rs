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

use cubecl::prelude::*;
use dirk::gpu::{Gpu, GpuVec, processors};
use dirk::prelude::*;
use dirk::{Error, Scope};

const WIDTH: usize = 320;
const HEIGHT: usize = 240;

/// A 3×3 box blur with clamped edges.
#[cube(launch)]
fn blur(image: &[f32], out: &mut [f32], width: u32, height: u32) {
    let pos = ABSOLUTE_POS;
    if pos < out.len() {
        let x = (pos % width as usize) as i32;
        let y = (pos / width as usize) as i32;
        let mut acc = 0.0f32;
        for dy in 0..3i32 {
            for dx in 0..3i32 {
                let sx = clamp(x + dx - 1, 0, width as i32 - 1);
                let sy = clamp(y + dy - 1, 0, height as i32 - 1);
                acc += image[(sy * width as i32 + sx) as usize];
            }
        }
        out[pos] = acc / 9.0;
    }
}

/// The Sobel gradient magnitude, zero on the border.
#[cube(launch)]
fn sobel(image: &[f32], out: &mut [f32], width: u32, height: u32) {
    let pos = ABSOLUTE_POS;
    if pos < out.len() {
        let w = width as usize;
        let (x, y) = (pos % w, pos / w);
        let mut magnitude = 0.0f32;
        if x > 0 && y > 0 && x + 1 < w && y + 1 < height as usize {
            let (top, mid, bottom) = ((y - 1) * w + x, y * w + x, (y + 1) * w + x);
            let gx = image[top + 1] + 2.0 * image[mid + 1] + image[bottom + 1]
                - image[top - 1]
                - 2.0 * image[mid - 1]
                - image[bottom - 1];
            let gy = image[bottom - 1] + 2.0 * image[bottom] + image[bottom + 1]
                - image[top - 1]
                - 2.0 * image[top]
                - image[top + 1];
            magnitude = f32::sqrt(gx * gx + gy * gy);
        }
        out[pos] = magnitude;
    }
}

/// Blur, then edges, on the GPU the stage runs on.
#[task(gpu)]
fn edges(gpu: &Gpu, frame: GpuVec<f32>) -> GpuVec<f32> {
    let (count, dim) = gpu.grid(frame.len());
    let (w, h) = (WIDTH as u32, HEIGHT as u32);
    let mut blurred = gpu.empty::<f32>(frame.len());
    blur::launch(gpu.client(), count.clone(), dim, frame.arg(gpu), blurred.arg_mut(gpu), w, h);
    let mut out = gpu.empty::<f32>(frame.len());
    sobel::launch(gpu.client(), count, dim, blurred.arg(gpu), out.arg_mut(gpu), w, h);
    out
}

/// Frame `k`: a bright disc moving over a gradient, still on the host.
fn frame(k: u32) -> GpuVec<f32> {
    let (cx, cy, r) = ((40 + 3 * k as usize) % WIDTH, HEIGHT / 2, 30.0);
    (0..WIDTH * HEIGHT)
        .map(|i| {
            let (x, y) = (i % WIDTH, i / WIDTH);
            let d = ((x as f32 - cx as f32).powi(2) + (y as f32 - cy as f32).powi(2)).sqrt();
            x as f32 / WIDTH as f32 * 0.2 + if d < r { 1.0 } else { 0.0 }
        })
        .collect()
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
    Ok(edges.iter().filter(|&&e| e > 1.0).count() as f32 / edges.len() as f32)
}

fn edges_on_cpu(image: &[f32]) -> Vec<f32> {
    let (w, h) = (WIDTH as i32, HEIGHT as i32);
    let at = |img: &[f32], x: i32, y: i32| img[(y * w + x) as usize];
    let mut blurred = vec![0.0; image.len()];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for dy in 0..3 {
                for dx in 0..3 {
                    acc += at(image, (x + dx - 1).clamp(0, w - 1), (y + dy - 1).clamp(0, h - 1));
                }
            }
            blurred[(y * w + x) as usize] = acc / 9.0;
        }
    }
    let mut out = vec![0.0; image.len()];
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let p = |dx: i32, dy: i32| at(&blurred, x + dx - 1, y + dy - 1);
            let gx = p(2, 0) + 2.0 * p(2, 1) + p(2, 2) - p(0, 0) - 2.0 * p(0, 1) - p(0, 2);
            let gy = p(0, 2) + 2.0 * p(1, 2) + p(2, 2) - p(0, 0) - 2.0 * p(1, 0) - p(2, 0);
            out[(y * w + x) as usize] = (gx * gx + gy * gy).sqrt();
        }
    }
    out
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
