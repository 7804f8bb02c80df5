//! Task Bench (Slaughter et al., SC'20) on dirk and its peers, with the
//! METG(50%) sweep: the smallest task granularity that still reaches half
//! of the machine's peak flop rate.
//!
//! A graph has `steps` time steps of `width` points; each point depends on
//! points of the step before as its pattern says, runs the compute-bound
//! kernel, and checks that its inputs are the outputs of exactly the
//! expected points. Systems, measured in the same run:
//!
//! - `dirk dynamic`: one `spawn!` per point, inputs passed as handles;
//! - `dirk static`: the same graph compiled once into a `dirk::Plan`;
//! - `rayon`: one `par_iter` per time step (bulk synchronous);
//! - `tokio`: one task per point, awaiting its inputs' shared handles.
//!
//! Reports METG(50%) per pattern and system, and every sweep point as a
//! curve (efficiency against granularity) for the plots.

#[path = "harness/mod.rs"]
mod harness;
#[path = "taskbench/kernel.rs"]
mod kernel;
#[path = "taskbench/pattern.rs"]
mod pattern;
#[path = "taskbench/systems.rs"]
mod systems;

use std::time::{Duration, Instant};

use harness::{pick, report_value, target};
use systems::Shape;

const THREADS: usize = 2;

fn main() {
    let width = 2 * THREADS;
    let steps = pick(1000, 100);
    let runs = pick(3, 1);
    let ks: Vec<u32> = if harness::quick() { vec![12, 9, 6, 3, 0] } else { (0..=12).rev().collect() };
    let only = std::env::var("DIRK_TASKBENCH_PATTERN").ok();
    let mut peak = peak_flops(THREADS);
    eprintln!(
        "taskbench: {THREADS} threads, width {width}, {steps} steps, peak {:.2} Gflop/s, median of {runs}",
        peak / 1e9
    );
    let mut systems = systems::all(THREADS);
    for pattern in pattern::ALL {
        if only.as_deref().is_some_and(|p| p != pattern.name()) {
            continue;
        }
        // The machine is shared: re-measure the peak and keep the best seen.
        peak = peak.max(peak_flops(THREADS));
        let shape = Shape::new(pattern, width, steps);
        for system in systems.iter_mut() {
            let mut points = Vec::new();
            for &k in &ks {
                let iterations = if k == 0 { 0 } else { 1u64 << k };
                let wall = median(runs, || system.run(&shape, iterations));
                let tasks = shape.tasks() as f64;
                let granularity_us = wall.as_secs_f64() * THREADS as f64 / tasks * 1e6;
                let efficiency = tasks * kernel::flops(iterations) / wall.as_secs_f64() / peak;
                println!(
                    "@curve {{\"plot\":\"taskbench {}\",\"system\":{:?},\"x\":{granularity_us},\"y\":{efficiency}}}",
                    pattern.name(),
                    system.name()
                );
                points.push((granularity_us, efficiency));
            }
            let case = format!("METG(50%) {} {width}x{steps}", pattern.name());
            if pattern == pattern::Pattern::Stencil1d {
                match system.name() {
                    "dirk dynamic" => target(
                        "taskbench",
                        &case,
                        "dirk dynamic",
                        2.0,
                        "METG(50%) of stencil_1d, dynamic spawns (issue 7)",
                    ),
                    "dirk static" => target(
                        "taskbench",
                        &case,
                        "dirk static",
                        1.0,
                        "METG(50%) of stencil_1d, compiled plan (issue 7)",
                    ),
                    _ => {}
                }
            }
            match metg(&points) {
                Some(value) => report_value("taskbench", &case, system.name(), value, "µs", true),
                None => eprintln!("  taskbench    {case:<40} {:<22} never reaches 50%", system.name()),
            }
        }
    }
}

fn median(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    f(); // warm up
    let mut times: Vec<Duration> = (0..runs).map(|_| f()).collect();
    times.sort();
    times[times.len() / 2]
}

/// The machine's flop rate on this kernel: `threads` OS threads running
/// large kernels with no runtime at all.
fn peak_flops(threads: usize) -> f64 {
    let iterations = 1 << 14;
    let per_thread = pick(200, 40);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for r in 0..per_thread {
                    std::hint::black_box(kernel::kernel(iterations, (t * 1000 + r) as f64));
                }
            });
        }
    });
    (threads * per_thread) as f64 * kernel::flops(iterations) / start.elapsed().as_secs_f64()
}

/// METG(50%): the smallest granularity at which efficiency is still at
/// least 50%, interpolated (in log space) between the sweep points around
/// the crossing. `points` go from large tasks to small ones.
fn metg(points: &[(f64, f64)]) -> Option<f64> {
    let mut last_good: Option<(f64, f64)> = None;
    for &(g, e) in points {
        if e >= 0.5 {
            last_good = Some((g, e));
        } else if let Some((g_hi, e_hi)) = last_good {
            let f = (e_hi - 0.5) / (e_hi - e);
            return Some((g_hi.ln() + f * (g.ln() - g_hi.ln())).exp());
        }
    }
    last_good.map(|(g, _)| g)
}
