//! Dense linear algebra on tiles: each kernel call is a task on whole
//! tiles, ordered by the tiles it reads and makes, and runs faer's
//! sequential kernel (the parallelism comes from the tiles).
//!
//! The algorithms are the tiled ones of LAPACK and Dagger: a tile that a
//! step rewrites is passed by value, so it moves from task to task without
//! a copy when no one else holds it.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{LltError, LltRegularization, cholesky_in_place, cholesky_in_place_scratch};
use faer::linalg::lu::partial_pivoting::factor::{lu_in_place, lu_in_place_scratch};
use faer::linalg::matmul::matmul;
use faer::linalg::triangular_solve as tri;
use faer::{Accum, MatMut, MatRef, Par};

use super::grid::Grid;
use super::{Blocks, DArray, Tile, fail_here, shape_error};
use crate::{Error, Task};

type Mat = Tile<f64, 2>;

/// Which triangle of a matrix a triangular solve reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Triangle {
    /// The lower triangle, diagonal included.
    Lower,
    /// The lower triangle with ones taken on the diagonal (an LU's `L`).
    UnitLower,
    /// The upper triangle, diagonal included.
    Upper,
}

fn view(t: &Mat) -> MatRef<'_, f64> {
    let [r, c] = t.shape();
    MatRef::from_row_major_slice(t.as_slice(), r, c)
}

fn view_mut(t: &mut Mat) -> MatMut<'_, f64> {
    let [r, c] = t.shape();
    MatMut::from_row_major_slice_mut(t.as_mut_slice(), r, c)
}

/// `c += alpha · a · b` (`b` transposed when `bt`).
fn gemm(c: &mut Mat, a: &Mat, b: &Mat, bt: bool, alpha: f64) {
    let b = if bt { view(b).transpose() } else { view(b) };
    matmul(view_mut(c), Accum::Add, view(a), b, alpha, Par::Seq);
}

/// `c += a aᵀ` on the lower triangle of the square tile `c` (faer's
/// triangular matmul: half the flops of a gemm).
fn syrk_lower(c: &mut Mat, a: &Mat) {
    use faer::linalg::matmul::triangular::{BlockStructure, matmul as tri_matmul};
    tri_matmul(
        view_mut(c),
        BlockStructure::TriangularLower,
        Accum::Add,
        view(a),
        BlockStructure::Rectangular,
        view(a).transpose(),
        BlockStructure::Rectangular,
        1.0,
        Par::Seq,
    );
}

/// Copies the lower triangle of a square tile onto its upper triangle.
fn mirror_lower(c: &mut Mat) {
    let n = c.shape()[0];
    let d = c.as_mut_slice();
    for i in 0..n {
        for j in i + 1..n {
            d[i * n + j] = d[j * n + i];
        }
    }
}

/// `b = t⁻¹ b` for the triangle `which` of the square tile `t`.
fn trsm_left(t: &Mat, b: &mut Mat, which: Triangle) {
    match which {
        Triangle::Lower => tri::solve_lower_triangular_in_place(view(t), view_mut(b), Par::Seq),
        Triangle::UnitLower => tri::solve_unit_lower_triangular_in_place(view(t), view_mut(b), Par::Seq),
        Triangle::Upper => tri::solve_upper_triangular_in_place(view(t), view_mut(b), Par::Seq),
    }
}

/// A square tile's tiles must be square too: the row blocks are used for
/// both axes.
fn square_tiles(a: &DArray<f64, 2>, op: &str) -> Result<DArray<f64, 2>, Error> {
    let [r, c] = a.shape();
    if r != c {
        return Err(shape_error(format_args!("{op}: the matrix is {r}×{c}, not square")));
    }
    let b = a.grid.blocks[0];
    Ok(a.rechunk(Blocks([b, b])))
}

/// The tiles of `a` as a table `[i][j]`.
fn table(a: &DArray<f64, 2>) -> Vec<Vec<Option<Task<Mat>>>> {
    let [rows, cols] = a.grid.counts;
    (0..rows).map(|i| (0..cols).map(|j| Some(a.tiles()[a.grid.linear([i, j])].clone())).collect()).collect()
}

