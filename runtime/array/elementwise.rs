//! Element-wise operations. Operators build an expression over the tiles
//! of their operands; the expression becomes one task per tile, which
//! evaluates it in cache-sized chunks (one pass over memory, however many
//! operators).

use std::ops::{Add, Div, Mul, Range, Sub};
use std::sync::{Arc, OnceLock};

use super::grid::Grid;
use super::{Blocks, Body, DArray, Element, Number, Tile, Tiles, fail_task, shape_error};
use crate::Error;

/// Elements evaluated at a time: a chunk of every leaf and of each
/// intermediate stays in L1.
const CHUNK: usize = 512;

type Unary<T> = Arc<dyn Fn(&mut [T]) + Send + Sync>;
type Binary<T> = Arc<dyn Fn(&mut [T], &[T]) + Send + Sync>;

/// An element-wise expression over leaves (arrays with the same grid).
enum Expr<T> {
    Leaf(usize),
    /// Changes its operand's values in place.
    Map(Unary<T>, Box<Expr<T>>),
    /// `f(left, right)` into the left operand's buffer.
    Zip(Binary<T>, Box<Expr<T>>, Box<Expr<T>>),
}

impl<T: Element> Expr<T> {
    fn shifted(&self, by: usize) -> Expr<T> {
        match self {
            Expr::Leaf(i) => Expr::Leaf(i + by),
            Expr::Map(f, e) => Expr::Map(f.clone(), Box::new(e.shifted(by))),
            Expr::Zip(f, a, b) => Expr::Zip(f.clone(), Box::new(a.shifted(by)), Box::new(b.shifted(by))),
        }
    }

    /// Writes the expression's elements `at` into `out`.
    fn eval(&self, leaves: &[&[T]], at: Range<usize>, out: &mut [T], spare: &mut Vec<Vec<T>>) {
        match self {
            Expr::Leaf(i) => out.copy_from_slice(&leaves[*i][at]),
            Expr::Map(f, e) => {
                e.eval(leaves, at, out, spare);
                f(out);
            }
            Expr::Zip(f, a, b) => {
                a.eval(leaves, at.clone(), out, spare);
                if let Expr::Leaf(i) = **b {
                    f(out, &leaves[i][at]);
                    return;
                }
                let mut tmp = spare.pop().unwrap_or_default();
                tmp.resize(out.len(), T::default());
                b.eval(leaves, at, &mut tmp[..out.len()], spare);
                f(out, &tmp[..out.len()]);
                spare.push(tmp);
            }
        }
    }
}

/// An expression and the tiles of its leaves; its own tiles once made.
pub(super) struct Lazy<T, const N: usize> {
    leaves: Vec<Tiles<T, N>>,
    expr: Arc<Expr<T>>,
    made: OnceLock<Tiles<T, N>>,
}

impl<T: Element, const N: usize> Lazy<T, N> {
    pub(super) fn made(&self) -> Option<&Tiles<T, N>> {
        self.made.get()
    }

    /// The expression's tiles: one task per tile, spawned on first call.
    pub(super) fn tiles(&self, grid: &Grid<N>) -> &Tiles<T, N> {
        self.made.get_or_init(|| {
            (0..grid.count())
                .map(|i| {
                    let inputs: Vec<_> = self.leaves.iter().map(|l| l[i].clone()).collect();
                    let expr = self.expr.clone();
                    let shape = grid.tile_shape(i);
                    crate::spawn!(
                        name = "darray elementwise",
                        (move |tiles: &[&Tile<T, N>]| -> Tile<T, N> {
                            let leaves: Vec<&[T]> = tiles.iter().map(|t| t.as_slice()).collect();
                            let n: usize = shape.iter().product();
                            let mut out = vec![T::default(); n];
                            let mut spare = Vec::new();
                            for (k, chunk) in out.chunks_mut(CHUNK).enumerate() {
                                let lo = k * CHUNK;
                                expr.eval(&leaves, lo..lo + chunk.len(), chunk, &mut spare);
                            }
                            Tile::new(shape, out)
                        })(inputs)
                    )
                })
                .collect()
        })
    }
}

