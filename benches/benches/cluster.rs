//! Worker processes: moving values between processes, and task overheads
//! across them, each against a peer measured in the same run.
//!
//! What each case times, and how, is [`ABOUT`] (BENCHMARKS.md shows it too).

use std::hint::black_box;
use std::time::{Duration, Instant};

use dirk::prelude::*;
use dirk_benches::harness::{about, pick, quick, report, sample, sample_of, target, target_ratio};
use dirk_benches::taskbench::kernel;
use dirk_benches::taskbench::metg::{self, Point};
use dirk_benches::taskbench::pattern::Pattern;

/// What each case of this benchmark times, and how.
const ABOUT: &str = "\
- `transfer 64 MiB`: a `Vec<f64>` of 64 MiB from process 0 to a worker (read in place there by a task taking `&[f64]`), and from a worker to process 0 (read in place here by such a task), as bandwidth; the peer is one core copying the same 64 MiB with `copy_from_slice`.\n\
- `spawn+fetch latency`: one task on another process and its result back, one at a time; the peer is the same on a thread of this process.\n\
- `stream u64 pipeline`: `streaming!` with a source on process 0 and a stage (`x + 1`, a `#[task]`) on worker 1, the tail read on process 0, as ns per element and elements per second; the peer is the same pipeline with the stage scoped to process 0.\n\
- `stream 1 MiB elements`: the same with `Vec<f64>` elements of 1 MiB read in place by the stage (`&[f64]`), as bandwidth; the peer is the same pipeline in one process.\n\
- `stencil_1d METG(50%)`: Task Bench's stencil_1d at width 8 (each point depends on points i-1, i, i+1 of the step before, clipped at the edges, as `taskbench::pattern` defines it; each task runs Task Bench's compute-bound kernel and checks its inputs) on 2 worker processes of 1 thread each, points in two blocks, one per worker; the peer is dirk in one process with 2 threads. METG(50%) is the smallest task granularity (wall time x cores / tasks) whose flop rate is still half the machine's peak, extracted by Task Bench's rule from each sweep; the median of the sweeps (5 in a full run) with the least and greatest. The general Task Bench driver is `benches/taskbench/`.\n\
- Each figure but METG is the median of 7 runs.";

const MIB: usize = 1 << 20;

#[task]
fn make(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64).collect()
}

#[task]
fn noop(i: u64) -> u64 {
    black_box(i)
}

#[task]
fn touch(xs: &[f64]) -> usize {
    black_box(xs.as_ptr());
    xs.len()
}

/// Checks that a point's input is the output of point `j` of step `t - 1`.
fn expect_input(x: &[f64], t: u64, j: usize) {
    assert_eq!((x[0], x[1]), ((t - 1) as f64, j as f64), "point of step {t} got a wrong input");
}

/// Checks that `(t, i)` depends on exactly `inputs` (Task Bench's stencil_1d), then computes.
fn compute(t: u64, i: u64, width: u64, iterations: u64, inputs: &[&[f64]]) -> Vec<f64> {
    let deps = Pattern::Stencil1d.deps(t as usize, i as usize, width as usize);
    assert_eq!(deps.len(), inputs.len(), "point ({t}, {i}) got {} inputs", inputs.len());
    for (x, &j) in inputs.iter().zip(&deps) {
        expect_input(x, t, j);
    }
    let seed = inputs.iter().map(|x| x[2]).sum::<f64>();
    vec![t as f64, i as f64, kernel::kernel(iterations, seed)]
}

/// An inner stencil point of step `t`: its inputs are points `i - 1`, `i` and `i + 1`.
#[task]
fn point(l: &[f64], c: &[f64], r: &[f64], t: u64, i: u64, width: u64, iterations: u64) -> Vec<f64> {
    compute(t, i, width, iterations, &[l, c, r])
}

