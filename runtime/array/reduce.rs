//! Reductions: one task per tile, then a tree of combining tasks.

use std::sync::Arc;

use super::grid::Grid;
use super::{DArray, Element, Float, Number, Tile, shape_error};
use crate::{Error, Task};

/// How many partial results one combining task of the tree takes.
const ARITY: usize = 8;

/// Independent accumulators per tile: lets the compiler keep several
/// additions in flight (and use SIMD lanes) instead of one serial chain.
const LANES: usize = 8;

/// `op`-folds `xs` after `map`, starting from `identity`, in `LANES`
/// interleaved accumulators.
fn fold<T: Copy, U: Clone>(xs: &[T], map: &impl Fn(T) -> U, op: &impl Fn(U, U) -> U, identity: &U) -> U {
    let mut acc: [U; LANES] = std::array::from_fn(|_| identity.clone());
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            let a = std::mem::replace(&mut acc[k], identity.clone());
            acc[k] = op(a, map(c[k]));
        }
    }
    let mut total = identity.clone();
    for a in acc {
        total = op(total, a);
    }
    for &x in rest {
        total = op(total, map(x));
    }
    total
}

/// Combines `parts` with `op` in a tree of tasks of up to [`ARITY`] inputs.
fn tree<U, R>(mut parts: Vec<Task<U>>, op: Arc<R>, identity: U) -> Task<U>
where
    U: Clone + Send + Sync + 'static,
    R: Fn(U, U) -> U + Send + Sync + 'static,
{
    if parts.is_empty() {
        return crate::spawn(move || identity);
    }
    while parts.len() > 1 {
        parts = parts
            .chunks(ARITY)
            .map(|group| {
                if group.len() == 1 {
                    return group[0].clone();
                }
                let op = op.clone();
                crate::spawn!(
                    name = "darray combine",
                    (move |xs: &[&U]| -> U {
                        let mut it = xs.iter();
                        let first = (*it.next().expect("a group is never empty")).clone();
                        it.fold(first, |acc, x| op(acc, (*x).clone()))
                    })(group.to_vec())
                )
            })
            .collect();
    }
    parts.pop().expect("one part is left")
}

impl<T: Element, const N: usize> DArray<T, N> {
    /// `map` every element, then fold with `op` from `identity` (which
    /// must be `op`'s identity: each tile starts from it). Returns the
    /// task of the result: one task per tile, then a tree.
    pub fn map_reduce_task<U, M, R>(&self, map: M, op: R, identity: U) -> Task<U>
    where
        U: Clone + Send + Sync + 'static,
        M: Fn(T) -> U + Send + Sync + 'static,
        R: Fn(U, U) -> U + Send + Sync + 'static,
    {
        let (map, op) = (Arc::new(map), Arc::new(op));
        let parts = self
            .tiles()
            .iter()
            .map(|t| {
                let (map, op, identity) = (map.clone(), op.clone(), identity.clone());
                crate::spawn!(
                    name = "darray reduce tile",
                    (move |t: &Tile<T, N>| -> U { fold(t.as_slice(), &*map, &*op, &identity) })(t)
                )
            })
            .collect();
        tree(parts, op, identity)
    }

    /// [`map_reduce_task`](DArray::map_reduce_task), waited for.
    pub fn map_reduce<U, M, R>(&self, map: M, op: R, identity: U) -> Result<U, Error>
    where
        U: Clone + Send + Sync + 'static,
        M: Fn(T) -> U + Send + Sync + 'static,
        R: Fn(U, U) -> U + Send + Sync + 'static,
    {
        self.map_reduce_task(map, op, identity).take()
    }

    /// Folds every element with `op` (associative; commutative, as tiles
    /// combine in any grouping). `Error::Shape` for an empty array.
    pub fn reduce<R>(&self, op: R) -> Result<T, Error>
    where
        R: Fn(T, T) -> T + Send + Sync + 'static,
    {
        if self.is_empty() {
            return Err(shape_error(format_args!("reduce: the array of shape {:?} is empty", self.shape())));
        }
        let op = Arc::new(op);
        let parts = self
            .tiles()
            .iter()
            .map(|t| {
                let op = op.clone();
                crate::spawn!(
                    name = "darray reduce tile",
                    (move |t: &Tile<T, N>| -> T {
                        let xs = t.as_slice();
                        xs[1..].iter().fold(xs[0], |a, &b| op(a, b))
                    })(t)
                )
            })
            .collect();
        let first = self.tiles()[0].fetch_ref()?.as_slice()[0];
        tree(parts, op, first).take()
    }

    /// The smallest element (`Error::Shape` when empty).
    pub fn min(&self) -> Result<T, Error> {
        self.reduce(|a, b| if b < a { b } else { a })
    }

    /// The largest element (`Error::Shape` when empty).
    pub fn max(&self) -> Result<T, Error> {
        self.reduce(|a, b| if b > a { b } else { a })
    }
}

impl<T: Number, const N: usize> DArray<T, N> {
    /// The sum of the elements.
    pub fn sum(&self) -> Result<T, Error> {
        self.map_reduce(|x| x, |a, b| a + b, T::ZERO)
    }

    /// The product of the elements.
    pub fn prod(&self) -> Result<T, Error> {
        self.map_reduce(|x| x, |a, b| a * b, T::ONE)
    }
}

impl<T: Float, const N: usize> DArray<T, N> {
    /// The mean of the elements (`Error::Shape` when empty).
    pub fn mean(&self) -> Result<T, Error> {
        if self.is_empty() {
            return Err(shape_error(format_args!("mean: the array of shape {:?} is empty", self.shape())));
        }
        Ok(self.sum()? / T::from_f64(self.len() as f64))
    }
}

impl<T: Number> DArray<T, 2> {
    /// Sums along `axis` (0: down the columns, giving one value per column;
    /// 1: along the rows, one per row): a 1-D array tiled like the axis
    /// that is kept.
    ///
    /// # Panics
    ///
    /// When `axis` is not 0 or 1.
    pub fn sum_axis(&self, axis: usize) -> DArray<T, 1> {
        assert!(axis < 2, "a 2-D array has axes 0 and 1, not {axis}");
        let keep = 1 - axis;
        let grid = Grid::new([self.grid.shape[keep]], [self.grid.blocks[keep]]);
        let tiles = (0..self.grid.counts[keep])
            .map(|j| {
                let column: Vec<_> = (0..self.grid.counts[axis])
                    .map(|i| {
                        let index = if axis == 0 { [i, j] } else { [j, i] };
                        self.tiles()[self.grid.linear(index)].clone()
                    })
                    .collect();
                let len = grid.tile_shape(j)[0];
                crate::spawn!(
                    name = "darray sum_axis",
                    (move |tiles: &[&Tile<T, 2>]| -> Tile<T, 1> {
                        let mut out = vec![T::ZERO; len];
                        for t in tiles {
                            let [rows, cols] = t.shape();
                            for (r, row) in t.as_slice().chunks_exact(cols.max(1)).take(rows).enumerate() {
                                if axis == 0 {
                                    out.iter_mut().zip(row).for_each(|(o, &x)| *o = *o + x);
                                } else {
                                    out[r] = row.iter().fold(out[r], |a, &x| a + x);
                                }
                            }
                        }
                        Tile::new([len], out)
                    })(column)
                )
            })
            .collect();
        DArray::from_tiles(grid, tiles)
    }
}