fn zeros_tile(shape: [usize; 2]) -> Task<Mat> {
    crate::spawn!(name = "darray zeros", (move || Tile::new(shape, vec![0.0; shape[0] * shape[1]]))())
}

/// The factors of `P A = L U` (partial pivoting): [`DArray::lu`].
#[derive(Clone, Debug)]
pub struct Lu {
    /// `L` below the diagonal (its unit diagonal not stored), `U` on and
    /// above it.
    factors: DArray<f64, 2>,
    /// Row `i` of `P A` is row `perm[i]` of `A`.
    perm: Task<Vec<usize>>,
}

impl Lu {
    /// `L` and `U` in one array, as LAPACK stores them.
    pub fn factors(&self) -> &DArray<f64, 2> {
        &self.factors
    }

    /// The unit lower-triangular factor `L`.
    pub fn l(&self) -> DArray<f64, 2> {
        triangle(&self.factors, Triangle::UnitLower)
    }

    /// The upper-triangular factor `U`.
    pub fn u(&self) -> DArray<f64, 2> {
        triangle(&self.factors, Triangle::Upper)
    }

    /// The row permutation: row `i` of `P A` is row `perm()[i]` of `A`.
    pub fn perm(&self) -> Result<Vec<usize>, Error> {
        self.perm.fetch()
    }

    /// Solves `A X = B` with these factors.
    pub fn solve(&self, b: &DArray<f64, 2>) -> Result<DArray<f64, 2>, Error> {
        let n = self.factors.shape()[0];
        if b.shape()[0] != n {
            return Err(shape_error(format_args!(
                "solve: a {n}×{n} matrix and a right-hand side of shape {:?}",
                b.shape()
            )));
        }
        let pb = permute_rows(b, &self.perm);
        let y = self.factors.solve_triangular(&pb, Triangle::UnitLower)?;
        self.factors.solve_triangular(&y, Triangle::Upper)
    }
}

/// The triangle `which` of `a` (zeros elsewhere; ones on the diagonal
/// for [`Triangle::UnitLower`]).
fn triangle(a: &DArray<f64, 2>, which: Triangle) -> DArray<f64, 2> {
    let grid = a.grid;
    let tiles = (0..grid.count())
        .map(|o| {
            let [r0, c0] = grid.tile_start(o);
            crate::spawn!(
                name = "darray triangle",
                (move |t: &Mat| -> Mat {
                    let [rows, cols] = t.shape();
                    let src = t.as_slice();
                    let mut out = vec![0.0; rows * cols];
                    for i in 0..rows {
                        for j in 0..cols {
                            let (gi, gj) = (r0 + i, c0 + j);
                            out[i * cols + j] = match which {
                                Triangle::UnitLower if gi == gj => 1.0,
                                Triangle::UnitLower | Triangle::Lower if gi >= gj => src[i * cols + j],
                                Triangle::Upper if gi <= gj => src[i * cols + j],
                                _ => 0.0,
                            };
                        }
                    }
                    Tile::new([rows, cols], out)
                })(&a.tiles()[o])
            )
        })
        .collect();
    DArray::from_tiles(grid, tiles)
}

/// Rows of `b` reordered: row `i` of the result is row `perm[i]` of `b`.
fn permute_rows(b: &DArray<f64, 2>, perm: &Task<Vec<usize>>) -> DArray<f64, 2> {
    let grid = b.grid;
    let tiles = (0..grid.count())
        .map(|o| {
            let [_, j] = grid.index(o);
            let column: Vec<_> = (0..grid.counts[0]).map(|r| b.tiles()[grid.linear([r, j])].clone()).collect();
            let (rows, cols) = (grid.ranges(o)[0].clone(), grid.tile_shape(o)[1]);
            let br = grid.blocks[0];
            crate::spawn!(
                name = "darray permute rows",
                (move |perm: &Vec<usize>, column: &[&Mat]| -> Mat {
                    let mut out = Vec::with_capacity(rows.len() * cols);
                    for r in rows.clone() {
                        let from = perm[r];
                        let t = column[from / br];
                        let at = (from % br) * cols;
                        out.extend_from_slice(&t.as_slice()[at..at + cols]);
                    }
                    Tile::new([rows.len(), cols], out)
                })(perm, column)
            )
        })
        .collect();
    DArray::from_tiles(grid, tiles)
}

