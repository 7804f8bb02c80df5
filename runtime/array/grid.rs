//! The grid of tiles over an array's shape, and walks over row-major
//! blocks of elements.

use std::ops::Range;

/// How an array of `shape` is cut into tiles of `blocks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Grid<const N: usize> {
    pub(crate) shape: [usize; N],
    pub(crate) blocks: [usize; N],
    /// Tiles along each axis.
    pub(crate) counts: [usize; N],
}

impl<const N: usize> Grid<N> {
    /// A zero block along an axis of non-zero length is taken as 1; a block
    /// larger than the axis as the axis.
    pub(crate) fn new(shape: [usize; N], blocks: [usize; N]) -> Grid<N> {
        let mut b = blocks;
        let mut counts = [0; N];
        for d in 0..N {
            b[d] = b[d].clamp(1, shape[d].max(1));
            counts[d] = shape[d].div_ceil(b[d]);
        }
        Grid { shape, blocks: b, counts }
    }

    /// The number of tiles.
    pub(crate) fn count(&self) -> usize {
        self.counts.iter().product()
    }

    /// The grid position of tile `i` (row-major).
    pub(crate) fn index(&self, mut i: usize) -> [usize; N] {
        let mut out = [0; N];
        for d in (0..N).rev() {
            out[d] = i % self.counts[d];
            i /= self.counts[d];
        }
        out
    }

    /// Tile `index`'s number (row-major).
    pub(crate) fn linear(&self, index: [usize; N]) -> usize {
        (0..N).fold(0, |acc, d| acc * self.counts[d] + index[d])
    }

    /// The element ranges tile `i` covers along each axis.
    pub(crate) fn ranges(&self, i: usize) -> [Range<usize>; N] {
        let index = self.index(i);
        std::array::from_fn(|d| {
            let lo = index[d] * self.blocks[d];
            lo..(lo + self.blocks[d]).min(self.shape[d])
        })
    }

    /// The index of tile `i`'s first element.
    pub(crate) fn tile_start(&self, i: usize) -> [usize; N] {
        self.ranges(i).map(|r| r.start)
    }

    /// The shape of tile `i`.
    pub(crate) fn tile_shape(&self, i: usize) -> [usize; N] {
        self.ranges(i).map(|r| r.len())
    }

    /// The tiles overlapping the element ranges `want`, with the part of
    /// `want` each covers.
    pub(crate) fn overlapping(&self, want: &[Range<usize>; N]) -> Vec<(usize, [Range<usize>; N])> {
        let first: [usize; N] = std::array::from_fn(|d| want[d].start / self.blocks[d]);
        let span: [usize; N] =
            std::array::from_fn(
                |d| {
                    if want[d].is_empty() { 0 } else { (want[d].end - 1) / self.blocks[d] + 1 - first[d] }
                },
            );
        let mut out = Vec::new();
        for_each_index(span, |k| {
            let index: [usize; N] = std::array::from_fn(|d| first[d] + k[d]);
            let i = self.linear(index);
            let have = self.ranges(i);
            let part = std::array::from_fn(|d| have[d].start.max(want[d].start)..have[d].end.min(want[d].end));
            out.push((i, part));
        });
        out
    }
}

/// Calls `f` with every index of an array of `shape`, row-major.
pub(crate) fn for_each_index<const N: usize>(shape: [usize; N], mut f: impl FnMut([usize; N])) {
    if shape.contains(&0) {
        return;
    }
    let mut index = [0; N];
    loop {
        f(index);
        let mut d = N;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
}

/// Row-major strides of `shape`.
pub(crate) fn strides<const N: usize>(shape: [usize; N]) -> [usize; N] {
    let mut s = [1; N];
    for d in (0..N.saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// Calls `f(offset, len)` for each contiguous run (a row along the last
/// axis) of the block `extent` starting at `start` inside a row-major array
/// of `shape`, in row-major order.
pub(crate) fn for_each_row<const N: usize>(
    shape: [usize; N],
    start: [usize; N],
    extent: [usize; N],
    mut f: impl FnMut(usize, usize),
) {
    if N == 0 {
        f(0, 1);
        return;
    }
    let strides = strides(shape);
    let mut rows = extent;
    rows[N - 1] = 1;
    let len = extent[N - 1];
    if len == 0 {
        return;
    }
    for_each_index(rows, |r| {
        let offset = (0..N).map(|d| (start[d] + r[d]) * strides[d]).sum();
        f(offset, len);
    });
}

/// Copies a block of `extent` elements from `src` (a row-major tile of
/// `src_shape`, the block starting at `from` in it) into `dst` (of
/// `dst_shape`, starting at `to`).
pub(crate) fn copy_block<T: Copy, const N: usize>(
    src: &[T],
    src_shape: [usize; N],
    from: [usize; N],
    dst: &mut [T],
    dst_shape: [usize; N],
    to: [usize; N],
    extent: [usize; N],
) {
    let mut runs = Vec::new();
    for_each_row(src_shape, from, extent, |o, _| runs.push(o));
    let mut k = 0;
    for_each_row(dst_shape, to, extent, |o, len| {
        let so = runs[k];
        dst[o..o + len].copy_from_slice(&src[so..so + len]);
        k += 1;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uneven_edges_are_smaller_tiles() {
        let g = Grid::new([10, 7], [4, 3]);
        assert_eq!(g.counts, [3, 3]);
        assert_eq!(g.tile_shape(g.linear([2, 2])), [2, 1]);
        assert_eq!(g.ranges(g.linear([1, 2])), [4..8, 6..7]);
        assert_eq!(g.index(5), [1, 2]);
    }

    #[test]
    fn overlapping_tiles_cover_the_wanted_block_once() {
        let g = Grid::new([10, 10], [4, 4]);
        let parts = g.overlapping(&[3..9, 0..5]);
        let covered: usize = parts.iter().map(|(_, p)| p[0].len() * p[1].len()).sum();
        assert_eq!(covered, 6 * 5);
        assert_eq!(parts.len(), 3 * 2);
    }

    #[test]
    fn rows_of_a_block() {
        let mut rows = Vec::new();
        for_each_row([4, 5], [1, 2], [2, 3], |o, l| rows.push((o, l)));
        assert_eq!(rows, [(7, 3), (12, 3)]);
    }
}