impl<T: Element, const N: usize> DArray<T, N> {
    /// This array as the leaves and expression of a bigger expression: an
    /// expression not yet made into tiles is taken apart (fused), anything
    /// else is one leaf.
    fn into_expr(self) -> (Vec<Tiles<T, N>>, Expr<T>) {
        if let Body::Lazy(l) = &self.body
            && l.made().is_none()
        {
            return (l.leaves.clone(), l.expr.shifted(0));
        }
        (vec![self.tiles().clone()], Expr::Leaf(0))
    }

    fn lazy(grid: Grid<N>, leaves: Vec<Tiles<T, N>>, expr: Expr<T>) -> DArray<T, N> {
        let lazy = Lazy { leaves, expr: Arc::new(expr), made: OnceLock::new() };
        DArray { grid, body: Body::Lazy(Arc::new(lazy)), transpose_of: None }
    }

    /// `other` on this array's grid: itself when the blocks agree, re-tiled
    /// otherwise. `Error::Shape` when the shapes differ.
    pub(super) fn aligned<U: Element>(&self, other: &DArray<U, N>, op: &str) -> Result<DArray<U, N>, Error> {
        if other.grid.shape != self.grid.shape {
            return Err(shape_error(format_args!(
                "{op}: an array of shape {:?} and one of shape {:?}",
                self.grid.shape, other.grid.shape
            )));
        }
        if other.grid.blocks == self.grid.blocks {
            return Ok(other.clone());
        }
        Ok(other.rechunk(Blocks(self.grid.blocks)))
    }

    /// Changes every element in place through `f` (applied to chunks),
    /// fused with the expression this array may be.
    fn apply(self, f: Unary<T>) -> DArray<T, N> {
        let grid = self.grid;
        let (leaves, expr) = self.into_expr();
        Self::lazy(grid, leaves, Expr::Map(f, Box::new(expr)))
    }

    /// `f(self, other)` element by element, fused.
    fn combine(self, other: DArray<T, N>, f: Binary<T>, op: &str) -> DArray<T, N> {
        let grid = self.grid;
        let other = match self.aligned(&other, op) {
            Ok(o) => o,
            Err(e) => return DArray::failed(grid, e),
        };
        let (mut leaves, left) = self.into_expr();
        let (right_leaves, right) = other.into_expr();
        let right = right.shifted(leaves.len());
        leaves.extend(right_leaves);
        Self::lazy(grid, leaves, Expr::Zip(f, Box::new(left), Box::new(right)))
    }

    /// An array of `grid` whose every tile fails with `error` (what an
    /// operator, which cannot return a `Result`, gives for operands that do
    /// not fit).
    pub(super) fn failed(grid: Grid<N>, error: Error) -> DArray<T, N> {
        let tiles = (0..grid.count())
            .map(|_| {
                let e = error.clone();
                crate::spawn!(name = "darray shape check", (move || -> Tile<T, N> { fail_task(e) })())
            })
            .collect();
        DArray::from_tiles(grid, tiles)
    }

    /// `f` applied to every element, one task per tile (Dagger's `map`).
    pub fn map<U, F>(&self, f: F) -> DArray<U, N>
    where
        U: Element,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        self.per_tile("darray map", move |t| Tile::new(t.shape(), t.as_slice().iter().map(|&x| f(x)).collect()))
    }

    /// A new array of this one's grid whose tile `i` is `f` of tile `i`,
    /// one task per tile named `name`.
    fn per_tile<U, F>(&self, name: &'static str, f: F) -> DArray<U, N>
    where
        U: Element,
        F: Fn(&Tile<T, N>) -> Tile<U, N> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let tiles = self
            .tiles()
            .iter()
            .map(|t| {
                let f = f.clone();
                crate::spawn!(name = name, (move |t: &Tile<T, N>| -> Tile<U, N> { f(t) })(t))
            })
            .collect();
        DArray::from_tiles(self.grid, tiles)
    }

    /// `f(a, b)` for the elements of this array and `other` (of the same
    /// shape; re-tiled to this one's blocks when they differ).
    pub fn zip_map<U, V, F>(&self, other: &DArray<U, N>, f: F) -> Result<DArray<V, N>, Error>
    where
        U: Element,
        V: Element,
        F: Fn(T, U) -> V + Send + Sync + 'static,
    {
        let other = self.aligned(other, "zip_map")?;
        let f = Arc::new(f);
        let tiles = self
            .tiles()
            .iter()
            .zip(other.tiles().iter())
            .map(|(a, b)| {
                let f = f.clone();
                crate::spawn!(
                    name = "darray zip_map",
                    (move |a: &Tile<T, N>, b: &Tile<U, N>| -> Tile<V, N> {
                        let data = a.as_slice().iter().zip(b.as_slice()).map(|(&x, &y)| f(x, y)).collect();
                        Tile::new(a.shape(), data)
                    })(a, b)
                )
            })
            .collect();
        Ok(DArray::from_tiles(self.grid, tiles))
    }

    /// `f` applied to every tile, one task each; `f` returns a tile of the
    /// same shape (a different one fails that tile with `Error::Shape`).
    pub fn map_tiles<U, F>(&self, f: F) -> DArray<U, N>
    where
        U: Element,
        F: Fn(&Tile<T, N>) -> Vec<U> + Send + Sync + 'static,
    {
        self.per_tile("darray map_tiles", move |t| {
            let data = f(t);
            if data.len() != t.len() {
                fail_task(shape_error(format_args!(
                    "map_tiles: a tile of shape {:?} ({} elements) became {} elements",
                    t.shape(),
                    t.len(),
                    data.len()
                )));
            }
            Tile::new(t.shape(), data)
        })
    }
}