/// One column of tiles, stacked: what an LU step factors and permutes.
type Column = Vec<Mat>;

/// A factored panel: column `k` of tiles with rows `k..` factored, and the
/// permutation of those rows.
#[derive(Clone)]
struct Panel {
    column: Column,
    /// Row `i` of the permuted panel (counted from its first row) is row
    /// `perm[i]` before.
    perm: Vec<usize>,
}

impl DArray<f64, 2> {
    /// `self · b`. `b` is re-tiled so that its row blocks match this
    /// array's column blocks; the product has this array's row blocks and
    /// `b`'s column blocks. One task per tile of the product, each a
    /// sequence of faer gemm calls over the tiles it needs.
    ///
    /// `Error::Shape` when the inner dimensions differ.
    pub fn matmul(&self, b: &DArray<f64, 2>) -> Result<DArray<f64, 2>, Error> {
        let ([m, k], [k2, n]) = (self.shape(), b.shape());
        if k != k2 {
            return Err(shape_error(format_args!(
                "matmul: a {m}×{k} matrix times a {k2}×{n} matrix (inner dimensions differ)"
            )));
        }
        let own = b.transpose_of.as_ref().and_then(|t| t.downcast_ref::<super::Tiles<f64, 2>>());
        if own.is_some_and(|t| std::sync::Arc::ptr_eq(t, self.tiles())) {
            return Ok(self.gram());
        }
        let b = b.rechunk(Blocks([self.grid.blocks[1], b.grid.blocks[1]]));
        let grid = Grid::new([m, n], [self.grid.blocks[0], b.grid.blocks[1]]);
        let kt = self.grid.counts[1];
        let tiles = (0..grid.count())
            .map(|o| {
                let [i, j] = grid.index(o);
                let mut inputs: Vec<Task<Mat>> =
                    (0..kt).map(|p| self.tiles()[self.grid.linear([i, p])].clone()).collect();
                inputs.extend((0..kt).map(|p| b.tiles()[b.grid.linear([p, j])].clone()));
                let shape = grid.tile_shape(o);
                crate::spawn!(
                    name = "darray matmul",
                    (move |tiles: &[&Mat]| -> Mat {
                        let mut c = Tile::new(shape, vec![0.0; shape[0] * shape[1]]);
                        let (a, b) = tiles.split_at(kt);
                        for p in 0..kt {
                            gemm(&mut c, a[p], b[p], false, 1.0);
                        }
                        c
                    })(inputs)
                )
            })
            .collect();
        Ok(DArray::from_tiles(grid, tiles))
    }

