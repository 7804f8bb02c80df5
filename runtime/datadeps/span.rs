//! Memory spans: the bytes a place covers, as the hazard tracker compares
//! them.
//!
//! A span is a rectangle of memory: `rows` runs of `row_bytes` bytes, each
//! `stride` bytes after the one before. A variable, a field, an element or
//! a sub-slice is one run; a matrix tile, row or column is several. Two
//! spans *overlap* when some byte lies in both, decided exactly (a row and
//! a column of one matrix overlap in one element; two columns never do).
//!
//! Spans hold addresses only. Computing one never reads memory.

use std::fmt;

/// The memory a place covers.
///
/// ```
/// use dirk::datadeps::Span;
///
/// let row = Span::bytes(0x1000, 32); // row 0 of a 4×4 f64 matrix
/// let col = Span::strided(0x1008, 4, 8, 32); // column 1
/// let other_col = Span::strided(0x1010, 4, 8, 32); // column 2
/// assert!(row.overlaps(&col));
/// assert!(!col.overlaps(&other_col));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    start: usize,
    rows: usize,
    row_bytes: usize,
    stride: usize,
}

impl Span {
    /// The empty span: it overlaps nothing.
    pub const EMPTY: Span = Span { start: 0, rows: 0, row_bytes: 0, stride: 0 };

    /// `len` bytes from `start`.
    pub fn bytes(start: usize, len: usize) -> Span {
        if len == 0 {
            return Span { start, ..Span::EMPTY };
        }
        Span { start, rows: 1, row_bytes: len, stride: len }
    }

    /// `rows` runs of `row_bytes` bytes, the first at `start`, each
    /// `stride` bytes after the one before.
    pub fn strided(start: usize, rows: usize, row_bytes: usize, stride: usize) -> Span {
        if rows == 0 || row_bytes == 0 {
            return Span { start, ..Span::EMPTY };
        }
        if rows == 1 || stride == row_bytes {
            return Span::bytes(start, rows.saturating_mul(row_bytes));
        }
        Span { start, rows, row_bytes, stride }
    }

    /// The bytes of the value `ptr` points to (its size, not what it owns).
    pub fn of<T>(ptr: *const T) -> Span {
        Span::bytes(ptr as usize, size_of::<T>())
    }

    /// The bytes of the slice `ptr` points to.
    pub fn of_slice<T>(ptr: *const [T]) -> Span {
        Span::bytes(ptr.cast::<T>() as usize, ptr.len().saturating_mul(size_of::<T>()))
    }

    /// Whether the span covers no byte.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The first byte.
    pub fn start(&self) -> usize {
        self.start
    }

    /// One past the last byte (of the bounding interval).
    pub fn end(&self) -> usize {
        if self.is_empty() {
            return self.start;
        }
        self.start + (self.rows - 1) * self.stride + self.row_bytes
    }

    fn is_run(&self) -> bool {
        self.rows == 1
    }

    /// The length of a span of one run of bytes; `None` for an empty or
    /// strided span.
    pub(crate) fn run_len(&self) -> Option<usize> {
        self.is_run().then_some(self.row_bytes)
    }

    /// Whether some byte lies in both spans.
    pub fn overlaps(&self, other: &Span) -> bool {
        if self.is_empty() || other.is_empty() {
            return false;
        }
        if self.start >= other.end() || other.start >= self.end() {
            return false;
        }
        match (self.is_run(), other.is_run()) {
            (true, true) => true,
            (false, true) => self.rows_meet_run(other.start, other.end()),
            (true, false) => other.rows_meet_run(self.start, self.end()),
            (false, false) if self.stride == other.stride => self.rows_meet_rows(other),
            (false, false) => {
                let (few, many) = if self.rows <= other.rows { (self, other) } else { (other, self) };
                (0..few.rows).any(|k| {
                    let s = few.start + k * few.stride;
                    many.rows_meet_run(s, s + few.row_bytes)
                })
            }
        }
    }

    /// Whether one of this span's rows meets the run `[lo, hi)`.
    fn rows_meet_run(&self, lo: usize, hi: usize) -> bool {
        // Row k is [start + k·stride, start + k·stride + row_bytes); it meets
        // [lo, hi) iff k·stride < hi - start and k·stride > lo - start - row_bytes.
        let (start, stride, len) = (self.start as i128, self.stride as i128, self.row_bytes as i128);
        let (lo, hi) = (lo as i128, hi as i128);
        let k_max = (hi - start - 1).div_euclid(stride);
        let k_min = (lo - start - len).div_euclid(stride) + 1;
        let (k_min, k_max) = (k_min.max(0), k_max.min(self.rows as i128 - 1));
        k_min <= k_max
    }

