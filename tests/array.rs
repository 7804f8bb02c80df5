//! Distributed arrays: the workshop notebook's array cells as assertions,
//! then every operation against a naive serial one, each on one thread,
//! two threads, and two threads beside two worker processes.

#![cfg(feature = "array")]

mod common;

use std::time::Duration;

use common::within;
use dirk::array::{Blocks, DArray, Triangle, ndarray};
use dirk::prelude::*;

const LONG: Duration = Duration::from_secs(120);

fn run(threads: usize, workers: usize, check: fn()) {
    let rt = Runtime::builder().threads(threads).workers(workers).build().unwrap();
    within(LONG, move || rt.run(check));
}

macro_rules! on_each_runtime {
    ($($check:ident),* $(,)?) => {
        mod one_thread { $(#[dirk::test] fn $check() { super::run(1, 0, super::$check) })* }
        mod two_threads { $(#[dirk::test] fn $check() { super::run(2, 0, super::$check) })* }
        mod two_worker_processes { $(#[dirk::test] fn $check() { super::run(2, 2, super::$check) })* }
    };
}

on_each_runtime!(
    notebook_distribute_map_collect,
    notebook_broadcast_expression_is_one_task_per_tile,
    notebook_rand_sum,
    notebook_tiles_and_where_they_live,
    notebook_reshape_times_reshape,
    notebook_sort,
    uneven_edge_tiles,
    different_blocks_combine,
    reductions,
    layout,
    shape_errors_name_both_shapes,
    matmul_against_naive,
    cholesky_against_naive,
    not_positive_definite_fails_from_its_tile,
    lu_and_solve,
    triangular_solves,
    sort_by_and_duplicates,
    stencil_against_naive,
    ndarray_round_trip,
);

/// Integer-valued `rows × cols` data, so that sums and products are exact.
fn ints(rows: usize, cols: usize, seed: u64) -> Vec<f64> {
    (0..rows * cols).map(|i| ((i as u64 * 7919 + seed * 104_729) % 17) as f64 - 8.0).collect()
}

fn naive_matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for p in 0..k {
            for j in 0..n {
                c[i * n + j] += a[i * k + p] * b[p * n + j];
            }
        }
    }
    c
}

fn transpose(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut t = vec![0.0; a.len()];
    for i in 0..rows {
        for j in 0..cols {
            t[j * rows + i] = a[i * cols + j];
        }
    }
    t
}

fn assert_close(got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= rel * scale, "element {i}: {g} against {w}");
    }
}

/// A symmetric positive-definite `n × n` matrix: `M Mᵀ + n I`.
fn spd(n: usize) -> Vec<f64> {
    let m = ints(n, n, 3);
    let mut a = naive_matmul(&m, &transpose(&m, n, n), n, n, n);
    for i in 0..n {
        a[i * n + i] += n as f64;
    }
    a
}

fn notebook_distribute_map_collect() {
    // A = rand(64, 64); DA = distribute(A, Blocks(16, 16)); DB = map(x->x*2, DA)
    let a: Vec<f64> = (0..64 * 64).map(|i| (i % 97) as f64 / 7.0).collect();
    let da = DArray::from_vec(a.clone(), [64, 64], Blocks([16, 16])).unwrap();
    assert_eq!(da.tile_counts(), [4, 4]);
    let db = da.map(|x| x * 2.0);
    assert_eq!(db.collect_vec().unwrap(), a.iter().map(|x| x * 2.0).collect::<Vec<_>>());
    assert_eq!(da.collect_vec().unwrap(), a);
}

fn notebook_broadcast_expression_is_one_task_per_tile() {
    let a: Vec<f64> = (0..64 * 64).map(|i| i as f64).collect();
    let da = DArray::from_vec(a.clone(), [64, 64], Blocks([16, 16])).unwrap();
    let db = da.map(|x| x * 2.0);
    da.wait().unwrap();
    db.wait().unwrap();
    // DA .* 2 .+ DB: three operators, one task per tile.
    let (v, trace) = dirk::trace::record(|| (&da * 2.0 + &db - 1.0).collect_vec().unwrap());
    assert_eq!(v, a.iter().map(|x| x * 4.0 - 1.0).collect::<Vec<_>>());
    let fused = trace.tasks().iter().filter(|t| t.name == "darray elementwise").count();
    assert_eq!(fused, 16, "one fused task per tile, not one pass per operator");
    // Scalars on the left, and division.
    let w = (2.0 * &da / 4.0).collect_vec().unwrap();
    assert_eq!(w, a.iter().map(|x| x / 2.0).collect::<Vec<_>>());
}

fn notebook_rand_sum() {
    // DA = rand(Blocks(1024, 1024), 10240, 10240); sum(collect(DA)) ≈ sum(DA)
    let da = DArray::<f64, 2>::rand(Blocks([64, 64]), [640, 320]);
    let all = da.collect_vec().unwrap();
    assert!(all.iter().all(|x| (0.0..1.0).contains(x)));
    let serial: f64 = all.iter().sum();
    let s = da.sum().unwrap();
    assert!((s - serial).abs() <= 1e-9 * serial, "{s} against {serial}");
    assert!((s / all.len() as f64 - 0.5).abs() < 0.01, "uniform on [0, 1) has mean 1/2");
    // Seeded arrays repeat; two unseeded ones differ.
    let x = DArray::<f64, 1>::rand_seeded(Blocks([10]), [95], 7).collect_vec().unwrap();
    assert_eq!(x, DArray::<f64, 1>::rand_seeded(Blocks([10]), [95], 7).collect_vec().unwrap());
    assert_ne!(
        DArray::<f64, 1>::rand(Blocks([10]), [95]).collect_vec().unwrap(),
        DArray::<f64, 1>::rand(Blocks([10]), [95]).collect_vec().unwrap()
    );
    let n = DArray::<f64, 1>::randn(Blocks([1000]), [20_000]);
    let (mean, sd) = (n.mean().unwrap(), (n.map(|x| x * x).mean().unwrap()).sqrt());
    assert!(mean.abs() < 0.05 && (sd - 1.0).abs() < 0.05, "standard normal: mean {mean}, sd {sd}");
}

fn notebook_tiles_and_where_they_live() {
    // DC = rand(Blocks(4, 4), 16, 16); fetch(DC.chunks[3, 4])
    let dc = DArray::from_fn(Blocks([4, 4]), [16, 16], |[r, c]: [usize; 2]| (r * 16 + c) as f64);
    let tile = dc.tile([2, 3]).fetch().unwrap();
    assert_eq!(tile.shape(), [4, 4]);
    assert_eq!(tile.as_slice()[..4], [8.0 * 16.0 + 12.0, 8.0 * 16.0 + 13.0, 8.0 * 16.0 + 14.0, 8.0 * 16.0 + 15.0]);
    // map(x -> myid()) and map(x -> threadid()): every tile was made in this
    // process, on a thread of the pool.
    let places = dc.placement().unwrap();
    assert_eq!(places.len(), 16);
    assert!(places.iter().all(|&(w, t)| w == 0 && t.is_some()));
    let svg = dc.placement_svg().unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("16 tiles of [4, 4]") && svg.contains(">w0 t"));
    assert_eq!(svg.matches("<rect").count(), 16);
}

fn notebook_reshape_times_reshape() {
    // collect(reshape(DC, 8, 32) * reshape(DC, 32, 8))
    let v: Vec<f64> = ints(16, 16, 1);
    let dc = DArray::from_vec(v.clone(), [16, 16], Blocks([4, 4])).unwrap();
    let left = dc.reshape([8, 32]).unwrap();
    let right = dc.reshape([32, 8]).unwrap();
    assert_eq!(left.collect_vec().unwrap(), v);
    let product = left.matmul(&right).unwrap();
    assert_eq!(product.shape(), [8, 8]);
    assert_eq!(product.collect_vec().unwrap(), naive_matmul(&v, &v, 8, 32, 8));
}

fn notebook_sort() {
    // DD = rand(Blocks(16), 64); collect(sort(DD))
    let dd = DArray::<f64, 1>::rand(Blocks([16]), [64]);
    let mut want = dd.collect_vec().unwrap();
    want.sort_by(f64::total_cmp);
    let sorted = dd.sort();
    assert_eq!(sorted.blocks(), Blocks([16]));
    assert_eq!(sorted.collect_vec().unwrap(), want);
}

fn uneven_edge_tiles() {
    let a = DArray::from_fn(Blocks([4, 3]), [10, 7], |[r, c]: [usize; 2]| (r * 7 + c) as i64);
    assert_eq!(a.tile_counts(), [3, 3]);
    assert_eq!(a.tile([2, 2]).fetch().unwrap().shape(), [2, 1]);
    assert_eq!(a.collect_vec().unwrap(), (0..70).collect::<Vec<i64>>());
    assert_eq!(a.sum().unwrap(), (0..70).sum::<i64>());
    assert_eq!((&a * 3 - 1).collect_vec().unwrap(), (0..70).map(|x| x * 3 - 1).collect::<Vec<i64>>());
}

fn different_blocks_combine() {
    let a = DArray::from_fn(Blocks([4, 4]), [9, 11], |[r, c]: [usize; 2]| (r * 11 + c) as f64);
    let b = DArray::from_fn(Blocks([3, 5]), [9, 11], |[r, c]: [usize; 2]| (r * c) as f64);
    let sum = (&a + &b).collect_vec().unwrap();
    let want: Vec<f64> = (0..99).map(|i| i as f64 + ((i / 11) * (i % 11)) as f64).collect();
    assert_eq!(sum, want);
    let zipped = a.zip_map(&b, |x, y| x * 1000.0 + y).unwrap();
    assert_eq!(zipped.blocks(), Blocks([4, 4]));
    assert_eq!(
        zipped.collect_vec().unwrap(),
        (0..99).map(|i| i as f64 * 1000.0 + ((i / 11) * (i % 11)) as f64).collect::<Vec<_>>()
    );
}

fn reductions() {
    let v = ints(30, 17, 2);
    let a = DArray::from_vec(v.clone(), [30, 17], Blocks([7, 5])).unwrap();
    assert_eq!(a.sum().unwrap(), v.iter().sum::<f64>());
    assert_eq!(a.min().unwrap(), -8.0);
    assert_eq!(a.max().unwrap(), 8.0);
    assert_eq!(a.mean().unwrap(), v.iter().sum::<f64>() / v.len() as f64);
    assert_eq!(
        a.map_reduce(|x| (x > 0.0) as u64, |p, q| p + q, 0).unwrap(),
        v.iter().filter(|&&x| x > 0.0).count() as u64
    );
    assert_eq!(a.reduce(|x, y| if y.abs() > x.abs() { y } else { x }).unwrap().abs(), 8.0);
    let small = DArray::from_vec(vec![1.0, 2.0, 3.0, 4.0, 0.5], [5], Blocks([2])).unwrap();
    assert_eq!(small.prod().unwrap(), 12.0);
    let columns = a.sum_axis(0).collect_vec().unwrap();
    let rows = a.sum_axis(1).collect_vec().unwrap();
    assert_eq!(columns, (0..17).map(|c| (0..30).map(|r| v[r * 17 + c]).sum::<f64>()).collect::<Vec<_>>());
    assert_eq!(rows, (0..30).map(|r| v[r * 17..(r + 1) * 17].iter().sum::<f64>()).collect::<Vec<_>>());
    let empty = DArray::<f64, 1>::zeros(Blocks([4]), [0]);
    assert_eq!(empty.sum().unwrap(), 0.0);
    assert!(matches!(empty.max(), Err(Error::Shape(m)) if m.contains("empty")));
}

fn layout() {
    let v: Vec<i32> = (0..12 * 10).collect();
    let a = DArray::from_vec(v.clone(), [12, 10], Blocks([5, 4])).unwrap();
    let r = a.rechunk(Blocks([3, 7]));
    assert_eq!((r.blocks(), r.tile_counts()), (Blocks([3, 7]), [4, 2]));
    assert_eq!(r.collect_vec().unwrap(), v);
    let t = a.transpose();
    assert_eq!(t.shape(), [10, 12]);
    assert_eq!(t.collect_vec().unwrap(), (0..120).map(|i| (i % 12) * 10 + i / 12).collect::<Vec<_>>());
    let flat: DArray<i32, 1> = a.reshape([120]).unwrap();
    assert_eq!(flat.collect_vec().unwrap(), v);
    let cube: DArray<i32, 3> = flat.reshape([4, 5, 6]).unwrap();
    assert_eq!(cube.collect_vec().unwrap(), v);
    let s = a.slice([2..9, 3..10]).unwrap();
    assert_eq!(s.shape(), [7, 7]);
    let want: Vec<i32> = (2..9).flat_map(|r| (3..10).map(move |c| r * 10 + c)).collect();
    assert_eq!(s.collect_vec().unwrap(), want);
    let b = DArray::from_vec((1000..1030).collect(), [3, 10], Blocks([2, 2])).unwrap();
    let c = DArray::concat(0, &[a.clone(), b]).unwrap();
    assert_eq!(c.shape(), [15, 10]);
    let mut joined = v.clone();
    joined.extend(1000..1030);
    assert_eq!(c.collect_vec().unwrap(), joined);
    let side = DArray::concat(1, &[a.clone(), a.clone()]).unwrap();
    assert_eq!(side.shape(), [12, 20]);
    assert_eq!(side.collect_vec().unwrap()[..20], [&v[..10], &v[..10]].concat()[..]);
}

fn shape_errors_name_both_shapes() {
    let a = DArray::<f64, 2>::zeros(Blocks([2, 2]), [4, 6]);
    let b = DArray::<f64, 2>::zeros(Blocks([2, 2]), [5, 6]);
    let e = a.matmul(&b).unwrap_err();
    assert!(matches!(&e, Error::Shape(m) if m.contains("4×6") && m.contains("5×6")), "{e}");
    let e = (&a + &b).wait().unwrap_err();
    assert!(matches!(e.root(), Error::Shape(m) if m.contains("[4, 6]") && m.contains("[5, 6]")), "{e}");
    let e = a.zip_map(&b, |x, y| x + y).unwrap_err();
    assert!(matches!(&e, Error::Shape(m) if m.contains("[4, 6]") && m.contains("[5, 6]")), "{e}");
    let e = a.reshape([5, 5]).unwrap_err();
    assert!(matches!(&e, Error::Shape(m) if m.contains("[4, 6]") && m.contains("[5, 5]")), "{e}");
    assert!(matches!(a.slice([0..5, 0..2]), Err(Error::Shape(_))));
    assert!(
        matches!(DArray::from_vec(vec![1.0; 5], [2, 3], Blocks([1, 1])), Err(Error::Shape(m)) if m.contains("[2, 3]"))
    );
    assert!(matches!(a.cholesky(), Err(Error::Shape(m)) if m.contains("4×6")));
    assert!(matches!(DArray::concat(0, &[a.clone(), DArray::zeros(Blocks([2, 2]), [4, 5])]), Err(Error::Shape(_))));
    let bad = a.map_tiles(|t| t.as_slice()[1..].to_vec());
    assert!(matches!(bad.wait(), Err(Error::Shape(m)) if m.contains("map_tiles")));
}

fn matmul_against_naive() {
    let (m, k, n) = (23, 17, 19);
    let (a, b) = (ints(m, k, 4), ints(k, n, 5));
    let da = DArray::from_vec(a.clone(), [m, k], Blocks([5, 4])).unwrap();
    let db = DArray::from_vec(b.clone(), [k, n], Blocks([6, 7])).unwrap();
    let c = da.matmul(&db).unwrap();
    assert_eq!(c.blocks(), Blocks([5, 7]));
    assert_eq!(c.collect_vec().unwrap(), naive_matmul(&a, &b, m, k, n));
    // A·Aᵀ: syrk on the diagonal tiles, gemm below, transposes above.
    let at = da.transpose();
    at.wait().unwrap();
    let (gram, trace) = dirk::trace::record(|| {
        let g = da.matmul(&at).unwrap();
        g.wait().unwrap();
        g
    });
    assert_eq!(gram.collect_vec().unwrap(), naive_matmul(&a, &transpose(&a, m, k), m, k, m));
    let named = |n: &str| trace.tasks().iter().filter(|t| t.name == n).count();
    assert_eq!((named("darray syrk"), named("darray matmul")), (5, 10), "5 diagonal and 10 lower tiles of 5×5");
    // Another array's transpose is a plain product.
    let other = DArray::from_vec(a.clone(), [m, k], Blocks([5, 4])).unwrap();
    assert_eq!(da.matmul(&other.transpose()).unwrap().collect_vec().unwrap(), gram.collect_vec().unwrap());
}

fn cholesky_against_naive() {
    let n = 37;
    let a = spd(n);
    let da = DArray::from_vec(a.clone(), [n, n], Blocks([8, 8])).unwrap();
    let l = da.cholesky().unwrap().collect_vec().unwrap();
    for i in 0..n {
        for j in i + 1..n {
            assert_eq!(l[i * n + j], 0.0, "L is lower triangular");
        }
    }
    assert_close(&naive_matmul(&l, &transpose(&l, n, n), n, n, n), &a, 1e-12);
}

fn not_positive_definite_fails_from_its_tile() {
    let n = 12;
    let mut a = spd(n);
    a[9 * n + 9] = -1e6; // the pivot of row 9, in diagonal tile 2 (of 4×4 tiles)
    let l = DArray::from_vec(a, [n, n], Blocks([4, 4])).unwrap().cholesky().unwrap();
    let e = l.wait().unwrap_err();
    match e.root() {
        Error::Failed { name, message, .. } => {
            assert_eq!(name, "darray cholesky potrf");
            assert!(message.contains("not positive definite") && message.contains("pivot 9"), "{message}");
            assert!(message.contains("diagonal tile 2"), "{message}");
        }
        other => panic!("expected a failed potrf tile, got {other}"),
    }
    // Tiles computed before the failing step are fine.
    assert!(l.tile([0, 0]).fetch().is_ok());
}

fn lu_and_solve() {
    let n = 29;
    // Not symmetric, and with small leading pivots so that pivoting matters.
    let mut a = ints(n, n, 6);
    for i in 0..n {
        a[i * n + i] += if i % 3 == 0 { 0.0 } else { 20.0 };
    }
    a[0] = 0.0;
    let da = DArray::from_vec(a.clone(), [n, n], Blocks([7, 7])).unwrap();
    let lu = da.lu().unwrap();
    let (l, u, perm) = (lu.l().collect_vec().unwrap(), lu.u().collect_vec().unwrap(), lu.perm().unwrap());
    let mut sorted = perm.clone();
    sorted.sort();
    assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "a permutation");
    let pa: Vec<f64> = perm.iter().flat_map(|&r| a[r * n..(r + 1) * n].to_vec()).collect();
    assert_close(&naive_matmul(&l, &u, n, n, n), &pa, 1e-12);
    for i in 0..n {
        assert_eq!(l[i * n + i], 1.0);
        assert!(l[i * n + i + 1..(i + 1) * n].iter().all(|&x| x == 0.0));
        assert!(l[i * n..i * n + i].iter().all(|x| x.abs() <= 1.0 + 1e-12), "partial pivoting bounds L");
    }
    let x_true = ints(n, 3, 8);
    let b = naive_matmul(&a, &x_true, n, n, 3);
    let x = da.solve(&DArray::from_vec(b, [n, 3], Blocks([5, 2])).unwrap()).unwrap();
    assert_eq!(x.shape(), [n, 3]);
    assert_close(&x.collect_vec().unwrap(), &x_true, 1e-9);
}