macro_rules! operator {
    ($trait:ident, $method:ident, $op:tt) => {
        impl<T: Number, const N: usize> $trait<DArray<T, N>> for DArray<T, N> {
            type Output = DArray<T, N>;
            fn $method(self, rhs: DArray<T, N>) -> DArray<T, N> {
                self.combine(
                    rhs,
                    Arc::new(|a: &mut [T], b: &[T]| a.iter_mut().zip(b).for_each(|(x, &y)| *x = *x $op y)),
                    stringify!($method),
                )
            }
        }
        impl<T: Number, const N: usize> $trait<&DArray<T, N>> for DArray<T, N> {
            type Output = DArray<T, N>;
            fn $method(self, rhs: &DArray<T, N>) -> DArray<T, N> {
                self $op rhs.clone()
            }
        }
        impl<T: Number, const N: usize> $trait<DArray<T, N>> for &DArray<T, N> {
            type Output = DArray<T, N>;
            fn $method(self, rhs: DArray<T, N>) -> DArray<T, N> {
                self.clone() $op rhs
            }
        }
        impl<T: Number, const N: usize> $trait<&DArray<T, N>> for &DArray<T, N> {
            type Output = DArray<T, N>;
            fn $method(self, rhs: &DArray<T, N>) -> DArray<T, N> {
                self.clone() $op rhs.clone()
            }
        }
        impl<T: Number, const N: usize> $trait<T> for DArray<T, N> {
            type Output = DArray<T, N>;
            fn $method(self, s: T) -> DArray<T, N> {
                self.apply(Arc::new(move |a: &mut [T]| a.iter_mut().for_each(|x| *x = *x $op s)))
            }
        }
        impl<T: Number, const N: usize> $trait<T> for &DArray<T, N> {
            type Output = DArray<T, N>;
            fn $method(self, s: T) -> DArray<T, N> {
                self.clone() $op s
            }
        }
    };
}

operator!(Add, add, +);
operator!(Sub, sub, -);
operator!(Mul, mul, *);
operator!(Div, div, /);

/// `scalar op array` for each number type (a scalar on the left).
macro_rules! scalar_left {
    ($($t:ty),*) => {$(
        scalar_left!(@one $t, Add, add, +);
        scalar_left!(@one $t, Sub, sub, -);
        scalar_left!(@one $t, Mul, mul, *);
        scalar_left!(@one $t, Div, div, /);
    )*};
    (@one $t:ty, $trait:ident, $method:ident, $op:tt) => {
        impl<const N: usize> $trait<DArray<$t, N>> for $t {
            type Output = DArray<$t, N>;
            #[allow(clippy::assign_op_pattern, reason = "the scalar is the left operand, which matters for - and /")]
            fn $method(self, a: DArray<$t, N>) -> DArray<$t, N> {
                a.apply(Arc::new(move |xs: &mut [$t]| xs.iter_mut().for_each(|x| *x = self $op *x)))
            }
        }
        impl<const N: usize> $trait<&DArray<$t, N>> for $t {
            type Output = DArray<$t, N>;
            fn $method(self, a: &DArray<$t, N>) -> DArray<$t, N> {
                self $op a.clone()
            }
        }
    };
}

scalar_left!(f32, f64, i32, i64, u32, u64, usize);
