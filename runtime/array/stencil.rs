//! Five-point stencil sweeps on 2-D arrays with halo exchange: each sweep
//! makes every tile anew from the tile and its four neighbours' edges.

use std::sync::Arc;

use super::{DArray, Number, Tile};

impl<T: Number> DArray<T, 2> {
    /// `sweeps` Jacobi-style sweeps: each interior element becomes
    /// `f(centre, [north, south, west, east])` of the previous sweep; the
    /// elements on the array's border keep their values. One task per tile
    /// per sweep, reading its tile and the edge rows and columns of its
    /// neighbours (the halo).
    ///
    /// ```
    /// use dirk::array::{Blocks, DArray};
    ///
    /// // Heat spreading from a hot top edge.
    /// let plate = DArray::from_fn(Blocks([4, 4]), [8, 8], |[r, _]: [usize; 2]| if r == 0 { 1.0 } else { 0.0 });
    /// let warm = plate.stencil(50, |_, [n, s, w, e]| 0.25 * (n + s + w + e));
    /// let v = warm.collect_vec()?;
    /// assert!(v[8 + 4] > v[6 * 8 + 4]); // nearer the hot edge is warmer
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn stencil<F>(&self, sweeps: usize, f: F) -> DArray<T, 2>
    where
        F: Fn(T, [T; 4]) -> T + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let grid = self.grid;
        let [rows, cols] = grid.shape;
        let [tr, tc] = grid.counts;
        let mut current: Vec<_> = self.tiles().to_vec();
        for _ in 0..sweeps {
            let next = (0..grid.count())
                .map(|o| {
                    let [i, j] = grid.index(o);
                    let [r0, c0] = grid.tile_start(o);
                    // The tile itself, then its neighbours that exist.
                    let neighbours = [
                        (i > 0).then(|| [i - 1, j]),
                        (i + 1 < tr).then(|| [i + 1, j]),
                        (j > 0).then(|| [i, j - 1]),
                        (j + 1 < tc).then(|| [i, j + 1]),
                    ];
                    let present = neighbours.map(|n| n.is_some());
                    let mut inputs = vec![current[o].clone()];
                    inputs.extend(neighbours.iter().flatten().map(|&n| current[grid.linear(n)].clone()));
                    let f = f.clone();
                    crate::spawn!(
                        name = "darray stencil",
                        (move |tiles: &[&Tile<T, 2>]| -> Tile<T, 2> {
                            let c = tiles[0];
                            let [h, w] = c.shape();
                            let mut found = tiles[1..].iter();
                            let [north, south, west, east] =
                                present.map(|p| if p { found.next().copied() } else { None });
                            let src = c.as_slice();
                            let at = |r: isize, k: isize| -> T {
                                // (r, k) in this tile's coordinates, one step outside at most.
                                if r < 0 {
                                    let t = north.expect("an interior element has a northern neighbour");
                                    t.as_slice()[(t.shape()[0] - 1) * w + k as usize]
                                } else if r as usize >= h {
                                    south.expect("an interior element has a southern neighbour").as_slice()[k as usize]
                                } else if k < 0 {
                                    let t = west.expect("an interior element has a western neighbour");
                                    t.as_slice()[r as usize * t.shape()[1] + t.shape()[1] - 1]
                                } else if k as usize >= w {
                                    let t = east.expect("an interior element has an eastern neighbour");
                                    t.as_slice()[r as usize * t.shape()[1]]
                                } else {
                                    src[r as usize * w + k as usize]
                                }
                            };
                            let mut out = src.to_vec();
                            for r in 0..h {
                                let gr = r0 + r;
                                if gr == 0 || gr + 1 == rows {
                                    continue;
                                }
                                for k in 0..w {
                                    let gc = c0 + k;
                                    if gc == 0 || gc + 1 == cols {
                                        continue;
                                    }
                                    let (ri, ki) = (r as isize, k as isize);
                                    let around = [at(ri - 1, ki), at(ri + 1, ki), at(ri, ki - 1), at(ri, ki + 1)];
                                    out[r * w + k] = f(src[r * w + k], around);
                                }
                            }
                            Tile::new([h, w], out)
                        })(inputs)
                    )
                })
                .collect();
            current = next;
        }
        DArray::from_tiles(grid, current)
    }
}
