//! Live image filtering on synthetic frames: a frame source (a moving
//! disc over a gradient), then blur, greyscale and Laplacian, then a sink
//! that measures each frame's edge energy and keeps the last frame as a
//! PGM image.
//!
//! Run it with `cargo run --release --example stream_filter`.
//!
//! The counting allocator is installed and the region reports allocations,
//! so the statistics printed at the end show what each stage allocates per
//! frame: the source and each filter allocate their output frame once.

use std::path::PathBuf;
use std::time::Instant;

use dirk::prelude::*;

#[global_allocator]
static ALLOC: dirk::alloc::Counting = dirk::alloc::Counting;

const W: usize = 320;
const H: usize = 240;

/// An image: `channels` bytes per pixel, rows top to bottom.
#[derive(Clone, Debug)]
struct Frame {
    index: u32,
    channels: usize,
    data: Vec<u8>,
}

impl Frame {
    fn at(&self, x: usize, y: usize, c: usize) -> u8 {
        self.data[(y * W + x) * self.channels + c]
    }
}

/// Frame `index`: a red-to-blue gradient with a bright disc moving across it.
fn synthesize(index: u32) -> Frame {
    let (cx, cy, r) = ((index as usize * 7) % W, H / 2, 40usize);
    let mut data = Vec::with_capacity(W * H * 3);
    for y in 0..H {
        for x in 0..W {
            let inside = x.abs_diff(cx).pow(2) + y.abs_diff(cy).pow(2) <= r * r;
            let (red, green, blue) =
                if inside { (250, 240, 200) } else { ((x * 255 / W) as u8, 40, (y * 255 / H) as u8) };
            data.extend([red, green, blue]);
        }
    }
    Frame { index, channels: 3, data }
}

/// A 3x3 box blur, each channel apart; edges copy the nearest pixel.
fn blur(frame: &Frame) -> Frame {
    let c = frame.channels;
    let mut data = vec![0u8; frame.data.len()];
    for y in 0..H {
        for x in 0..W {
            for ch in 0..c {
                let mut sum = 0u32;
                for dy in [-1isize, 0, 1] {
                    for dx in [-1isize, 0, 1] {
                        let xx = (x as isize + dx).clamp(0, W as isize - 1) as usize;
                        let yy = (y as isize + dy).clamp(0, H as isize - 1) as usize;
                        sum += u32::from(frame.at(xx, yy, ch));
                    }
                }
                data[(y * W + x) * c + ch] = (sum / 9) as u8;
            }
        }
    }
    Frame { index: frame.index, channels: c, data }
}

/// Luma from RGB (Rec. 601 weights).
fn greyscale(frame: Frame) -> Frame {
    let data = frame
        .data
        .chunks_exact(3)
        .map(|p| ((299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2])) / 1000) as u8)
        .collect();
    Frame { index: frame.index, channels: 1, data }
}

/// The absolute 4-neighbour Laplacian of a grey frame.
fn laplacian(frame: Frame) -> Frame {
    let mut data = vec![0u8; W * H];
    for y in 1..H - 1 {
        for x in 1..W - 1 {
            let v = 4 * i32::from(frame.at(x, y, 0))
                - i32::from(frame.at(x - 1, y, 0))
                - i32::from(frame.at(x + 1, y, 0))
                - i32::from(frame.at(x, y - 1, 0))
                - i32::from(frame.at(x, y + 1, 0));
            data[y * W + x] = v.unsigned_abs().min(255) as u8;
        }
    }
    Frame { index: frame.index, channels: 1, data }
}

/// The frame's mean edge strength, and the frame written as `last.pgm`.
fn measure(frame: &Frame, out: &PathBuf) -> Result<f64, std::io::Error> {
    let mut pgm = format!("P5\n{W} {H}\n255\n").into_bytes();
    pgm.extend_from_slice(&frame.data);
    std::fs::write(out, pgm)?;
    Ok(frame.data.iter().map(|&v| f64::from(v)).sum::<f64>() / frame.data.len() as f64)
}

fn main() -> Result<(), dirk::Error> {
    let frames = 60u64;
    let out = std::env::temp_dir().join("dirk_stream_filter_last.pgm");
    let path = out.clone(); // the region takes its own copy, like a `move` closure
    let mut next = 0u32;
    let start = Instant::now();
    let energies = streaming! {
        #![dirk(max_evals = frames, report_allocs)]
        // `buffer` gives each filter its own node: the stages of different
        // frames run at the same time on different cores.
        #[dirk(buffer = 2)] let frame = { next += 1; synthesize(next) };
        #[dirk(buffer = 2)] let soft = blur(&frame);
        #[dirk(buffer = 2)] let grey = greyscale(soft);
        #[dirk(buffer = 2)] let edges = laplacian(grey);
        let energy = measure(&edges, &path)?;
        (edges.index, energy)
    };
    for (index, energy) in energies.iter() {
        if index % 10 == 0 {
            println!("frame {index:3}: edge energy {energy:.3}");
        }
    }
    energies.wait()?;
    let took = start.elapsed();
    println!("{frames} frames of {W}x{H} in {took:.0?} ({:.0} frames/s)", frames as f64 / took.as_secs_f64());
    println!("last frame's edges: {}", out.display());
    print!("{}", energies.stats());
    Ok(())
}
