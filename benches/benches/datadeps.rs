//! Data dependencies: dirk's `datadeps!` against the same work run serially
//! and with rayon, same machine, same run.
//!
//! What each case times, and how, is [`ABOUT`] (BENCHMARKS.md shows it too).

#[path = "../../examples/cholesky.rs"]
#[allow(dead_code)]
mod cholesky;

use std::hint::black_box;
use std::time::Duration;

use dirk::datadeps::{MatMut, MatRef};
use dirk::prelude::*;
use dirk_benches::harness::{Sample, about, ns_per, pick, report, sample, target, time};
use rayon::prelude::*;

/// What each case of this benchmark times, and how.
const ABOUT: &str = "\
- `cholesky 2048/128`: tiled Cholesky of a 2048×2048 SPD matrix in 128×128 tiles (the kernels of `examples/cholesky.rs`) on 2 threads: `datadeps!` (the textbook triple loop, ordered by the tiles each call touches), the same kernels serially, and rayon running each step's independent kernels in parallel with a join between steps. The speed-up over serial is reported as its own row.\n\
- `task, 2 tracked args`: the cost of one datadeps task `f(In(a[i]), InOut(b[i]))` with a trivial body, made in a loop (run-time tracking) on a worker thread, against a `dirk::spawn` of the same body (no tracking) and rayon `scope.spawn` borrowing the same elements. A last task writes `a[0]`, so that `a` is tracked too (a variable that no task writes is not: the row `In of a read-only vector` is the same loop without that task).\n\
- `chain, 2 tracked args`: each task reads the element the task before wrote (`f(In(v[i]), Out(v[i + 1]))`), so every task waits for one other; against a chain of `spawn!` handles (no tracking) and rayon tasks each doing the same read and write and then spawning the next. 2 threads; Cholesky the median of 5 runs, the other cases of 10.";