/// A stencil point at an edge (Task Bench clips the window): two inputs.
#[task]
fn edge(a: &[f64], b: &[f64], t: u64, i: u64, width: u64, iterations: u64) -> Vec<f64> {
    compute(t, i, width, iterations, &[a, b])
}

#[task]
fn first(i: u64, iterations: u64) -> Vec<f64> {
    vec![0.0, i as f64, kernel::kernel(iterations, i as f64)]
}

/// Runs the stencil once; returns the wall time.
fn stencil(rt: &Runtime, width: usize, steps: usize, iterations: u64, workers: usize) -> Duration {
    let scope = move |i: usize| if workers == 0 { Scope::any() } else { Scope::worker(1 + i * workers / width).into() };
    let start = Instant::now();
    rt.run(|| {
        let (w, its) = (width as u64, iterations);
        let mut row: Vec<Task<Vec<f64>>> = (0..width).map(|i| spawn!(scope = scope(i), first(i as u64, its))).collect();
        for t in 1..steps as u64 {
            row = (0..width)
                .map(|i| {
                    let at = scope(i);
                    match Pattern::Stencil1d.deps(t as usize, i, width)[..] {
                        [l, c, r] => spawn!(scope = at, point(&row[l], &row[c], &row[r], t, i as u64, w, its)),
                        [a, b] => spawn!(scope = at, edge(&row[a], &row[b], t, i as u64, w, its)),
                        ref other => unreachable!("stencil_1d at width {width} gave {other:?}"),
                    }
                })
                .collect();
        }
        for task in &row {
            task.wait().expect("the stencil ran");
        }
    });
    start.elapsed()
}

/// The machine's peak flop rate on `cores` cores: the kernel with large
/// iterations on every core at once, or one core's rate times the cores,
/// whichever is higher, best of a few tries (the machine is shared, so it
/// is measured in the same run as the systems).
fn peak_flops(cores: usize) -> f64 {
    let (iterations, reps) = (1u64 << 16, 8);
    let one_core = (0..5)
        .map(|r| {
            let start = Instant::now();
            kernel::kernel(iterations, r as f64);
            kernel::flops(iterations) / start.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max);
    let all_cores = (0..3)
        .map(|_| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for c in 0..cores {
                    s.spawn(move || (0..reps).map(|r| kernel::kernel(iterations, (c * reps + r) as f64)).sum::<f64>());
                }
            });
            cores as f64 * reps as f64 * kernel::flops(iterations) / start.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max);
    all_cores.max(cores as f64 * one_core)
}

/// METG(50%) of the stencil in microseconds, one figure per sweep: each
/// sweep runs the kernel with 2^16 down to 2^0 iterations (and 0), one run
/// each, and extracts its METG by Task Bench's rule (`taskbench::metg`).
fn metg(name: &str, rt: &Runtime, cores: usize, workers: usize, peak: f64, sweeps: usize) -> Vec<f64> {
    let (width, steps) = (8, pick(100, 30));
    let tasks = (width * steps) as f64;
    stencil(rt, width, steps, 1 << 12, workers); // warm up
    let found: Vec<f64> = (0..sweeps)
        .filter_map(|_| {
            let points: Vec<Point> = (0..=16)
                .rev()
                .step_by(if quick() { 2 } else { 1 })
                .map(|k| {
                    let iterations = if k == 0 { 0 } else { 1u64 << k };
                    let wall = stencil(rt, width, steps, iterations, workers).as_secs_f64();
                    Point {
                        granularity: wall * cores as f64 / tasks * 1e6,
                        efficiency: tasks * kernel::flops(iterations) / wall / peak,
                    }
                })
                .collect();
            metg::metg(&points, 0.5).map(|m| m.interpolated)
        })
        .collect();
    eprintln!("  {name:<28} METG(50%) of {} sweeps: {found:.1?} us", found.len());
    found
}

#[task]
fn bump(x: u64) -> u64 {
    x.wrapping_add(1)
}

