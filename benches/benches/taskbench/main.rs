//! Task Bench (Slaughter et al., SC'20) on dirk and its peers, with the
//! METG(50%) sweep: the smallest task granularity that still reaches half
//! of the machine's peak flop rate.
//!
//! What each case times, and how, is [`ABOUT`] (BENCHMARKS.md shows it too).

mod systems;

use std::time::Instant;

use dirk_benches::harness::{about, pick, quick, report, sample_of, target, target_ratio};
use dirk_benches::taskbench::metg::{self, Point};
use dirk_benches::taskbench::{kernel, pattern};
use systems::Shape;

/// What each case of this benchmark times, and how.
const ABOUT: &str = "\
A graph has `steps` time steps of `width` points; each point depends on points of the step before as its pattern says (Task Bench's own definitions, tested in `dirk_benches::taskbench::pattern`), runs the compute-bound kernel, and checks that its inputs are the outputs of exactly the expected points. Systems, measured in the same run, each given the same precomputed dependency lists:\n\
- `dirk dynamic`: one `spawn!` per point, inputs passed as handles;\n\
- `dirk static, build + run`: the same graph built into a `dirk::Graph`, compiled and run, all inside the timer;\n\
- `dirk static, replay`: a plan compiled once (outside the timer) and run again: what a program that reruns one graph pays;\n\
- `rayon par_iter`: one `par_iter` per time step (bulk synchronous);\n\
- `tokio task graph`: one task per point, spawned from inside the runtime, each awaiting its inputs' `JoinHandle`s (shared, as several points read one output).\n\
The sweep runs the kernel with 2^12 down to 2^0 iterations (and 0). The width is the number of cores (Task Bench's setting, the headline) and 4. Each METG is the median of several sweeps (5 in a full run), with the least and greatest; every sweep extracts its METG by Task Bench's rule (`dirk_benches::taskbench::metg`), and the smallest passing point of the sweep is reported beside it.";

fn main() {
    about("taskbench", ABOUT);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let steps = pick(1000, 100);
    let sweeps = pick(5, 1);
    let ks: Vec<u32> = if quick() { vec![12, 9, 6, 3, 0] } else { (0..=12).rev().collect() };
    let only = std::env::var("DIRK_TASKBENCH_PATTERN").ok();
    let mut peak = peak_flops(cores);
    eprintln!(
        "taskbench: {cores} threads, widths {cores} and 4, {steps} steps, peak {:.2} Gflop/s, {sweeps} sweeps",
        peak / 1e9
    );
    let mut systems = systems::all(cores);
    let mut widths = vec![cores, 4];
    widths.dedup();
    for &width in &widths {
        for pattern in pattern::ALL {
            if only.as_deref().is_some_and(|p| p != pattern.name()) {
                continue;
            }
            // The machine is shared: re-measure the peak and keep the best seen.
            peak = peak.max(peak_flops(cores));
            let shape = Shape::new(pattern, width, steps);
            let case = format!(
                "METG(50%) {}, width {width}{}",
                pattern.name(),
                if width == cores { " (= cores)" } else { "" }
            );
            for system in systems.iter_mut() {
                let tasks = shape.tasks() as f64;
                system.run(&shape, 1 << ks[0]); // warm up
                let mut runs: Vec<Vec<Point>> = Vec::new();
                for _ in 0..sweeps {
                    let sweep = ks.iter().map(|&k| {
                        let iterations = if k == 0 { 0 } else { 1u64 << k };
                        let wall = system.run(&shape, iterations).as_secs_f64();
                        Point {
                            granularity: wall * cores as f64 / tasks * 1e6,
                            efficiency: tasks * kernel::flops(iterations) / wall / peak,
                        }
                    });
                    runs.push(sweep.collect());
                }
                if width == cores {
                    curve(&pattern.name(), system.name(), &runs);
                }
                let found: Vec<metg::Metg> = runs.iter().filter_map(|sweep| metg::metg(sweep, 0.5)).collect();
                if found.len() < runs.len() {
                    eprintln!(
                        "  taskbench    {case:<40} {:<26} {} of {} sweeps never reach 50%",
                        system.name(),
                        runs.len() - found.len(),
                        runs.len()
                    );
                }
                if found.is_empty() {
                    continue;
                }
                let interpolated = sample_of(found.iter().map(|m| m.interpolated).collect());
                let passing = sample_of(found.iter().map(|m| m.passing).collect());
                report("taskbench", &case, system.name(), interpolated, "µs", true);
                let passing_case = format!("{case}, smallest passing point");
                report("taskbench", &passing_case, system.name(), passing, "µs", true);
            }
            if pattern == pattern::Pattern::Stencil1d {
                targets(&case, width == cores);
            }
        }
    }
}

/// Issue 7's targets and issue 21's, on stencil_1d.
fn targets(case: &str, headline: bool) {
    if !headline {
        return;
    }
    target("taskbench", case, "dirk dynamic", 2.0, "METG(50%) of stencil_1d, dynamic spawns (issue 7)");
    target("taskbench", case, "dirk static, replay", 1.0, "METG(50%) of stencil_1d, compiled plan replayed (issue 7)");
    target_ratio(
        "taskbench",
        case,
        "dirk dynamic",
        "rayon par_iter",
        1.0,
        "METG(50%) of stencil_1d, dynamic spawns, width = cores: at most rayon's (issue 21)",
    );
}

/// One curve per system: each sweep point's median granularity and efficiency over the sweeps.
fn curve(pattern: &str, system: &str, runs: &[Vec<Point>]) {
    for k in 0..runs[0].len() {
        let median = |f: fn(&Point) -> f64| sample_of(runs.iter().map(|sweep| f(&sweep[k])).collect()).median;
        let (x, y) = (median(|p| p.granularity), median(|p| p.efficiency));
        println!("@curve {{\"plot\":\"taskbench {pattern}\",\"system\":{system:?},\"x\":{x},\"y\":{y}}}");
    }
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