    /// Whether two spans with the same stride share a byte.
    fn rows_meet_rows(&self, other: &Span) -> bool {
        // Row j of self and row k of other differ in start by t·S + c, where
        // d = other.start - self.start = q·S + c and t = q + k - j. They meet
        // iff -other.row_bytes < t·S + c < self.row_bytes.
        let s = self.stride as i128;
        let d = other.start as i128 - self.start as i128;
        let (q, c) = (d.div_euclid(s), d.rem_euclid(s));
        let (ra, rb) = (self.row_bytes as i128, other.row_bytes as i128);
        let t_lo = (-rb - c).div_euclid(s) + 1;
        let t_hi = (ra - c - 1).div_euclid(s);
        let reach_lo = q - (self.rows as i128 - 1);
        let reach_hi = q + (other.rows as i128 - 1);
        t_lo.max(reach_lo) <= t_hi.min(reach_hi)
    }

    /// Whether every byte of `other` lies in this span. May answer `false`
    /// for a covered span of a different stride (callers only lose an
    /// optimisation).
    pub fn contains(&self, other: &Span) -> bool {
        if other.is_empty() {
            return true;
        }
        if self.is_empty() || other.start < self.start || other.end() > self.end() {
            return false;
        }
        if self.is_run() {
            return true;
        }
        let d = other.start - self.start;
        let (q, c) = (d / self.stride, d % self.stride);
        if other.is_run() {
            return c + other.row_bytes <= self.row_bytes;
        }
        other.stride == self.stride && c + other.row_bytes <= self.row_bytes && q + other.rows <= self.rows
    }
}

/// The bounding interval of a span's bytes: how paths keep the headers
/// read on the way to a place (a pointer, a `Vec`'s pointer and length are
/// one run of bytes each; a strided header would only be taken as covering
/// more than it does, which orders more, never less).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Extent {
    start: usize,
    end: usize,
}

impl Extent {
    pub(crate) fn of(span: &Span) -> Extent {
        Extent { start: span.start(), end: span.end() }
    }

    pub(crate) fn start(self) -> usize {
        self.start
    }

    pub(crate) fn end(self) -> usize {
        self.end
    }

    /// The bytes of the interval as a span.
    pub(crate) fn span(self) -> Span {
        Span::bytes(self.start, self.end - self.start)
    }
}

impl fmt::Debug for Extent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Extent({:#x}..{:#x})", self.start, self.end)
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            write!(f, "Span(empty)")
        } else if self.is_run() {
            write!(f, "Span({:#x}..{:#x})", self.start, self.end())
        } else {
            write!(f, "Span({:#x}: {} rows of {} every {})", self.start, self.rows, self.row_bytes, self.stride)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of a span, for checking the arithmetic by brute force.
    fn bytes(s: &Span) -> Vec<usize> {
        (0..s.rows).flat_map(|k| (0..s.row_bytes).map(move |b| s.start + k * s.stride + b)).collect()
    }

    fn brute_overlap(a: &Span, b: &Span) -> bool {
        let bb = bytes(b);
        bytes(a).iter().any(|x| bb.contains(x))
    }

    fn brute_contains(a: &Span, b: &Span) -> bool {
        let ab = bytes(a);
        bytes(b).iter().all(|x| ab.contains(x))
    }

    fn all_small_spans() -> Vec<Span> {
        let mut out = vec![Span::EMPTY];
        for start in 0..12 {
            for rows in 1..4 {
                for row_bytes in 1..5 {
                    for stride in [row_bytes, 4, 5, 7] {
                        if stride >= row_bytes {
                            out.push(Span::strided(start, rows, row_bytes, stride));
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn overlap_matches_brute_force() {
        let spans = all_small_spans();
        for a in &spans {
            for b in &spans {
                assert_eq!(a.overlaps(b), brute_overlap(a, b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn contains_never_claims_too_much() {
        let spans = all_small_spans();
        for a in &spans {
            for b in &spans {
                if a.contains(b) {
                    assert!(brute_contains(a, b), "{a:?} does not contain {b:?}");
                }
            }
        }
        let whole = Span::bytes(0, 64);
        let tile = Span::strided(8, 2, 8, 32);
        assert!(whole.contains(&tile));
        assert!(Span::strided(0, 4, 16, 32).contains(&tile));
    }

    #[test]
    fn rows_and_columns_of_a_matrix_meet_exactly_once() {
        // 4×4 matrix of 8-byte elements at 0x100.
        let row = |i: usize| Span::bytes(0x100 + i * 32, 32);
        let col = |j: usize| Span::strided(0x100 + j * 8, 4, 8, 32);
        for i in 0..4 {
            for j in 0..4 {
                assert!(row(i).overlaps(&col(j)));
                assert_eq!(row(i).overlaps(&row(j)), i == j);
                assert_eq!(col(i).overlaps(&col(j)), i == j);
            }
        }
    }

    #[test]
    fn empty_spans_overlap_nothing() {
        assert!(!Span::bytes(5, 0).overlaps(&Span::bytes(0, 10)));
        assert!(Span::bytes(5, 0).is_empty());
    }
}