    /// `A·Aᵀ` (what `a.matmul(&a.transpose())` computes): only the tiles
    /// on and below the diagonal are multiplied (syrk on the diagonal, gemm
    /// below), those above are their transposes, for about half the flops.
    pub fn gram(&self) -> DArray<f64, 2> {
        let [m, _] = self.shape();
        let bm = self.grid.blocks[0];
        let grid = Grid::new([m, m], [bm, bm]);
        let (mt, kt) = (self.grid.counts[0], self.grid.counts[1]);
        let row =
            |i: usize| -> Vec<Task<Mat>> { (0..kt).map(|p| self.tiles()[self.grid.linear([i, p])].clone()).collect() };
        let mut lower: Vec<Option<Task<Mat>>> = vec![None; grid.count()];
        for i in 0..mt {
            for j in 0..=i {
                let mut inputs = row(i);
                if i != j {
                    inputs.extend(row(j));
                }
                let shape = grid.tile_shape(grid.linear([i, j]));
                lower[grid.linear([i, j])] = Some(crate::spawn!(
                    name = if i == j { "darray syrk" } else { "darray matmul" },
                    (move |tiles: &[&Mat]| -> Mat {
                        let mut c = Tile::new(shape, vec![0.0; shape[0] * shape[1]]);
                        if tiles.len() == kt {
                            for a in tiles {
                                syrk_lower(&mut c, a);
                            }
                            mirror_lower(&mut c);
                        } else {
                            let (a, b) = tiles.split_at(kt);
                            for p in 0..kt {
                                gemm(&mut c, a[p], b[p], true, 1.0);
                            }
                        }
                        c
                    })(inputs)
                ));
            }
        }
        let tiles = (0..grid.count())
            .map(|o| {
                let [i, j] = grid.index(o);
                if j <= i {
                    return lower[o].clone().expect("made above");
                }
                let below = lower[grid.linear([j, i])].clone().expect("made above");
                crate::spawn!(name = "darray transpose", (|t: &Mat| -> Mat { super::layout::transposed(t) })(below))
            })
            .collect();
        DArray::from_tiles(grid, tiles)
    }

    /// The lower Cholesky factor `L` of a symmetric positive-definite
    /// matrix (`L Lᵀ = A`; only the lower triangle of `A` is read), by the
    /// tiled right-looking algorithm: potrf on the diagonal tile, trsm
    /// below it, syrk/gemm on the trailing tiles.
    ///
    /// `Error::Shape` at once for a matrix that is not square; a matrix
    /// that is not positive definite fails the task of the diagonal tile
    /// where a pivot is not positive ([`Error::Failed`] naming the pivot),
    /// and the tiles that depend on it with [`Error::Upstream`].
    pub fn cholesky(&self) -> Result<DArray<f64, 2>, Error> {
        let a = square_tiles(self, "cholesky")?;
        let (grid, nt, b) = (a.grid, a.grid.counts[0], a.grid.blocks[0]);
        let mut t = table(&a);
        let mut l: Vec<Vec<Option<Task<Mat>>>> = vec![vec![None; nt]; nt];
        for k in 0..nt {
            let akk = t[k][k].take().expect("each tile is factored once");
            let lkk = crate::spawn!(
                name = "darray cholesky potrf",
                (move |mut a: Mat| -> Mat {
                    let n = a.shape()[0];
                    let mut scratch = MemBuffer::new(cholesky_in_place_scratch::<f64>(n, Par::Seq, Default::default()));
                    let factored = cholesky_in_place(
                        view_mut(&mut a),
                        LltRegularization::default(),
                        Par::Seq,
                        MemStack::new(&mut scratch),
                        Default::default(),
                    );
                    if let Err(LltError::NonPositivePivot { index }) = factored {
                        fail_here(format!(
                            "the matrix is not positive definite: pivot {} (in diagonal tile {k}) is not positive",
                            k * b + index
                        ));
                    }
                    let data = a.as_mut_slice();
                    for i in 0..n {
                        data[i * n + i + 1..(i + 1) * n].fill(0.0);
                    }
                    a
                })(akk)
            );
            for i in k + 1..nt {
                let aik = t[i][k].take().expect("each tile is solved once");
                l[i][k] = Some(crate::spawn!(
                    name = "darray cholesky trsm",
                    (|lkk: &Mat, mut a: Mat| -> Mat {
                        // A L⁻ᵀ: solve L Xᵀ = Aᵀ.
                        tri::solve_lower_triangular_in_place(view(lkk), view_mut(&mut a).transpose_mut(), Par::Seq);
                        a
                    })(&lkk, aik)
                ));
            }
            l[k][k] = Some(lkk);
            for i in k + 1..nt {
                for j in k + 1..=i {
                    let aij = t[i][j].take().expect("each tile is updated in order");
                    let (lik, ljk) = (l[i][k].clone().expect("solved above"), l[j][k].clone().expect("solved above"));
                    t[i][j] = Some(crate::spawn!(
                        name = if i == j { "darray cholesky syrk" } else { "darray cholesky gemm" },
                        (|mut a: Mat, lik: &Mat, ljk: &Mat| -> Mat {
                            gemm(&mut a, lik, ljk, true, -1.0);
                            a
                        })(aij, lik, ljk)
                    ));
                }
            }
        }
        let tiles = (0..grid.count())
            .map(|o| {
                let [i, j] = grid.index(o);
                match l[i][j].take() {
                    Some(t) => t,
                    None => zeros_tile(grid.tile_shape(o)),
                }
            })
            .collect();
        Ok(DArray::from_tiles(grid, tiles))
    }

