//! Task overheads: dirk against rayon and tokio, same machine, same run,
//! 2 threads each.
//!
//! What each case times, and how, is [`ABOUT`] (BENCHMARKS.md shows it too).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use dirk::prelude::*;
use dirk_benches::harness::{
    about, ns_per, percentile, pick, report, sample, sample_of, sample_pair, target, target_ratio, time, time_with_cpu,
};
use rayon::prelude::*;

/// What each case of this benchmark times, and how.
const ABOUT: &str = "\
- `spawn N independent` (10k, 100k, 1M): spawn, run and complete N trivial independent tasks (dirk `spawn!` inside `sync`; rayon `scope.spawn`; tokio `spawn` from a task on its runtime, every `JoinHandle` awaited). dirk with tracing on, in turns with it off.\n\
- `spawn+fetch latency`: spawn one task and wait for its result, one at a time, from a thread outside the pool (dirk through `rt.enter`; tokio `spawn` + `block_on`; rayon `install`): mean wall time, p50 and p99 of the single round trips, and the CPU time the process spends per task.\n\
- `recursive fib(30)`: a task per call, no cutoff, each call spawning both halves and fetching them (dirk), or `rayon::join`; timed in turns.\n\
- `chain 100k`: each task depends on the previous one (rayon: each task spawns its successor; tokio: each task awaits its predecessor's handle).\n\
- `stencil 1000x100`: 100 steps of 1000 points, each point depending on its three neighbours of the step before (rayon: `par_iter` per step).\n\
- 2 threads for every system; each figure the median of 10 runs (fib: 5 runs in turns).";

const THREADS: usize = 2;

/// Runs round trips one at a time, pushing each one's latency (ns).
type RoundTrips<'a> = dyn Fn(&mut Vec<f64>) + 'a;

#[task]
fn noop(i: u64) -> u64 {
    black_box(i)
}

#[task]
fn next(prev: u64) -> u64 {
    black_box(prev + 1)
}

#[task]
fn point(l: &u64, c: &u64, r: &u64) -> u64 {
    black_box(l.wrapping_add(*c).wrapping_add(*r))
}

#[task]
fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let a = spawn!(fib(n - 1));
    let b = spawn!(fib(n - 2));
    a.fetch().expect("fib") + b.fetch().expect("fib")
}

fn rayon_fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = rayon::join(|| rayon_fib(n - 1), || rayon_fib(n - 2));
    a + b
}

