//! Distributed arrays: `dirk::array` against faer's own parallel kernels
//! and a rayon reduction over one `Vec`, same machine, same run.
//!
//! What each case times, and how, is [`ABOUT`] (BENCHMARKS.md shows it too).

use std::time::Duration;

use dirk::Runtime;
use dirk::array::{Blocks, DArray};
use dirk_benches::harness::{about, pick, report, sample_of, target, target_ratio, time, turns};
use faer::{Accum, Mat, Par};
use rayon::prelude::*;

const ABOUT: &str = "\
- `matmul n/b`: `a.matmul(&b)` of two n×n f64 `DArray`s in b×b tiles (made and waited for before the clock starts), until every tile of the product is made, on a 2-thread runtime; against faer's `matmul` into a preallocated n×n `Mat` with `Par::rayon(2)` on the same values (column-major, as faer keeps them).\n\
- `sum n² in 1024² tiles`: `r.sum()` of `DArray::rand(Blocks([1024, 1024]), [n, n])` (tiles made before the clock starts) on 2 threads, against `v.par_chunks(1 << 20).map(|c| c.iter().sum::<f64>()).sum()` over one `Vec<f64>` of the same values in a 2-thread rayon pool, and the same with the 8-accumulator loop dirk's tiles use (`iter().sum()` is one dependent chain of additions; the target is against the 8-lane row, so that the ratio measures the runtime, not the loop).\n\
- `cholesky n/b`: `a.cholesky()` of an n×n SPD `DArray` in b×b tiles until every tile of `L` is made, 2 threads; against faer's `llt(Side::Lower)` of the same matrix with `Par::rayon(2)` (a copy of the matrix factored in place, as `Mat::llt` does; `cholesky` makes new tiles). The residual ‖LLᵀ − A‖/‖A‖ of dirk's factor is checked once.\n\
- `stencil 64 tiles ÷ 4 tiles`: 10 sweeps of a 5-point Jacobi `stencil` on a 2048² array in 256² tiles (64 tiles, 640 tasks) and in 1024² tiles (4 tiles), 2 threads: the ratio of the two times (lower is better; Dagger's docs report 1.7 for the same change).\n\
Each figure is the median of the runs (3 for the linear algebra, 5 otherwise) after one warm-up; the peers take turns with dirk within each run.";

const THREADS: usize = 2;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn bench_matmul(rt: &Runtime, pool: &rayon::ThreadPool) {
    let (n, b) = (pick(4096, 512), pick(512, 128));
    let case = format!("matmul {n}/{b}");
    let (da, db) = rt.run(|| {
        let da = DArray::<f64, 2>::rand_seeded(Blocks([b, b]), [n, n], 1);
        let db = DArray::<f64, 2>::rand_seeded(Blocks([b, b]), [n, n], 2);
        da.wait().unwrap();
        db.wait().unwrap();
        (da, db)
    });
    let (va, vb) = (da.collect_vec().unwrap(), db.collect_vec().unwrap());
    let fa = Mat::from_fn(n, n, |i, j| va[i * n + j]);
    let fb = Mat::from_fn(n, n, |i, j| vb[i * n + j]);
    let mut fc = Mat::<f64>::zeros(n, n);
    let par = Par::rayon(THREADS);
    let (dirk, faer) = turns(
        pick(3, 1),
        || ms(time(|| rt.run(|| da.matmul(&db).unwrap().wait().unwrap()))),
        || {
            ms(time(|| {
                pool.install(|| {
                    faer::linalg::matmul::matmul(fc.as_mut(), Accum::Replace, fa.as_ref(), fb.as_ref(), 1.0, par)
                })
            }))
        },
    );
    // The product agrees with faer's.
    let c = rt.run(|| da.matmul(&db).unwrap().collect_vec().unwrap());
    let worst = (0..n * n).map(|k| (c[k] - fc[(k / n, k % n)]).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-9 * n as f64, "matmul differs from faer's by {worst}");
    report("array", &case, "dirk DArray matmul", sample_of(dirk), "ms", true);
    report("array", &case, "faer matmul, Par::rayon(2)", sample_of(faer), "ms", true);
    target_ratio(
        "array",
        &case,
        "dirk DArray matmul",
        "faer matmul, Par::rayon(2)",
        1.0 / 0.85,
        "matmul 4096² in 512² tiles: at least 0.85× faer's own matmul with Par::rayon(2) (issue 25)",
    );
}

/// A sum with eight independent accumulators, as dirk's tile reduction
/// folds: the additions pipeline instead of forming one chain.
fn lane_sum(xs: &[f64]) -> f64 {
    let mut acc = [0.0; 8];
    let chunks = xs.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().sum();
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k];
        }
    }
    acc.iter().sum::<f64>() + tail
}