    /// Solves `T X = B` for `X`, where `T` is the triangle `which` of this
    /// square matrix: forward (or backward) substitution over tiles, one
    /// task per tile of `X`.
    ///
    /// `Error::Shape` when the matrix is not square or `b` has another
    /// number of rows.
    pub fn solve_triangular(&self, b: &DArray<f64, 2>, which: Triangle) -> Result<DArray<f64, 2>, Error> {
        let a = square_tiles(self, "solve_triangular")?;
        let n = a.shape()[0];
        if b.shape()[0] != n {
            return Err(shape_error(format_args!(
                "solve_triangular: a {n}×{n} matrix and a right-hand side of shape {:?}",
                b.shape()
            )));
        }
        let bb = b.rechunk(Blocks([a.grid.blocks[0], b.grid.blocks[1]]));
        let (grid, nt) = (bb.grid, a.grid.counts[0]);
        let mut x: Vec<Option<Task<Mat>>> = vec![None; grid.count()];
        let order: Vec<usize> = if which == Triangle::Upper { (0..nt).rev().collect() } else { (0..nt).collect() };
        for c in 0..grid.counts[1] {
            for (step, &i) in order.iter().enumerate() {
                let done = &order[..step];
                let mut inputs = vec![a.tiles()[a.grid.linear([i, i])].clone()];
                for &j in done {
                    inputs.push(a.tiles()[a.grid.linear([i, j])].clone());
                    inputs.push(x[grid.linear([j, c])].clone().expect("solved earlier"));
                }
                let bic = bb.tiles()[grid.linear([i, c])].clone();
                x[grid.linear([i, c])] = Some(crate::spawn!(
                    name = "darray solve_triangular",
                    (move |mut rhs: Mat, tiles: &[&Mat]| -> Mat {
                        for pair in tiles[1..].chunks_exact(2) {
                            gemm(&mut rhs, pair[0], pair[1], false, -1.0);
                        }
                        trsm_left(tiles[0], &mut rhs, which);
                        rhs
                    })(bic, inputs)
                ));
            }
        }
        let tiles = x.into_iter().map(|t| t.expect("every tile is solved")).collect();
        Ok(DArray::from_tiles(grid, tiles))
    }

