//! Task overheads: dirk against rayon and tokio, same machine, same run.
//!
//! - `spawn 1M`: spawn, run and complete a million trivial independent
//!   tasks on 2 threads (rayon `scope.spawn`; tokio `spawn` + await all).
//! - `spawn+fetch latency`: spawn one task and wait for its result, one at
//!   a time, from a thread outside the pool (tokio `spawn` + `block_on`).
//! - `chain 100k`: each task depends on the previous one (rayon: each task
//!   spawns its successor; tokio: each task awaits its predecessor's handle).
//! - `stencil 1000x100`: 100 steps of 1000 points, each point depending on
//!   its three neighbours of the step before (rayon: `par_iter` per step).

#[path = "harness/mod.rs"]
mod harness;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dirk::prelude::*;
use harness::{ns_per, pick, report, sample, sample_pair, target, target_ratio, time};
use rayon::prelude::*;

const THREADS: usize = 2;

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

fn main() {
    let runs = pick(10, 3);
    let rt = Runtime::builder().threads(THREADS).build().expect("dirk runtime");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(THREADS).build().expect("rayon pool");
    let tokio_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(THREADS).build().expect("tokio runtime");
    eprintln!("tasks: {THREADS} threads, median of {runs} runs");

    // spawn 1M independent tasks
    let n = pick(1_000_000, 200_000);
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
    report("tasks", &case, "dirk, tracing on", traced, "ns/task", true);
    let s = sample(runs, || {
        ns_per(
            time(|| {
                tokio_rt.block_on(async {
                    let handles: Vec<_> = (0..n as u64).map(|i| tokio::spawn(async move { black_box(i) })).collect();
                    for h in handles {
                        h.await.unwrap();
                    }
                })
            }),
            n,
        )
    });
    report("tasks", &case, "tokio spawn", s, "ns/task", true);
    target("tasks", &case, "dirk", 100.0, "spawn + run + complete a trivial task, amortized (issue 2)");
    target_ratio("tasks", &case, "dirk", "rayon scope.spawn", 0.7, "at most 0.7x rayon scope.spawn (issue 2)");
    target_ratio("tasks", &case, "dirk, tracing on", "dirk", 1.1, "tracing on costs at most 10% (issue 7)");

    // spawn + fetch latency, one at a time from outside the pool
    let m = pick(20_000, 5_000);
    let case = "spawn+fetch latency";
    let s = sample(runs, || {
        ns_per(time(|| rt.run(|| ())), 1) * 0.0
            + ns_per(
                time(|| {
                    for i in 0..m as u64 {
                        let t = dirk::spawn(move || black_box(i));
                        black_box(t.fetch().unwrap());
                    }
                }),
                m,
            )
    });
    report("tasks", case, "dirk (outside the pool)", s, "ns/task", true);
    let s = sample(runs, || {
        ns_per(
            time(|| {
                for i in 0..m as u64 {
                    let h = tokio_rt.spawn(async move { black_box(i) });
                    black_box(tokio_rt.block_on(h).unwrap());
                }
            }),
            m,
        )
    });
    report("tasks", case, "tokio spawn+block_on", s, "ns/task", true);
    let s = sample(runs, || {
        ns_per(
            time(|| {
                for i in 0..m as u64 {
                    black_box(pool.install(move || black_box(i)));
                }
            }),
            m,
        )
    });
    report("tasks", case, "rayon install", s, "ns/task", true);
    target("tasks", case, "dirk (outside the pool)", 2000.0, "spawn + fetch one task at a time under 2 µs (issue 2)");
    target_ratio(
        "tasks",
        case,
        "dirk (outside the pool)",
        "tokio spawn+block_on",
        1.0,
        "faster than tokio spawn + block_on (issue 2)",
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