#[task]
fn block_len(xs: &[f64]) -> u64 {
    black_box(xs.as_ptr());
    xs.len() as u64
}

/// The u64 pipeline with its stage on `worker`: the time it took for `n` elements.
fn stream_u64(rt: &Runtime, n: u64, worker: usize) -> Duration {
    rt.run(|| {
        let start = Instant::now();
        let mut i = 0u64;
        let out = streaming! {
            let x = { i += 1; (i <= n).then_some(i) }?;
            #[dirk(scope = Scope::worker(black_box(worker)))]
            let y = bump(x);
            y
        };
        let total = out.iter().fold(0u64, u64::wrapping_add);
        out.wait().unwrap();
        let took = start.elapsed();
        assert_eq!(total, (n + 1) * (n + 2) / 2 - 1);
        took
    })
}

/// The pipeline of 1 MiB `Vec<f64>` elements with its stage on `worker`.
fn stream_blocks(rt: &Runtime, n: usize, worker: usize) -> Duration {
    let block = vec![1.0f64; MIB / 8];
    rt.run(|| {
        let start = Instant::now();
        let mut i = 0;
        let out = streaming! {
            let xs = { i += 1; (i <= n).then(|| block.clone()) }?;
            #[dirk(scope = Scope::worker(black_box(worker)))]
            let len = block_len(&xs);
            len
        };
        let total: u64 = out.iter().sum();
        out.wait().unwrap();
        let took = start.elapsed();
        assert_eq!(total, (n * MIB / 8) as u64);
        took
    })
}

