//! The image filter shared by the GPU examples and the GPU benchmark: a
//! 3×3 blur then a Sobel edge detector as two CubeCL kernels, the same
//! filter on the CPU to check them, and synthetic frames to feed them.
//!
//! Included with `#[path = "shared/filter.rs"] mod filter;`; each includer
//! uses part of it.

#![allow(dead_code)]

use cubecl::prelude::*;
use dirk::gpu::{Gpu, GpuVec};
use dirk::prelude::*;

pub(crate) const WIDTH: usize = 320;
pub(crate) const HEIGHT: usize = 240;

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

/// Blur, then edges, on the GPU the task runs on: the blurred frame never
/// leaves the device.
#[task(gpu)]
pub(crate) fn edges(gpu: &Gpu, frame: GpuVec<f32>) -> GpuVec<f32> {
    let (count, dim) = gpu.grid(frame.len());
    let (w, h) = (WIDTH as u32, HEIGHT as u32);
    let mut blurred = gpu.empty::<f32>(frame.len());
    blur::launch(gpu.client(), count.clone(), dim, frame.arg(gpu), blurred.arg_mut(gpu), w, h);
    let mut out = gpu.empty::<f32>(frame.len());
    sobel::launch(gpu.client(), count, dim, blurred.arg(gpu), out.arg_mut(gpu), w, h);
    out
}

/// The pixels of frame `k`: a bright disc moving over a gradient.
pub(crate) fn image(k: usize) -> Vec<f32> {
    let (cx, cy, r) = ((40 + 3 * k) % WIDTH, HEIGHT / 2, 30.0);
    (0..WIDTH * HEIGHT)
        .map(|i| {
            let (x, y) = (i % WIDTH, i / WIDTH);
            let d = ((x as f32 - cx as f32).powi(2) + (y as f32 - cy as f32).powi(2)).sqrt();
            x as f32 / WIDTH as f32 * 0.2 + if d < r { 1.0 } else { 0.0 }
        })
        .collect()
}

/// The fraction of pixels on a strong edge.
#[task]
pub(crate) fn edge_fraction(edges: &[f32]) -> f32 {
    edges.iter().filter(|&&e| e > 1.0).count() as f32 / edges.len() as f32
}

/// The same blur and edges on the CPU, to check the kernels with.
pub(crate) fn edges_on_cpu(image: &[f32]) -> Vec<f32> {
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