fn triangular_solves() {
    let n = 21;
    let l_full = DArray::from_vec(spd(n), [n, n], Blocks([6, 6])).unwrap().cholesky().unwrap();
    let l = l_full.collect_vec().unwrap();
    let x_true = ints(n, 4, 9);
    let b = naive_matmul(&l, &x_true, n, n, 4);
    let db = DArray::from_vec(b, [n, 4], Blocks([6, 4])).unwrap();
    assert_close(&l_full.solve_triangular(&db, Triangle::Lower).unwrap().collect_vec().unwrap(), &x_true, 1e-9);
    let u = transpose(&l, n, n);
    let du = DArray::from_vec(u.clone(), [n, n], Blocks([6, 6])).unwrap();
    let b = naive_matmul(&u, &x_true, n, n, 4);
    let x = du.solve_triangular(&DArray::from_vec(b, [n, 4], Blocks([6, 4])).unwrap(), Triangle::Upper).unwrap();
    assert_close(&x.collect_vec().unwrap(), &x_true, 1e-9);
}

fn sort_by_and_duplicates() {
    let v: Vec<i64> = (0..1000).map(|i| (i * 7919) % 37).collect();
    let a = DArray::from_vec(v.clone(), [1000], Blocks([64])).unwrap();
    let mut want = v.clone();
    want.sort();
    assert_eq!(a.sort().collect_vec().unwrap(), want);
    want.reverse();
    assert_eq!(a.sort_by(|x, y| y.cmp(x)).collect_vec().unwrap(), want);
    let one = DArray::from_vec(vec![3, 1, 2], [3], Blocks([8])).unwrap();
    assert_eq!(one.sort().collect_vec().unwrap(), [1, 2, 3]);
}

