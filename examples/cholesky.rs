//! Tiled Cholesky factorisation with `datadeps!`: the textbook triple loop
//! over b×b tiles, each kernel call a task, ordered by the tiles it reads
//! and writes.
//!
//! ```text
//! for k in tiles:
//!     potrf(A[k,k])                        A[k,k] = L[k,k] L[k,k]ᵀ
//!     for i > k: trsm(A[k,k], A[i,k])      A[i,k] = A[i,k] L[k,k]⁻ᵀ
//!     for i > k:
//!         syrk(A[i,k], A[i,i])             A[i,i] -= A[i,k] A[i,k]ᵀ
//!         for k < j < i:
//!             gemm(A[i,k], A[j,k], A[i,j])  A[i,j] -= A[i,k] A[j,k]ᵀ
//! ```
//!
//! Tasks on different tiles run in parallel as soon as the tiles they read
//! are final: the trailing updates of step k overlap the factorisation of
//! step k + 1. The kernels are plain Rust on row-major tiles.
//!
//! Run it with `cargo run --release --example cholesky -- [n] [b]`
//! (default 2048 and 128); it checks the result against an unblocked serial
//! Cholesky and prints the speed-up over the same kernels run serially.

use std::ops::Range;
use std::time::Instant;

use dirk::datadeps::{MatMut, MatRef, Matrix};
use dirk::prelude::*;