fn main() {
    about("tasks", ABOUT);
    let runs = pick(10, 3);
    let rt = Runtime::builder().threads(THREADS).build().expect("dirk runtime");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(THREADS).build().expect("rayon pool");
    let tokio_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(THREADS).build().expect("tokio runtime");
    eprintln!("tasks: {THREADS} threads, median of {runs} runs");

    // spawn n independent tasks, for n in 10k, 100k, 1M
    for n in [10_000, 100_000, pick(1_000_000, 200_000)] {
        let case = format!("spawn {}k independent", n / 1000);
        let spawn_all = || {
            time(|| {
                rt.run(|| {
                    dirk::sync(|| {
                        for i in 0..n as u64 {
                            spawn!(noop(i));
                        }
                    })
                    .unwrap()
                })
            })
        };
        // Untraced and traced in turns: their ratio is a target.
        let (s, traced) = sample_pair(
            runs,
            || ns_per(spawn_all(), n),
            || {
                dirk::trace::start();
                let d = spawn_all();
                assert!(dirk::trace::stop().tasks().len() >= n, "every task was recorded");
                ns_per(d, n)
            },
        );
        report("tasks", &case, "dirk", s, "ns/task", true);
        report("tasks", &case, "dirk, tracing on", traced, "ns/task", true);
        let s = sample(runs, || {
            ns_per(
                time(|| {
                    pool.scope(|sc| {
                        for i in 0..n as u64 {
                            sc.spawn(move |_| {
                                black_box(i);
                            });
                        }
                    })
                }),
                n,
            )
        });
        report("tasks", &case, "rayon scope.spawn", s, "ns/task", true);
        // From a task on the runtime, as a tokio program spawns: into that
        // worker's queue, every `JoinHandle` awaited.
        let s = sample(runs, || {
            ns_per(
                time(|| {
                    tokio_rt
                        .block_on(tokio_rt.spawn(async move {
                            let handles: Vec<_> =
                                (0..n as u64).map(|i| tokio::spawn(async move { black_box(i) })).collect();
                            for h in handles {
                                h.await.unwrap();
                            }
                        }))
                        .unwrap()
                }),
                n,
            )
        });
        report("tasks", &case, "tokio spawn", s, "ns/task", true);
        if n >= 1_000_000 {
            target("tasks", &case, "dirk", 100.0, "spawn + run + complete a trivial task, amortized (issue 2)");
            target_ratio("tasks", &case, "dirk", "rayon scope.spawn", 0.7, "at most 0.7x rayon scope.spawn (issue 2)");
            target_ratio("tasks", &case, "dirk, tracing on", "dirk", 1.1, "tracing on costs at most 10% (issue 7)");
        }
    }

    // spawn + fetch, one at a time from a thread outside the pool: wall
    // time per task with its p50 and p99, and the CPU time the process
    // burns meanwhile (a waiting `fetch` and idle workers spin first).
    let m = pick(20_000, 5_000);
    let case = "spawn+fetch latency";
    let latencies: [(&str, &RoundTrips); 3] = [
        ("dirk (rt.enter, outside the pool)", &|lat: &mut Vec<f64>| {
            rt.enter(|| {
                for i in 0..m as u64 {
                    let start = Instant::now();
                    black_box(spawn!(noop(i)).fetch().unwrap());
                    lat.push(start.elapsed().as_nanos() as f64);
                }
            })
        }),
        ("tokio spawn+block_on", &|lat: &mut Vec<f64>| {
            for i in 0..m as u64 {
                let start = Instant::now();
                let h = tokio_rt.spawn(async move { black_box(i) });
                black_box(tokio_rt.block_on(h).unwrap());
                lat.push(start.elapsed().as_nanos() as f64);
            }
        }),
        ("rayon install", &|lat: &mut Vec<f64>| {
            for i in 0..m as u64 {
                let start = Instant::now();
                black_box(pool.install(move || black_box(i)));
                lat.push(start.elapsed().as_nanos() as f64);
            }
        }),
    ];
    for (system, run) in latencies {
        let (mut p50, mut p99, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
        let wall = sample(runs, || {
            let mut lat = Vec::with_capacity(m);
            let (wall, used) = time_with_cpu(|| run(&mut lat));
            lat.sort_by(f64::total_cmp);
            p50.push(percentile(&lat, 50.0));
            p99.push(percentile(&lat, 99.0));
            cpu.push(ns_per(used, m));
            ns_per(wall, m)
        });
        report("tasks", case, system, wall, "ns/task", true);
        report("tasks", &format!("{case}, p50"), system, sample_of(p50), "ns", true);
        report("tasks", &format!("{case}, p99"), system, sample_of(p99), "ns", true);
        report("tasks", &format!("{case}, CPU time"), system, sample_of(cpu), "ns/task", true);
    }
    let dirk = "dirk (rt.enter, outside the pool)";
    target("tasks", case, dirk, 2000.0, "spawn + fetch one task at a time under 2 µs (issue 2)");
    target_ratio("tasks", case, dirk, "tokio spawn+block_on", 1.0, "faster than tokio spawn + block_on (issue 2)");

    // recursive fib, a spawn per call and no cutoff: fork-join as rayon::join does it
    let f = pick(30, 22);
    let case = format!("recursive fib({f}), no cutoff");
    let want = rayon_fib_serial(f);
    let (dirk, rayon) = sample_pair(
        pick(5, 2),
        || {
            let d = time(|| assert_eq!(rt.run(|| spawn!(fib(f)).fetch().unwrap()), want));
            d.as_secs_f64() * 1e3
        },
        || {
            let d = time(|| assert_eq!(pool.install(|| rayon_fib(f)), want));
            d.as_secs_f64() * 1e3
        },
    );
    report("tasks", &case, "dirk spawn! + fetch", dirk, "ms", true);
    report("tasks", &case, "rayon::join", rayon, "ms", true);
    target_ratio(
        "tasks",
        &case,
        "dirk spawn! + fetch",
        "rayon::join",
        3.0,
        "recursive fib with spawn! and fetch inside tasks at most 3x rayon::join (issue 21)",
    );

    // chain of dependent tasks
    let c = pick(100_000, 20_000);
    let case = format!("chain {}k", c / 1000);
    let s = sample(runs, || {
        ns_per(
            time(|| {
                rt.run(|| {
                    let mut prev = spawn!(noop(0));
                    for _ in 0..c {
                        prev = spawn!(next(prev));
                    }
                    assert_eq!(prev.fetch().unwrap(), c as u64);
                })
            }),
            c,
        )
    });
    report("tasks", &case, "dirk", s, "ns/task", true);
    let s = sample(runs, || {
        let count = Arc::new(AtomicU64::new(0));
        let d = time(|| {
            pool.scope(|sc| {
                fn step<'s>(sc: &rayon::Scope<'s>, left: usize, count: Arc<AtomicU64>) {
                    count.fetch_add(1, Ordering::Relaxed);
                    if left > 0 {
                        sc.spawn(move |sc| step(sc, left - 1, count));
                    }
                }
                let count = count.clone();
                sc.spawn(move |sc| step(sc, c, count));
            })
        });
        assert_eq!(count.load(Ordering::Relaxed), c as u64 + 1);
        ns_per(d, c)
    });
    report("tasks", &case, "rayon (task spawns successor)", s, "ns/task", true);
    let s = sample(runs, || {
        ns_per(
            time(|| {
                tokio_rt.block_on(async {
                    let mut prev = tokio::spawn(async { 0u64 });
                    for _ in 0..c {
                        prev = tokio::spawn(async move { prev.await.unwrap() + 1 });
                    }
                    assert_eq!(prev.await.unwrap(), c as u64);
                })
            }),
            c,
        )
    });
    report("tasks", &case, "tokio (await predecessor)", s, "ns/task", true);

    // stencil: width x steps
    let (w, steps) = (1000usize, pick(100usize, 20));
    let case = format!("stencil {w}x{steps}");
    let s = sample(runs, || {
        ns_per(
            time(|| {
                rt.run(|| {
                    let mut row: Vec<Task<u64>> = (0..w as u64).map(|i| spawn!(noop(i))).collect();
                    for _ in 1..steps {
                        row = (0..w)
                            .map(|i| spawn!(point(&row[i.saturating_sub(1)], &row[i], &row[(i + 1).min(w - 1)])))
                            .collect();
                    }
                    for t in &row {
                        t.wait().unwrap();
                    }
                })
            }),
            w * steps,
        )
    });
    report("tasks", &case, "dirk", s, "ns/task", true);
    let s = sample(runs, || {
        ns_per(
            time(|| {
                pool.install(|| {
                    let mut row: Vec<u64> = (0..w as u64).collect();
                    for _ in 1..steps {
                        row = (0..w)
                            .into_par_iter()
                            .map(|i| {
                                black_box(
                                    row[i.saturating_sub(1)].wrapping_add(row[i]).wrapping_add(row[(i + 1).min(w - 1)]),
                                )
                            })
                            .collect();
                    }
                    black_box(row);
                })
            }),
            w * steps,
        )
    });
    report("tasks", &case, "rayon par_iter per step", s, "ns/task", true);
}

fn rayon_fib_serial(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a + b);
    }
    a
}
