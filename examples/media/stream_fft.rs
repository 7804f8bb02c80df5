//! Streaming sinusoids and FFTs: each frame is the sum of K random
//! sinusoids, its FFT (rustfft), the spectrum's magnitudes, and a plot of
//! the signal over its spectrum (plotters), written as one PNG per frame.
//!
//! Run it with `cargo run --release --example stream_fft`; it prints the
//! directory the frames are in (`DIRK_FFT_FRAMES` sets how many).
//!
//! The graph: `signal` fans out to the FFT and to the plot, which borrows
//! it; `frame` is a second source the plot reads beside them (fan-in).
//! `buffer = 4` on the slow stages gives each its own node, so the FFT of
//! one frame runs while the previous one is drawn.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use dirk::prelude::*;
use plotters::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

/// Samples per frame.
const N: usize = 400;
/// Sampling frequency, Hz.
const FS: f64 = 1200.0;
/// Sinusoids per frame.
const K: usize = 10;

/// A small deterministic random source (xorshift64*). A stage's state
/// moves to the thread that runs the region, so it must be `Send`:
/// `rand::thread_rng()` is not, a seeded generator (`rand`'s
/// `StdRng::seed_from_u64`, or this one) is, and repeats its run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `s(t) = Σ A_j sin(2π f_j t)` with `A_j` in 1..10 and `f_j` in 1..500 Hz.
fn sinusoids(rng: &mut Rng) -> Vec<f64> {
    let waves: Vec<(f64, f64)> = (0..K).map(|_| (1.0 + 9.0 * rng.next(), 1.0 + 499.0 * rng.next())).collect();
    (0..N)
        .map(|i| {
            let t = i as f64 / FS;
            waves.iter().map(|(a, f)| a * (2.0 * std::f64::consts::PI * f * t).sin()).sum()
        })
        .collect()
}

fn spectrum(fft: &Arc<dyn Fft<f64>>, signal: &[f64]) -> Vec<Complex<f64>> {
    let mut buffer: Vec<Complex<f64>> = signal.iter().map(|&x| Complex::new(x, 0.0)).collect();
    fft.process(&mut buffer);
    buffer
}

/// Magnitudes of the non-negative frequencies, scaled to amplitudes.
fn magnitudes(spectrum: Vec<Complex<f64>>) -> Vec<f64> {
    spectrum[..N / 2].iter().map(|c| 2.0 * c.norm() / N as f64).collect()
}

/// Draws the signal (top) over its spectrum (bottom) into `frame_NNN.png`.
fn plot(dir: &Path, frame: u32, signal: &[f64], magnitudes: &[f64]) -> Result<PathBuf, String> {
    let path = dir.join(format!("frame_{frame:03}.png"));
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::new(&path, (640, 480)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(160);
        let peak = signal.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let mut time = ChartBuilder::on(&top).margin(10).build_cartesian_2d(0.0..N as f64 / FS, -peak..peak)?;
        time.draw_series(LineSeries::new(signal.iter().enumerate().map(|(i, &v)| (i as f64 / FS, v)), &BLUE))?;
        let top_mag = magnitudes.iter().fold(1.0f64, |m, &v| m.max(v));
        let mut freq = ChartBuilder::on(&bottom).margin(10).build_cartesian_2d(0.0..FS / 2.0, 0.0..top_mag * 1.1)?;
        let hz = |i: usize| i as f64 * FS / N as f64;
        freq.draw_series(
            magnitudes
                .iter()
                .enumerate()
                .map(|(i, &m)| Rectangle::new([(hz(i), 0.0), (hz(i) + FS / N as f64 * 0.8, m)], RED.filled())),
        )?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| format!("could not draw {}: {e}", path.display()))?;
    Ok(path)
}

fn main() -> Result<(), dirk::Error> {
    let frames: u64 = std::env::var("DIRK_FFT_FRAMES").ok().and_then(|v| v.parse().ok()).unwrap_or(24);
    let dir = std::env::temp_dir().join("dirk_stream_fft");
    std::fs::create_dir_all(&dir).map_err(|e| dirk::Error::Config(format!("{}: {e}", dir.display())))?;
    println!("writing {frames} frames to {}", dir.display());

    let fft = FftPlanner::<f64>::new().plan_fft_forward(N);
    let mut rng = Rng(0x5EED);
    let mut count = 0u32;
    let start = Instant::now();
    let written = streaming! {
        #![dirk(max_evals = frames)]
        let frame = { count += 1; count };
        #[dirk(buffer = 4)] let signal = sinusoids(&mut rng);
        #[dirk(buffer = 4)] let spec = spectrum(&fft, &signal);
        let mags = magnitudes(spec);
        #[dirk(buffer = 4)] let png = plot(&dir, frame, &signal, &mags)?;
        png
    };
    for path in written.iter() {
        println!("  {}", path.display());
    }
    written.wait()?;
    println!("{frames} frames in {:.0?}", start.elapsed());
    print!("{}", written.stats());
    Ok(())
}