fn stencil_against_naive() {
    let (rows, cols, sweeps) = (13, 11, 6);
    let init: Vec<f64> = ints(rows, cols, 10);
    let a = DArray::from_vec(init.clone(), [rows, cols], Blocks([4, 3])).unwrap();
    let got = a.stencil(sweeps, |c, [n, s, w, e]| 0.5 * c + 0.125 * (n + s + w + e)).collect_vec().unwrap();
    let mut x = init;
    for _ in 0..sweeps {
        let prev = x.clone();
        for r in 1..rows - 1 {
            for c in 1..cols - 1 {
                let at = |r: usize, c: usize| prev[r * cols + c];
                x[r * cols + c] = 0.5 * at(r, c) + 0.125 * (at(r - 1, c) + at(r + 1, c) + at(r, c - 1) + at(r, c + 1));
            }
        }
    }
    assert_eq!(got, x);
}

fn ndarray_round_trip() {
    let m = ndarray::Array2::from_shape_fn((6, 9), |(r, c)| (r * 9 + c) as f32);
    let d = DArray::from_ndarray(&m, Blocks([4, 4]));
    assert_eq!(d.to_ndarray().unwrap(), m);
    let t = ndarray::Array2::from_shape_fn((9, 6), |(r, c)| (c * 9 + r) as f32);
    assert_eq!(d.transpose().to_ndarray().unwrap(), t);
}