/// `x · y`, with four accumulators so the loop pipelines.
fn dot(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let mut acc = [0.0; 4];
    let (xc, yc) = (x.chunks_exact(4), y.chunks_exact(4));
    let tail: f64 = xc.remainder().iter().zip(yc.remainder()).map(|(a, b)| a * b).sum();
    for (a, b) in xc.zip(yc) {
        for k in 0..4 {
            acc[k] += a[k] * b[k];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// `A = L Lᵀ` in place on the lower triangle of a square tile.
pub(crate) fn potrf(mut a: MatMut<'_, f64>) {
    for i in 0..a.rows() {
        let (done, mut rest) = a.reborrow().split_at_row(i);
        let ri = rest.row_mut(0);
        for j in 0..i {
            let rj = done.row(j);
            ri[j] = (ri[j] - dot(&ri[..j], &rj[..j])) / rj[j];
        }
        let d = ri[i] - dot(&ri[..i], &ri[..i]);
        assert!(d > 0.0, "the matrix is not positive definite (pivot {i} is {d})");
        ri[i] = d.sqrt();
    }
}

/// `B = B L⁻ᵀ` for the lower-triangular tile `l`.
pub(crate) fn trsm(l: MatRef<'_, f64>, mut b: MatMut<'_, f64>) {
    for r in 0..b.rows() {
        let row = b.row_mut(r);
        for j in 0..row.len() {
            let lj = l.row(j);
            row[j] = (row[j] - dot(&row[..j], &lj[..j])) / lj[j];
        }
    }
}

/// `C -= A Aᵀ` on the lower triangle of the square tile `c`.
pub(crate) fn syrk(a: MatRef<'_, f64>, mut c: MatMut<'_, f64>) {
    for i in 0..c.rows() {
        let (ai, ci) = (a.row(i), c.row_mut(i));
        for (j, cij) in ci.iter_mut().enumerate().take(i + 1) {
            *cij -= dot(ai, a.row(j));
        }
    }
}

/// `C -= A Bᵀ`.
pub(crate) fn gemm(a: MatRef<'_, f64>, b: MatRef<'_, f64>, mut c: MatMut<'_, f64>) {
    for i in 0..c.rows() {
        let (ai, ci) = (a.row(i), c.row_mut(i));
        for (j, cij) in ci.iter_mut().enumerate() {
            *cij -= dot(ai, b.row(j));
        }
    }
}

/// The rows (or columns) of tile `k` of an `n`-wide matrix in `b`-wide tiles.
fn tile(k: usize, b: usize, n: usize) -> Range<usize> {
    k * b..((k + 1) * b).min(n)
}

/// Factors the SPD matrix `a` in place (lower triangle) with `b×b` tiles,
/// each kernel call a task.
pub(crate) fn tiled(a: &mut Matrix<f64>, b: usize) -> Result<(), Error> {
    let n = a.rows();
    let nt = n.div_ceil(b);
    let t = |k| tile(k, b, n);
    datadeps! {
        for k in 0..nt {
            potrf(InOut(a[(t(k), t(k))]));
            for i in k + 1..nt {
                trsm(In(a[(t(k), t(k))]), InOut(a[(t(i), t(k))]));
            }
            for i in k + 1..nt {
                syrk(In(a[(t(i), t(k))]), InOut(a[(t(i), t(i))]));
                for j in k + 1..i {
                    gemm(In(a[(t(i), t(k))]), In(a[(t(j), t(k))]), InOut(a[(t(i), t(j))]));
                }
            }
        }
    }
}

/// The same kernels in the same order, on the caller's thread: the
/// baseline the speed-up is measured against.
pub(crate) fn tiled_serial(a: &mut Matrix<f64>, b: usize) {
    let n = a.rows();
    let nt = n.div_ceil(b);
    let t = |k| tile(k, b, n);
    for k in 0..nt {
        let kk = t(k);
        potrf(a.view_mut().into_tile(kk.clone(), kk.clone()));
        // The tile column k is read while the tiles right of it are written.
        let (left, mut right) = a.view_mut().split_at_col(kk.end);
        let (top, mut below) = left.split_at_row(kk.end);
        let lkk = top.as_ref().tile(kk.clone(), kk.clone());
        for i in k + 1..nt {
            trsm(lkk, below.tile(t(i).start - kk.end..t(i).end - kk.end, kk.clone()));
        }
        let col = below.as_ref();
        let below_k = |i: usize| col.tile(t(i).start - kk.end..t(i).end - kk.end, kk.clone());
        for i in k + 1..nt {
            let ti = t(i);
            let right_of = |j: usize| t(j).start - kk.end..t(j).end - kk.end;
            syrk(below_k(i), right.tile(ti.clone(), right_of(i)));
            for j in k + 1..i {
                gemm(below_k(i), below_k(j), right.tile(ti.clone(), right_of(j)));
            }
        }
    }
}

/// The unblocked serial Cholesky of the whole matrix: the reference.
pub(crate) fn serial(a: &mut Matrix<f64>) {
    potrf(a.view_mut());
}

/// A symmetric, strictly diagonally dominant (so positive definite) matrix.
pub(crate) fn spd(n: usize, seed: u64) -> Matrix<f64> {
    let hash = |i: usize, j: usize| {
        let (i, j) = (i.min(j) as u64, i.max(j) as u64);
        let mut x = seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ j.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        x ^= x >> 31;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 29;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    Matrix::from_fn(n, n, |i, j| if i == j { n as f64 + hash(i, i) } else { hash(i, j) })
}

/// `‖L₁ − L₂‖ / ‖L₂‖` over the lower triangles (Frobenius norms).
pub(crate) fn relative_error(l1: &Matrix<f64>, l2: &Matrix<f64>) -> f64 {
    let (mut diff, mut norm) = (0.0, 0.0);
    for i in 0..l2.rows() {
        for j in 0..=i {
            diff += (l1[(i, j)] - l2[(i, j)]).powi(2);
            norm += l2[(i, j)].powi(2);
        }
    }
    (diff / norm).sqrt()
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("sizes are numbers"));
    let n = args.next().unwrap_or(2048);
    let b = args.next().unwrap_or(128);
    let a = spd(n, 7);
    #[cfg(feature = "array")]
    let a_copy = a.clone();
    println!("tiled Cholesky of a {n}×{n} matrix in {b}×{b} tiles");

    let mut parallel = a.clone();
    let start = Instant::now();
    tiled(&mut parallel, b)?;
    let t_parallel = start.elapsed();

    let mut one_thread = a.clone();
    let start = Instant::now();
    tiled_serial(&mut one_thread, b);
    let t_serial = start.elapsed();

    let mut reference = a;
    serial(&mut reference);
    let error = relative_error(&parallel, &reference);
    println!("datadeps!: {t_parallel:?}; the same kernels serially: {t_serial:?}");
    println!("speed-up {:.2}× ; relative error {error:.1e}", t_serial.as_secs_f64() / t_parallel.as_secs_f64());
    assert!(error < 1e-8, "the tiled factor differs from the serial one");
    #[cfg(feature = "array")]
    on_darray(&a_copy, b, &reference)?;
    Ok(())
}

/// The same factorisation written on `dirk::array`: `DArray::cholesky`,
/// whose tile kernels are faer's (`--features array`).
#[cfg(feature = "array")]
fn on_darray(a: &Matrix<f64>, b: usize, reference: &Matrix<f64>) -> Result<(), Error> {
    use dirk::array::{Blocks, DArray};
    let n = a.rows();
    let values: Vec<f64> = (0..n * n).map(|k| a[(k / n, k % n)]).collect();
    let da = DArray::from_vec(values, [n, n], Blocks([b, b]))?;
    da.wait()?;
    let start = Instant::now();
    let l = da.cholesky()?;
    l.wait()?;
    let took = start.elapsed();
    let l = l.collect_vec()?;
    let error = relative_error(&Matrix::from_fn(n, n, |i, j| l[i * n + j]), reference);
    println!("DArray::cholesky (faer tile kernels): {took:?}; relative error {error:.1e}");
    assert!(error < 1e-8, "the DArray factor differs from the serial one");
    Ok(())
}
