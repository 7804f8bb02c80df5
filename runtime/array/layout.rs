//! Layout: re-tiling is the primitive. Each new tile is made by one task
//! that reads only the tiles overlapping it and copies the overlap: no
//! intermediate copies, so a re-tiling needs at most the memory of its
//! output on top of its input (what Dask's users fight for in `rechunk`).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use super::grid::{self, Grid};
use super::{Blocks, DArray, Element, Tile, shape_error};
use crate::{Error, Task};

/// A source of an assembled array: `array`'s element `x` lands at `x + shift`.
struct Source<'a, T, const N: usize> {
    array: &'a DArray<T, N>,
    shift: [isize; N],
}

/// One copy of a re-tiling: from input number `k` (of shape `src_shape`),
/// `extent` elements from `from` in it to `to` in the new tile.
struct Piece<const N: usize> {
    k: usize,
    src_shape: [usize; N],
    from: [usize; N],
    to: [usize; N],
    extent: [usize; N],
}

/// An array of `grid` whose elements come from `sources` (which together
/// cover it).
fn assemble<T: Element, const N: usize>(
    name: &'static str,
    grid: Grid<N>,
    sources: &[Source<'_, T, N>],
) -> DArray<T, N> {
    let tiles = (0..grid.count())
        .map(|o| {
            let out = grid.ranges(o);
            let mut inputs: Vec<Task<Tile<T, N>>> = Vec::new();
            let mut pieces: Vec<Piece<N>> = Vec::new();
            for s in sources {
                let sg = &s.array.grid;
                // The output tile's block in the source's coordinates.
                let mut want: [Range<usize>; N] = std::array::from_fn(|_| 0..0);
                let mut empty = false;
                for d in 0..N {
                    let lo = (out[d].start as isize - s.shift[d]).max(0) as usize;
                    let hi = (out[d].end as isize - s.shift[d]).clamp(0, sg.shape[d] as isize) as usize;
                    empty |= lo >= hi;
                    want[d] = lo..hi;
                }
                if empty {
                    continue;
                }
                for (i, part) in sg.overlapping(&want) {
                    let tile_start = sg.tile_start(i);
                    pieces.push(Piece {
                        k: inputs.len(),
                        src_shape: sg.tile_shape(i),
                        from: std::array::from_fn(|d| part[d].start - tile_start[d]),
                        // Inside the new tile: the part lands at `start + shift`.
                        to: std::array::from_fn(|d| (part[d].start as isize + s.shift[d]) as usize - out[d].start),
                        extent: part.clone().map(|r| r.len()),
                    });
                    inputs.push(s.array.tiles()[i].clone());
                }
            }
            let shape = grid.tile_shape(o);
            crate::spawn!(
                name = name,
                (move |tiles: &[&Tile<T, N>]| -> Tile<T, N> {
                    let mut out = vec![T::default(); shape.iter().product()];
                    for p in &pieces {
                        grid::copy_block(tiles[p.k].as_slice(), p.src_shape, p.from, &mut out, shape, p.to, p.extent);
                    }
                    Tile::new(shape, out)
                })(inputs)
            )
        })
        .collect();
    DArray::from_tiles(grid, tiles)
}

impl<T: Element, const N: usize> DArray<T, N> {
    /// The same array in tiles of `blocks`. Each new tile is one task that
    /// reads the old tiles overlapping it.
    pub fn rechunk(&self, blocks: Blocks<N>) -> DArray<T, N> {
        let grid = Grid::new(self.grid.shape, blocks.0);
        if grid.blocks == self.grid.blocks {
            return self.clone();
        }
        assemble("darray rechunk", grid, &[Source { array: self, shift: [0; N] }])
    }

    /// The elements in `ranges` (one per axis), tiled like this array.
    ///
    /// `Error::Shape` when a range reaches past the array's shape.
    pub fn slice(&self, ranges: [Range<usize>; N]) -> Result<DArray<T, N>, Error> {
        for d in 0..N {
            if ranges[d].start > ranges[d].end || ranges[d].end > self.grid.shape[d] {
                return Err(shape_error(format_args!(
                    "slice: ranges {ranges:?} do not fit in an array of shape {:?}",
                    self.grid.shape
                )));
            }
        }
        let shape = ranges.clone().map(|r| r.len());
        let shift = ranges.map(|r| -(r.start as isize));
        Ok(assemble("darray slice", Grid::new(shape, self.grid.blocks), &[Source { array: self, shift }]))
    }

    /// Joins `arrays` along `axis`, tiled like the first. Their shapes must
    /// agree on every other axis (`Error::Shape` names them otherwise).
    pub fn concat(axis: usize, arrays: &[DArray<T, N>]) -> Result<DArray<T, N>, Error> {
        let Some(first) = arrays.first() else {
            return Err(shape_error("concat: no arrays to join"));
        };
        if axis >= N {
            return Err(shape_error(format_args!("concat: axis {axis} of a {N}-D array")));
        }
        let mut shape = first.grid.shape;
        shape[axis] = 0;
        let mut sources = Vec::with_capacity(arrays.len());
        for a in arrays {
            let s = a.grid.shape;
            if (0..N).any(|d| d != axis && s[d] != shape[d]) {
                return Err(shape_error(format_args!(
                    "concat along axis {axis}: shapes {:?} and {s:?} differ on another axis",
                    first.grid.shape
                )));
            }
            let mut shift = [0; N];
            shift[axis] = shape[axis] as isize;
            sources.push(Source { array: a, shift });
            shape[axis] += s[axis];
        }
        Ok(assemble("darray concat", Grid::new(shape, first.grid.blocks), &sources))
    }

    /// The same elements, in row-major order, in an array of `shape`
    /// (of any rank). The new tiles hold about as many elements as the old.
    ///
    /// `Error::Shape` when `shape` holds a different number of elements.
    pub fn reshape<const M: usize>(&self, shape: [usize; M]) -> Result<DArray<T, M>, Error> {
        let want: usize = shape.iter().product();
        if want != self.len() {
            return Err(shape_error(format_args!(
                "reshape: an array of shape {:?} ({} elements) into shape {shape:?} ({want} elements)",
                self.grid.shape,
                self.len()
            )));
        }
        let per_tile: usize = self.grid.blocks.iter().product();
        let mut blocks = [1; M];
        let mut budget = per_tile.max(1);
        for d in (0..M).rev() {
            blocks[d] = shape[d].clamp(1, budget);
            budget = (budget / blocks[d]).max(1);
        }
        Ok(self.reshape_blocks(shape, Blocks(blocks)))
    }

    /// [`reshape`](DArray::reshape) into tiles of `blocks`; the element
    /// counts must agree (checked by `reshape`).
    fn reshape_blocks<const M: usize>(&self, shape: [usize; M], blocks: Blocks<M>) -> DArray<T, M> {
        let grid = Grid::new(shape, blocks.0);
        let (ig, is) = (self.grid, self.grid.shape);
        let tiles = (0..grid.count())
            .map(|o| {
                let mut slot_of: HashMap<usize, usize> = HashMap::new();
                let mut inputs = Vec::new();
                // (input slot, offset in it, offset in the new tile, length)
                let mut runs: Vec<(usize, usize, usize, usize)> = Vec::new();
                let mut dst = 0;
                grid::for_each_row(shape, grid.tile_start(o), grid.tile_shape(o), |flat, len| {
                    let (mut f, end) = (flat, flat + len);
                    while f < end {
                        let idx = unravel(f, is);
                        let last = N - 1;
                        let tile_index: [usize; N] = std::array::from_fn(|d| idx[d] / ig.blocks[d]);
                        let ti = ig.linear(tile_index);
                        let (tstart, tshape) = (ig.tile_start(ti), ig.tile_shape(ti));
                        let run = (end - f).min(tstart[last] + tshape[last] - idx[last]);
                        let local: [usize; N] = std::array::from_fn(|d| idx[d] - tstart[d]);
                        let src = (0..N).map(|d| local[d] * grid::strides(tshape)[d]).sum();
                        let slot = *slot_of.entry(ti).or_insert_with(|| {
                            inputs.push(self.tiles()[ti].clone());
                            inputs.len() - 1
                        });
                        runs.push((slot, src, dst, run));
                        f += run;
                        dst += run;
                    }
                });
                let tshape = grid.tile_shape(o);
                crate::spawn!(
                    name = "darray reshape",
                    (move |tiles: &[&Tile<T, N>]| -> Tile<T, M> {
                        let mut out = vec![T::default(); tshape.iter().product()];
                        for &(k, src, dst, len) in &runs {
                            out[dst..dst + len].copy_from_slice(&tiles[k].as_slice()[src..src + len]);
                        }
                        Tile::new(tshape, out)
                    })(inputs)
                )
            })
            .collect();
        DArray::from_tiles(grid, tiles)
    }
}

/// The index of the element at row-major position `flat` in `shape`.
fn unravel<const N: usize>(mut flat: usize, shape: [usize; N]) -> [usize; N] {
    let mut out = [0; N];
    for d in (0..N).rev() {
        out[d] = flat % shape[d];
        flat /= shape[d];
    }
    out
}

impl<T: Element> DArray<T, 2> {
    /// The transposed array (rows become columns), its tiles the
    /// transposed tiles.
    pub fn transpose(&self) -> DArray<T, 2> {
        let [r, c] = self.grid.shape;
        let [br, bc] = self.grid.blocks;
        let grid = Grid::new([c, r], [bc, br]);
        let tiles = (0..grid.count())
            .map(|o| {
                let [j, i] = grid.index(o);
                let t = self.tiles()[self.grid.linear([i, j])].clone();
                crate::spawn!(name = "darray transpose", (|t: &Tile<T, 2>| -> Tile<T, 2> { transposed(t) })(t))
            })
            .collect();
        let mut t = DArray::from_tiles(grid, tiles);
        t.transpose_of = Some(Arc::new(self.tiles().clone()));
        t
    }
}

/// A tile with its rows as columns.
pub(super) fn transposed<T: Element>(t: &Tile<T, 2>) -> Tile<T, 2> {
    let [rows, cols] = t.shape();
    let mut out = vec![T::default(); rows * cols];
    for (r, row) in t.as_slice().chunks_exact(cols.max(1)).take(rows).enumerate() {
        for (c, &x) in row.iter().enumerate() {
            out[c * rows + r] = x;
        }
    }
    Tile::new([cols, rows], out)
}