const THREADS: usize = 2;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Cuts a view into consecutive blocks of `b` rows.
fn block_rows(mut rest: MatMut<'_, f64>, b: usize) -> Vec<MatMut<'_, f64>> {
    let mut out = Vec::new();
    while rest.rows() > 0 {
        let h = b.min(rest.rows());
        let (block, tail) = rest.split_at_row(h);
        out.push(block);
        rest = tail;
    }
    out
}

/// Tiled Cholesky with rayon: per step, the panel's `trsm`s in parallel,
/// then the trailing updates of each block row in parallel.
fn rayon_cholesky(a: &mut dirk::datadeps::Matrix<f64>, b: usize) {
    let n = a.rows();
    let nt = n.div_ceil(b);
    for k in 0..nt {
        let kk = k * b..((k + 1) * b).min(n);
        cholesky::potrf(a.view_mut().into_tile(kk.clone(), kk.clone()));
        let (left, right) = a.view_mut().split_at_col(kk.end);
        let (top, below) = left.split_at_row(kk.end);
        let lkk: MatRef<'_, f64> = top.as_ref().tile(kk.clone(), kk.clone());
        let width = kk.end - kk.start;
        let mut panel = block_rows(below.into_tile(0..n - kk.end, kk.start..kk.start + width), b);
        panel.par_iter_mut().for_each(|p| cholesky::trsm(lkk, p.reborrow()));
        let panel: Vec<MatRef<'_, f64>> = panel.iter().map(|p| p.as_ref()).collect();
        let (_, trailing) = right.split_at_row(kk.end);
        let mut rows = block_rows(trailing, b);
        rows.par_iter_mut().enumerate().for_each(|(i, row)| {
            let cols = |j: usize| j * b..(j * b + b).min(n - kk.end);
            let h = row.rows();
            cholesky::syrk(panel[i], row.tile(0..h, cols(i)));
            for j in 0..i {
                cholesky::gemm(panel[i], panel[j], row.tile(0..h, cols(j)));
            }
        });
    }
}

/// Median, min and max of measurements.
fn summary(mut values: Vec<f64>) -> Sample {
    values.sort_by(f64::total_cmp);
    Sample { median: values[values.len() / 2], min: values[0], max: values[values.len() - 1] }
}

fn bench_cholesky(runs: usize, rt: &Runtime, pool: &rayon::ThreadPool) {
    let (n, b) = (pick(2048, 512), pick(128, 64));
    let case = format!("cholesky {n}/{b}");
    let a = cholesky::spd(n, 11);
    let mut reference = a.clone();
    cholesky::tiled_serial(&mut reference, b);

    // The three systems take turns within each run, so a load that comes
    // and goes on a shared machine weighs on all of them alike; the
    // speed-up is the median of the per-run ratios.
    let (mut dirk, mut serial, mut rayon, mut speedup) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..=runs {
        let mut m = a.clone();
        let d = ms(time(|| rt.enter(|| cholesky::tiled(&mut m, b)).expect("the factorisation succeeds")));
        assert!(cholesky::relative_error(&m, &reference) < 1e-10);
        let mut m = a.clone();
        let s = ms(time(|| cholesky::tiled_serial(&mut m, b)));
        let mut m = a.clone();
        let r = ms(time(|| pool.install(|| rayon_cholesky(&mut m, b))));
        assert!(cholesky::relative_error(&m, &reference) < 1e-10);
        if run > 0 {
            // run 0 warms up
            dirk.push(d);
            serial.push(s);
            rayon.push(r);
            speedup.push(s / d);
        }
    }
    report("datadeps", &case, "dirk datadeps! (2 threads)", summary(dirk), "ms", true);
    report("datadeps", &case, "same kernels, serial", summary(serial), "ms", true);
    report("datadeps", &case, "rayon (join per step, 2 threads)", summary(rayon), "ms", true);
    report("datadeps", &format!("{case} speed-up over serial"), "dirk", summary(speedup), "×", false);
    let what = "tiled Cholesky 2048/128: at least 1.8x over the same kernels run serially, 2 threads (issue 4)";
    target("datadeps", &format!("{case} speed-up over serial"), "dirk", 1.8, what);
}

fn touch(a: &u64, b: &mut u64) {
    *b = black_box(b.wrapping_add(*a));
}

/// Nanoseconds per task of a `datadeps!` block making `n` tasks, run on a
/// worker thread of `rt`.
fn per_task(runs: usize, n: usize, rt: &Runtime, mut block: impl FnMut() -> Result<(), Error> + Send) -> Sample {
    sample(runs, || ns_per(time(|| rt.run(&mut block).unwrap()), n))
}

fn bench_overhead(runs: usize, rt: &Runtime, pool: &rayon::ThreadPool) {
    let n = pick(100_000, 20_000);
    let case = format!("task, 2 tracked args ({}k)", n / 1000);
    let mut a: Vec<u64> = (0..n as u64).collect();
    let mut b = vec![0u64; n];
    let s = per_task(runs, n, rt, || {
        datadeps! {
            for i in 0..n {
                touch(In(a[i]), InOut(b[i]));
            }
            touch(In(b[0]), InOut(a[0]));
        }
    });
    report("datadeps", &case, "dirk datadeps!", s, "ns/task", true);
    target(
        "datadeps",
        &case,
        "dirk datadeps!",
        300.0,
        "a datadeps task with 2 tracked arguments at most 300 ns (issue 4)",
    );
    let s = per_task(runs, n, rt, || {
        datadeps! {
            for i in 0..n {
                touch(In(a[i]), InOut(b[i]));
            }
        }
    });
    report("datadeps", &case, "dirk datadeps!, In of a read-only vector", s, "ns/task", true);
    let s = sample(runs, || {
        ns_per(
            time(|| {
                rt.run(|| {
                    dirk::sync(|| {
                        for i in 0..n as u64 {
                            dirk::spawn(move || black_box(i));
                        }
                    })
                })
                .unwrap()
            }),
            n,
        )
    });
    report("datadeps", &case, "dirk::spawn, untracked", s, "ns/task", true);
    let s = sample(runs, || {
        ns_per(
            time(|| {
                pool.scope(|sc| {
                    for (x, y) in a.iter().zip(b.iter_mut()) {
                        sc.spawn(move |_| touch(x, y));
                    }
                })
            }),
            n,
        )
    });
    report("datadeps", &case, "rayon scope.spawn", s, "ns/task", true);

    let case = format!("chain, 2 tracked args ({}k)", n / 1000);
    let mut v = vec![1u64; n + 1];
    let s = per_task(runs, n, rt, || {
        datadeps! {
            for i in 0..n {
                touch(In(v[i]), Out(v[i + 1]));
            }
        }
    });
    report("datadeps", &case, "dirk datadeps!", s, "ns/task", true);
    let s = sample(runs, || {
        let d = time(|| {
            rt.run(|| {
                let mut prev = dirk::spawn(|| 1u64);
                for _ in 0..n {
                    prev = spawn!((|x: u64| black_box(x.wrapping_add(1)))(prev));
                }
                prev.wait().unwrap();
            })
        });
        ns_per(d, n)
    });
    report("datadeps", &case, "dirk spawn! chain, untracked", s, "ns/task", true);
    // rayon has no data dependencies: each task does the same read and
    // write, then spawns its successor.
    let s = sample(runs, || {
        let mut v = vec![1u64; n + 1];
        let d = time(|| {
            pool.scope(|sc| {
                fn step<'s>(sc: &rayon::Scope<'s>, v: &'s mut [u64]) {
                    if let [a, b, ..] = v {
                        touch(a, b);
                        let (_, rest) = v.split_at_mut(1);
                        sc.spawn(move |sc| step(sc, rest));
                    }
                }
                sc.spawn(|sc| step(sc, &mut v));
            })
        });
        assert_eq!(v[n], n as u64 + 1);
        ns_per(d, n)
    });
    report("datadeps", &case, "rayon (task spawns successor)", s, "ns/task", true);
    target(
        "datadeps",
        &case,
        "dirk datadeps!",
        250.0,
        "a datadeps chain with 2 tracked arguments at most 250 ns a task (issue 21)",
    );
}

fn main() {
    about("datadeps", ABOUT);
    let runs = pick(5, 2);
    let rt = Runtime::builder().threads(THREADS).build().expect("dirk runtime");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(THREADS).build().expect("rayon pool");
    eprintln!("datadeps: {THREADS} threads, median of {runs} runs");
    bench_cholesky(runs, &rt, &pool);
    bench_overhead(pick(10, 3), &rt, &pool);
}
