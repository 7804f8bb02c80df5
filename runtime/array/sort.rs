//! Sample sort of 1-D arrays: sort each tile, pick splitters from a sample
//! of every tile, gather each bucket from every tile and merge its sorted
//! runs, then cut the buckets back into the array's blocks.

use std::cmp::Ordering;
use std::sync::Arc;

use super::{DArray, Element, Tile};

/// Samples taken from each sorted tile to choose the splitters.
const SAMPLES: usize = 64;

impl<T: Element> DArray<T, 1> {
    /// The elements in ascending order (incomparable values, such as NaN,
    /// count as equal to everything), tiled like this array.
    pub fn sort(&self) -> DArray<T, 1> {
        self.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal))
    }

    /// The elements ordered by `cmp` (stable: equal elements keep their
    /// order), tiled like this array. A sample sort: one task sorts each
    /// tile, one picks splitters, one per bucket merges its part of every
    /// tile, one per output tile copies its range out of the buckets.
    pub fn sort_by<F>(&self, cmp: F) -> DArray<T, 1>
    where
        F: Fn(&T, &T) -> Ordering + Send + Sync + 'static,
    {
        let cmp = Arc::new(cmp);
        let p = self.grid.count();
        let sorted: Vec<_> = self
            .tiles()
            .iter()
            .map(|t| {
                let cmp = cmp.clone();
                crate::spawn!(
                    name = "darray sort tile",
                    (move |t: Tile<T, 1>| -> Vec<T> {
                        let mut v = t.into_vec();
                        v.sort_by(|a, b| cmp(a, b));
                        v
                    })(t)
                )
            })
            .collect();
        let c = cmp.clone();
        let splitters = crate::spawn!(
            name = "darray sort splitters",
            (move |runs: &[&Vec<T>]| -> Vec<T> {
                let mut sample: Vec<T> = Vec::with_capacity(runs.len() * SAMPLES);
                for run in runs.iter().filter(|r| !r.is_empty()) {
                    let step = run.len().div_ceil(SAMPLES).max(1);
                    sample.extend(run.iter().step_by(step).copied());
                }
                sample.sort_by(|a, b| c(a, b));
                (1..p).filter_map(|j| sample.get(j * sample.len() / p).copied()).collect()
            })(sorted.clone())
        );
        let buckets: Vec<_> = (0..p)
            .map(|j| {
                let cmp = cmp.clone();
                crate::spawn!(
                    name = "darray sort bucket",
                    (move |splitters: &Vec<T>, runs: &[&Vec<T>]| -> Vec<T> {
                        let mut out = Vec::new();
                        for run in runs {
                            // Elements at or above splitter j - 1 and below splitter j.
                            let lo = if j == 0 {
                                0
                            } else {
                                splitters
                                    .get(j - 1)
                                    .map_or(run.len(), |s| run.partition_point(|x| cmp(x, s) == Ordering::Less))
                            };
                            let hi = splitters
                                .get(j)
                                .map_or(run.len(), |s| run.partition_point(|x| cmp(x, s) == Ordering::Less));
                            out.extend_from_slice(&run[lo..hi.max(lo)]);
                        }
                        // Sorted runs, one after another: the stable sort merges them.
                        out.sort_by(|a, b| cmp(a, b));
                        out
                    })(&splitters, sorted.clone())
                )
            })
            .collect();
        let grid = self.grid;
        let tiles = (0..p)
            .map(|o| {
                let range = grid.ranges(o)[0].clone();
                crate::spawn!(
                    name = "darray sort gather",
                    (move |buckets: &[&Vec<T>]| -> Tile<T, 1> {
                        let mut out = Vec::with_capacity(range.len());
                        let mut at = 0;
                        for b in buckets {
                            let (lo, hi) = (range.start.max(at), range.end.min(at + b.len()));
                            if lo < hi {
                                out.extend_from_slice(&b[lo - at..hi - at]);
                            }
                            at += b.len();
                        }
                        Tile::new([range.len()], out)
                    })(buckets.clone())
                )
            })
            .collect();
        DArray::from_tiles(grid, tiles)
    }
}
