//! Memory: what a task costs while it waits, and the peak a burst of tasks
//! takes, for dirk and its peers.
//!
//! What each case times, and how, is [`ABOUT`] (BENCHMARKS.md shows it too).

use std::hint::black_box;
use std::process::Command;

use dirk::prelude::*;
use dirk_benches::harness::{about, peak_rss, pick, report, reset_peak_rss, rss, sample_of, target};

/// What each case of this benchmark times, and how.
const ABOUT: &str = "\
Each measurement runs in a fresh child process (this binary again, told which one by `DIRK_MEMORY_CASE`), so the allocator holds no memory freed by an earlier case and the resident size grows by what the case needs:\n\
- `pending tasks`: one task is kept from finishing (it waits on a channel), then 1M tasks that depend on it are spawned; the resident memory gained meanwhile, divided by 1M, is what a pending task costs (dirk: `spawn!` with the unfinished task as an argument; tokio: spawned tasks that await a `watch` channel, its idiomatic gate).\n\
- `spawn 1M independent, peak`: the peak resident memory (VmHWM) gained while spawning a million trivial tasks and waiting for them all (dirk `spawn!` in `sync`, rayon `scope.spawn`, tokio `spawn` from a task on its runtime, every `JoinHandle` awaited).\n\
- 2 threads; each figure the median of 5 fresh processes, with the least and greatest.";

const THREADS: usize = 2;

#[task]
fn gate(open: std::sync::mpsc::Receiver<()>) -> u64 {
    open.recv().expect("the gate opens");
    1
}

#[task]
fn after(gate: &u64, i: u64) -> u64 {
    black_box(gate + i)
}

#[task]
fn noop(i: u64) -> u64 {
    black_box(i)
}

fn tasks() -> u64 {
    pick(1_000_000, 200_000)
}

/// Runs one case in this process and prints its figure (bytes) on stdout.
fn measure(case: &str) -> u64 {
    let n = tasks();
    match case {
        "pending dirk" => {
            let rt = Runtime::builder().threads(THREADS).build().expect("dirk runtime");
            rt.enter(|| {
                let (open, opened) = std::sync::mpsc::channel();
                let mut grown = 0;
                dirk::sync(|| {
                    let g = spawn!(gate(opened));
                    let before = rss();
                    for i in 0..n {
                        spawn!(after(&g, i));
                    }
                    grown = rss().saturating_sub(before);
                    open.send(()).expect("the gate task waits");
                })
                .expect("every task runs");
                grown / n
            })
        }
        "pending tokio" => {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(THREADS).build().expect("tokio");
            rt.block_on(async {
                tokio::spawn(async move {
                    let (open, opened) = tokio::sync::watch::channel(false);
                    let before = rss();
                    let handles: Vec<_> = (0..n)
                        .map(|i| {
                            let mut opened = opened.clone();
                            tokio::spawn(async move {
                                opened.wait_for(|open| *open).await.expect("the gate opens");
                                black_box(1 + i)
                            })
                        })
                        .collect();
                    let grown = rss().saturating_sub(before);
                    open.send(true).expect("tasks wait");
                    for h in handles {
                        h.await.expect("task");
                    }
                    grown / n
                })
                .await
                .expect("the spawning task")
            })
        }
        "peak dirk" => {
            let rt = Runtime::builder().threads(THREADS).build().expect("dirk runtime");
            let base = rss();
            reset_peak_rss();
            rt.run(|| {
                dirk::sync(|| {
                    for i in 0..n {
                        spawn!(noop(i));
                    }
                })
                .expect("every task runs")
            });
            peak_rss().saturating_sub(base)
        }
        "peak rayon" => {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(THREADS).build().expect("rayon pool");
            let base = rss();
            reset_peak_rss();
            pool.scope(|sc| {
                for i in 0..n {
                    sc.spawn(move |_| {
                        black_box(i);
                    });
                }
            });
            peak_rss().saturating_sub(base)
        }
        "peak tokio" => {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(THREADS).build().expect("tokio");
            let base = rss();
            reset_peak_rss();
            rt.block_on(async {
                tokio::spawn(async move {
                    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(async move { black_box(i) })).collect();
                    for h in handles {
                        h.await.expect("task");
                    }
                })
                .await
                .expect("the spawning task")
            });
            peak_rss().saturating_sub(base)
        }
        other => panic!("unknown memory case {other:?}"),
    }
}

/// Runs `case` in a child process `runs` times; the figures it printed.
fn in_children(case: &str, runs: usize) -> Vec<f64> {
    let exe = std::env::current_exe().expect("this benchmark's path");
    (0..runs)
        .map(|_| {
            let out = Command::new(&exe).env("DIRK_MEMORY_CASE", case).output().expect("run a memory case");
            assert!(out.status.success(), "memory case {case:?} failed: {}", String::from_utf8_lossy(&out.stderr));
            let text = String::from_utf8_lossy(&out.stdout);
            text.trim().parse::<f64>().unwrap_or_else(|_| panic!("memory case {case:?} printed {text:?}"))
        })
        .collect()
}

fn main() {
    if let Ok(case) = std::env::var("DIRK_MEMORY_CASE") {
        println!("{}", measure(&case));
        return;
    }
    about("memory", ABOUT);
    let runs = pick(5, 1);
    let n = tasks();
    eprintln!("memory: {THREADS} threads, {n} tasks, median of {runs} fresh processes");
    let case = format!("pending tasks, {}k behind one unfinished task", n / 1000);
    for (system, child) in [("dirk", "pending dirk"), ("tokio (awaiting a watch channel)", "pending tokio")] {
        report("memory", &case, system, sample_of(in_children(child, runs)), "bytes/task", true);
    }
    target("memory", &case, "dirk", 256.0, "a pending task takes at most 256 bytes (issue 21)");
    let case = format!("spawn {}k independent, peak RSS growth", n / 1000);
    for (system, child) in [("dirk", "peak dirk"), ("rayon scope.spawn", "peak rayon"), ("tokio spawn", "peak tokio")] {
        let mib: Vec<f64> = in_children(child, runs).into_iter().map(|b| b / (1 << 20) as f64).collect();
        report("memory", &case, system, sample_of(mib), "MiB", true);
    }
}