fn bench_sum(rt: &Runtime, pool: &rayon::ThreadPool) {
    let n = pick(10240, 2048);
    let case = format!("sum {n}² in 1024² tiles");
    let r = rt.run(|| {
        let r = DArray::<f64, 2>::rand_seeded(Blocks([1024, 1024]), [n, n], 3);
        r.wait().unwrap();
        r
    });
    let v = r.collect_vec().unwrap();
    let (mut s_dirk, mut s_rayon, mut s_lanes) = (0.0, 0.0, 0.0);
    let (mut dirk, mut rayon, mut lanes) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..=pick(5, 2) {
        let d = ms(time(|| s_dirk = rt.run(|| r.sum().unwrap())));
        let p = ms(time(|| s_rayon = pool.install(|| v.par_chunks(1 << 20).map(|c| c.iter().sum::<f64>()).sum())));
        let l = ms(time(|| s_lanes = pool.install(|| v.par_chunks(1 << 20).map(lane_sum).sum())));
        if run > 0 {
            dirk.push(d);
            rayon.push(p);
            lanes.push(l);
        }
    }
    for s in [s_rayon, s_lanes] {
        assert!((s_dirk - s).abs() <= 1e-9 * s, "{s_dirk} against {s}");
    }
    report("array", &case, "dirk DArray sum", sample_of(dirk), "ms", true);
    report("array", &case, "rayon par_chunks, iter().sum()", sample_of(rayon), "ms", true);
    report("array", &case, "rayon par_chunks, 8-lane sum", sample_of(lanes), "ms", true);
    // Against the peer with the same inner loop as dirk's tiles: the
    // difference left is the runtime's, not the summation kernel's.
    target_ratio(
        "array",
        &case,
        "dirk DArray sum",
        "rayon par_chunks, 8-lane sum",
        1.15,
        "sum of a 10240² rand array in 1024² tiles: at most 1.15× a rayon par_chunks sum over one Vec (issue 25)",
    );
}

/// faer's `llt` with a chosen parallelism: a copy of the matrix factored
/// in place (what `Mat::llt` does with the global parallelism).
fn faer_llt(a: &Mat<f64>, par: Par) -> Mat<f64> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::cholesky::llt::factor;
    let mut l = a.clone();
    let mut scratch = MemBuffer::new(factor::cholesky_in_place_scratch::<f64>(a.nrows(), par, Default::default()));
    factor::cholesky_in_place(l.as_mut(), Default::default(), par, MemStack::new(&mut scratch), Default::default())
        .expect("the matrix is positive definite");
    l
}

fn bench_cholesky(rt: &Runtime, pool: &rayon::ThreadPool) {
    let (n, b) = (pick(4096, 512), pick(256, 128));
    let case = format!("cholesky {n}/{b}");
    let m = Mat::<f64>::from_fn(n, n, |i, j| ((i * 7 + j * 13) % 17) as f64 / 17.0);
    let mut spd = Mat::<f64>::zeros(n, n);
    faer::linalg::matmul::matmul(spd.as_mut(), Accum::Replace, m.as_ref(), m.transpose(), 1.0, Par::rayon(THREADS));
    for i in 0..n {
        spd[(i, i)] += n as f64;
    }
    let values: Vec<f64> = (0..n * n).map(|k| spd[(k / n, k % n)]).collect();
    let da = rt.run(|| {
        let da = DArray::from_vec(values, [n, n], Blocks([b, b])).unwrap();
        da.wait().unwrap();
        da
    });
    let par = Par::rayon(THREADS);
    let (dirk, faer) = turns(
        pick(3, 1),
        || ms(time(|| rt.run(|| da.cholesky().unwrap().wait().unwrap()))),
        || ms(time(|| drop(pool.install(|| faer_llt(&spd, par))))),
    );
    let l = rt.run(|| da.cholesky().unwrap().collect_vec().unwrap());
    let lm = Mat::<f64>::from_fn(n, n, |i, j| l[i * n + j]);
    let mut r = spd.clone();
    faer::linalg::matmul::matmul(r.as_mut(), Accum::Add, lm.as_ref(), lm.transpose(), -1.0, Par::rayon(THREADS));
    let residual = r.norm_l2() / spd.norm_l2();
    assert!(residual <= 1e-12, "residual {residual}");
    report("array", &case, "dirk DArray cholesky", sample_of(dirk), "ms", true);
    report("array", &case, "faer llt, Par::rayon(2)", sample_of(faer), "ms", true);
    target_ratio(
        "array",
        &case,
        "dirk DArray cholesky",
        "faer llt, Par::rayon(2)",
        1.0 / 0.75,
        "Cholesky 4096 in 256² tiles: at least 0.75× faer's llt with Par::rayon(2) (issue 25)",
    );
}

fn bench_stencil(rt: &Runtime) {
    let n = pick(2048, 512);
    let sweeps = 10;
    let make = |b: usize| {
        rt.run(|| {
            let a = DArray::<f64, 2>::rand_seeded(Blocks([b, b]), [n, n], 4);
            a.wait().unwrap();
            a
        })
    };
    let (many, few) = (make(n / 8), make(n / 2));
    let run = |a: &DArray<f64, 2>| {
        ms(time(|| rt.run(|| a.stencil(sweeps, |_, [p, q, r, s]| 0.25 * (p + q + r + s)).wait().unwrap())))
    };
    let (t64, t4) = turns(pick(5, 2), || run(&many), || run(&few));
    let ratios: Vec<f64> = t64.iter().zip(&t4).map(|(a, b)| a / b).collect();
    let case = format!("stencil {n}², {sweeps} sweeps");
    report("array", &case, "dirk, 64 tiles", sample_of(t64), "ms", true);
    report("array", &case, "dirk, 4 tiles", sample_of(t4), "ms", true);
    let ratio_case = format!("{case}: 64 tiles ÷ 4 tiles");
    report("array", &ratio_case, "dirk", sample_of(ratios), "×", true);
    target(
        "array",
        &ratio_case,
        "dirk",
        1.2,
        "the Jacobi stencil with 64 tiles at most 1.2× slower than with 4 (issue 25)",
    );
}

fn main() {
    about("array", ABOUT);
    let rt = Runtime::builder().threads(THREADS).build().expect("a runtime");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(THREADS).build().expect("a rayon pool");
    bench_sum(&rt, &pool);
    bench_stencil(&rt);
    bench_matmul(&rt, &pool);
    bench_cholesky(&rt, &pool);
}