#[dirk::main]
fn main() {
    about("cluster", ABOUT);
    let runs = pick(7, 2);
    let n = 64 * MIB / 8;

    // Transfer between processes against one core's memcpy.
    let rt = Runtime::builder().threads(1).workers(1).worker_threads(1).ring_bytes(256 << 20).build().expect("cluster");
    let src: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let mut dst = vec![0.0f64; n];
    let gbs = |d: Duration| (64 * MIB) as f64 / d.as_secs_f64() / 1e9;
    let s = sample(runs, || {
        let start = Instant::now();
        dst.copy_from_slice(black_box(&src));
        black_box(&dst);
        gbs(start.elapsed())
    });
    report("cluster", "transfer 64 MiB to a worker", "memcpy (one core)", s, "GB/s", false);
    report("cluster", "transfer 64 MiB from a worker", "memcpy (one core)", s, "GB/s", false);
    let here = rt.run(|| spawn!(scope = Scope::worker(0), make(n)));
    here.wait().unwrap();
    for _ in 0..4 {
        // Warm the ring's pages.
        rt.run(|| spawn!(scope = Scope::worker(1), touch(&here)).fetch().unwrap());
    }
    let s = sample(runs, || {
        let start = Instant::now();
        let len = rt.run(|| spawn!(scope = Scope::worker(1), touch(&here)).fetch().unwrap());
        assert_eq!(len, n);
        gbs(start.elapsed())
    });
    report("cluster", "transfer 64 MiB to a worker", "dirk (read in place there)", s, "GB/s", false);
    // Read in place here by a task of process 0 taking `&[f64]` (`fetch` would copy it into a `Vec`).
    let pull = || {
        let there = rt.run(|| spawn!(scope = Scope::worker(1), make(n)));
        there.wait().unwrap();
        let start = Instant::now();
        let len = rt.run(|| spawn!(scope = Scope::worker(0), touch(&there)).fetch().unwrap());
        let took = start.elapsed();
        assert_eq!(len, n);
        took
    };
    for _ in 0..4 {
        pull();
    }
    let s = sample(runs, || gbs(pull()));
    report("cluster", "transfer 64 MiB from a worker", "dirk (read in place here)", s, "GB/s", false);
    for (case, system) in [
        ("transfer 64 MiB to a worker", "dirk (read in place there)"),
        ("transfer 64 MiB from a worker", "dirk (read in place here)"),
    ] {
        let what = format!("{case}: at least 50% of one core's memcpy (issue 5)");
        target_ratio("cluster", case, system, "memcpy (one core)", 0.5, &what);
    }

    // One task at a time, on a worker and here.
    let calls = pick(2000, 200);
    for (system, worker) in [("dirk on worker 1", 1), ("same on a thread of process 0", 0)] {
        let s = sample(runs, || {
            let start = Instant::now();
            rt.run(|| {
                for i in 0..calls as u64 {
                    assert_eq!(spawn!(scope = Scope::worker(worker), noop(i)).fetch().unwrap(), i);
                }
            });
            start.elapsed().as_secs_f64() * 1e6 / calls as f64
        });
        report("cluster", "spawn+fetch latency", system, s, "us", true);
    }
    drop(rt);

    // Streaming: a stage on worker 1 against the same pipeline in one process.
    let rt = Runtime::builder().threads(2).workers(1).worker_threads(1).build().expect("cluster");
    let elements = pick(1_000_000, 100_000);
    let blocks = pick(1024, 128);
    for (system, worker) in [("dirk, stage on worker 1", 1), ("same in one process", 0)] {
        stream_u64(&rt, elements / 10, worker);
        let times: Vec<Duration> = (0..=runs).map(|_| stream_u64(&rt, elements, worker)).collect();
        let mut it = times.iter();
        let ns = sample(runs, || it.next().expect("one time per run").as_secs_f64() * 1e9 / elements as f64);
        report("cluster", "stream u64 pipeline, ns/element", system, ns, "ns", true);
        let mut it = times.iter();
        let rate = sample(runs, || elements as f64 / it.next().expect("one time per run").as_secs_f64() / 1e6);
        report("cluster", "stream u64 pipeline, elements/s", system, rate, "M/s", false);
        if worker == 1 {
            let what = "a u64 stream through a stage on another process at 20 M elements/s or more (issue 21)";
            target("cluster", "stream u64 pipeline, elements/s", system, 20.0, what);
        }
        stream_blocks(&rt, blocks / 8, worker);
        let s = sample(runs, || (blocks * MIB) as f64 / stream_blocks(&rt, blocks, worker).as_secs_f64() / 1e9);
        report("cluster", "stream 1 MiB elements", system, s, "GB/s", false);
    }
    drop(rt);

    // stencil_1d METG(50%): 2 worker processes of 1 thread against 1 process of 2 threads.
    let sweeps = pick(5, 1);
    let single = Runtime::builder().threads(2).build().expect("runtime");
    let peak = peak_flops(2).max(peak_flops(2));
    eprintln!("cluster: peak {:.2} Gflop/s on 2 cores", peak / 1e9);
    let one = metg("dirk 1 process x 2 threads", &single, 2, 0, peak, sweeps);
    drop(single);
    let cluster = Runtime::builder().threads(1).workers(2).worker_threads(1).build().expect("cluster");
    let peak = peak.max(peak_flops(2));
    let two = metg("dirk 2 workers x 1 thread", &cluster, 2, 2, peak, sweeps);
    drop(cluster);
    let case = "stencil_1d METG(50%), width 8";
    let system = "dirk on 2 worker processes x 1 thread";
    if !two.is_empty() {
        report("cluster", case, system, sample_of(two), "us", true);
    }
    if !one.is_empty() {
        report("cluster", case, "same in 1 process of 2 threads", sample_of(one), "us", true);
    }
    target(
        "cluster",
        case,
        system,
        50.0,
        "Task Bench stencil_1d across 2 worker processes, METG(50%) at most 50 µs (issue 5)",
    );
    target(
        "cluster",
        case,
        system,
        15.0,
        "Task Bench stencil_1d across 2 worker processes, METG(50%) at most 15 µs (issue 21)",
    );
}