    /// `P A = L U` with partial pivoting (rows swapped across the whole
    /// column, as LAPACK's getrf), by tiled right-looking steps: one task
    /// factors column `k` of tiles (faer's LU on the stacked panel), then
    /// one task per other column applies its row swaps and, right of the
    /// panel, solves its `U` tile and updates the tiles below.
    ///
    /// `Error::Shape` at once for a matrix that is not square; a singular
    /// matrix fails the panel where a pivot is zero.
    pub fn lu(&self) -> Result<Lu, Error> {
        let a = square_tiles(self, "lu")?;
        let (grid, nt, b) = (a.grid, a.grid.counts[0], a.grid.blocks[0]);
        let mut columns: Vec<Task<Column>> = (0..nt)
            .map(|j| {
                let tiles: Vec<_> = (0..nt).map(|i| a.tiles()[grid.linear([i, j])].clone()).collect();
                crate::join_all(tiles)
            })
            .collect();
        let mut panels = Vec::with_capacity(nt);
        for k in 0..nt {
            let col = columns[k].clone();
            let panel = crate::spawn!(
                name = "darray lu panel",
                (move |mut column: Column| -> Panel {
                    let rows: usize = column[k..].iter().map(|t| t.shape()[0]).sum();
                    let w = column[k].shape()[1];
                    let mut stacked = Vec::with_capacity(rows * w);
                    for t in &column[k..] {
                        stacked.extend_from_slice(t.as_slice());
                    }
                    let mut fwd = vec![0usize; rows];
                    let mut bwd = vec![0usize; rows];
                    let req = lu_in_place_scratch::<usize, f64>(rows, w, Par::Seq, Default::default());
                    let mut scratch = MemBuffer::new(req);
                    {
                        let m = MatMut::from_row_major_slice_mut(&mut stacked, rows, w);
                        lu_in_place(m, &mut fwd, &mut bwd, Par::Seq, MemStack::new(&mut scratch), Default::default());
                    }
                    for d in 0..w.min(rows) {
                        if stacked[d * w + d] == 0.0 {
                            fail_here(format!("the matrix is singular: pivot {} is zero", k * b + d));
                        }
                    }
                    let mut at = 0;
                    for t in &mut column[k..] {
                        let len = t.len();
                        t.as_mut_slice().copy_from_slice(&stacked[at..at + len]);
                        at += len;
                    }
                    Panel { column, perm: fwd }
                })(col)
            );
            for (j, column) in columns.iter_mut().enumerate() {
                if j == k {
                    continue;
                }
                let old = std::mem::replace(column, zeros_column());
                *column = crate::spawn!(
                    name = if j > k { "darray lu update" } else { "darray lu swap" },
                    (move |p: &Panel, mut column: Column| -> Column {
                        permute_column(&mut column[k..], &p.perm);
                        if j > k {
                            let (upper, lower) = column.split_at_mut(k + 1);
                            let ukj = &mut upper[k];
                            trsm_left(&p.column[k], ukj, Triangle::UnitLower);
                            for (t, l) in lower.iter_mut().zip(&p.column[k + 1..]) {
                                gemm(t, l, ukj, false, -1.0);
                            }
                        }
                        column
                    })(&panel, old)
                );
            }
            columns[k] = crate::spawn!(name = "darray lu column", (|p: &Panel| -> Column { p.column.clone() })(&panel));
            panels.push(panel);
        }
        let n = grid.shape[0];
        let perm = crate::spawn!(
            name = "darray lu perm",
            (move |panels: &[&Panel]| -> Vec<usize> {
                let mut perm: Vec<usize> = (0..n).collect();
                for (k, p) in panels.iter().enumerate() {
                    let tail: Vec<usize> = p.perm.iter().map(|&i| perm[k * b + i]).collect();
                    perm[k * b..].copy_from_slice(&tail);
                }
                perm
            })(panels)
        );
        let tiles = (0..grid.count())
            .map(|o| {
                let [i, j] = grid.index(o);
                crate::spawn!(name = "darray lu tile", (move |c: &Column| -> Mat { c[i].clone() })(&columns[j]))
            })
            .collect();
        Ok(Lu { factors: DArray::from_tiles(grid, tiles), perm })
    }

    /// Solves `A X = B` (`A` square) by [`lu`](DArray::lu).
    pub fn solve(&self, b: &DArray<f64, 2>) -> Result<DArray<f64, 2>, Error> {
        self.lu()?.solve(b)
    }
}

fn zeros_column() -> Task<Column> {
    crate::spawn(Vec::new)
}

/// Reorders the rows of a stacked column of tiles: row `i` becomes what
/// row `perm[i]` was.
fn permute_column(tiles: &mut [Mat], perm: &[usize]) {
    let Some(w) = tiles.first().map(|t| t.shape()[1]) else { return };
    let mut stacked = Vec::with_capacity(perm.len() * w);
    for t in tiles.iter() {
        stacked.extend_from_slice(t.as_slice());
    }
    let mut at = 0;
    for t in tiles.iter_mut() {
        for row in t.as_mut_slice().chunks_exact_mut(w.max(1)) {
            let from = perm[at];
            row.copy_from_slice(&stacked[from * w..from * w + w]);
            at += 1;
        }
    }
}
