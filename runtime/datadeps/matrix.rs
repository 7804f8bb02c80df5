//! A dense row-major matrix whose tiles, rows and columns are datadeps
//! places: `InOut(a[(0..64, 64..128)])` hands a task a [`MatMut`] view of
//! that tile, and tasks on disjoint tiles run in parallel.
//!
//! A tile is not a Rust slice (its rows are `cols` elements apart), so
//! tasks receive views: [`MatRef`] for `In`, [`MatMut`] for `Out`/`InOut`.
//! A view borrows its tile for the task's call, like a slice would.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Index, IndexMut, Range, RangeFrom, RangeFull, RangeInclusive, RangeTo, RangeToInclusive};

use super::project::{Place, Project, ProjectMut, Reads};
use super::span::Span;

/// A dense `rows × cols` matrix stored row by row.
///
/// In a `datadeps!` place, `m[(i, j)]` is an element, `m[i]` a row (a
/// slice), and `m[(rows, cols)]` with at least one range a tile view.
///
/// ```
/// use dirk::prelude::*;
/// use dirk::datadeps::{MatMut, Matrix};
///
/// fn scale(mut tile: MatMut<'_, f64>, by: f64) {
///     for i in 0..tile.rows() {
///         tile.row_mut(i).iter_mut().for_each(|x| *x *= by);
///     }
/// }
///
/// let mut m = Matrix::from_fn(4, 4, |i, j| (i * 4 + j) as f64);
/// datadeps! {
///     scale(InOut(m[(0..2, 0..2)]), 10.0);
///     scale(InOut(m[(2..4, 2..4)]), -1.0); // disjoint: may run at the same time
/// }?;
/// assert_eq!(m[(1, 1)], 50.0);
/// assert_eq!(m[(3, 3)], -15.0);
/// assert_eq!(m[(0, 3)], 3.0);
/// # Ok::<(), dirk::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct Matrix<T> {
    data: Vec<T>,
    rows: usize,
    cols: usize,
}

impl<T> Matrix<T> {
    /// A matrix whose element `(i, j)` is `f(i, j)`.
    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> T) -> Self {
        let data = (0..rows * cols).map(|k| f(k / cols.max(1), k % cols.max(1))).collect();
        Matrix { data, rows, cols }
    }

    /// A matrix with every element `value`.
    pub fn filled(rows: usize, cols: usize, value: T) -> Self
    where
        T: Clone,
    {
        Matrix { data: vec![value; rows * cols], rows, cols }
    }

    /// The matrix whose rows are the consecutive runs of `cols` elements of
    /// `data`, or `None` when `data` does not hold `rows × cols` elements.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<T>) -> Option<Self> {
        (rows.checked_mul(cols) == Some(data.len())).then_some(Matrix { data, rows, cols })
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The elements, row after row.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    /// The elements, row after row.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// The elements, row after row.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[T] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Row `i`.
    pub fn row_mut(&mut self, i: usize) -> &mut [T] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// A view of the whole matrix.
    pub fn view(&self) -> MatRef<'_, T> {
        MatRef { ptr: self.data.as_ptr(), rows: self.rows, cols: self.cols, stride: self.cols, life: PhantomData }
    }

    /// A mutable view of the whole matrix.
    pub fn view_mut(&mut self) -> MatMut<'_, T> {
        MatMut { ptr: self.data.as_mut_ptr(), rows: self.rows, cols: self.cols, stride: self.cols, life: PhantomData }
    }
}

impl<T> Index<(usize, usize)> for Matrix<T> {
    type Output = T;

    fn index(&self, (i, j): (usize, usize)) -> &T {
        assert!(
            i < self.rows && j < self.cols,
            "index ({i}, {j}) out of range for a {}×{} matrix",
            self.rows,
            self.cols
        );
        &self.data[i * self.cols + j]
    }
}

impl<T> IndexMut<(usize, usize)> for Matrix<T> {
    fn index_mut(&mut self, (i, j): (usize, usize)) -> &mut T {
        assert!(
            i < self.rows && j < self.cols,
            "index ({i}, {j}) out of range for a {}×{} matrix",
            self.rows,
            self.cols
        );
        &mut self.data[i * self.cols + j]
    }
}

impl<T: fmt::Debug> fmt::Debug for Matrix<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.view().fmt(f)
    }
}

/// A tile (or row, or column) of a [`Matrix`] as the runtime holds it: the
/// address of its first element, its shape and the matrix's row length.
#[derive(Debug)]
pub struct TilePlace<T> {
    ptr: *mut T,
    rows: usize,
    cols: usize,
    stride: usize,
}

impl<T> Clone for TilePlace<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for TilePlace<T> {}

// SAFETY: a view of the tile reaches exactly its `rows` runs of `cols`
// elements, `stride` elements apart.
unsafe impl<T> Place for TilePlace<T> {
    fn span(&self) -> Span {
        let size = size_of::<T>();
        Span::strided(self.ptr as usize, self.rows, self.cols * size, self.stride * size)
    }
}

impl<T> TilePlace<T> {
    /// A shared view of the tile.
    ///
    /// # Safety
    ///
    /// The tile is live and nobody writes it for `'a`.
    pub(crate) unsafe fn view<'a>(self) -> MatRef<'a, T> {
        MatRef { ptr: self.ptr, rows: self.rows, cols: self.cols, stride: self.stride, life: PhantomData }
    }

    /// A mutable view of the tile.
    ///
    /// # Safety
    ///
    /// The tile is live and nobody else touches it for `'a`.
    pub(crate) unsafe fn view_mut<'a>(self) -> MatMut<'a, T> {
        MatMut { ptr: self.ptr, rows: self.rows, cols: self.cols, stride: self.stride, life: PhantomData }
    }
}

/// One index of a matrix axis: a single row/column or a range of them.
pub trait Axis {
    /// The half-open range picked out of `0..len`, or why it is out of range.
    fn bounds(self, len: usize) -> Result<(usize, usize), String>;
}

impl Axis for usize {
    fn bounds(self, len: usize) -> Result<(usize, usize), String> {
        if self < len { Ok((self, self + 1)) } else { Err(format!("index {self} out of range for length {len}")) }
    }
}

fn axis_range(start: usize, end: usize, len: usize) -> Result<(usize, usize), String> {
    if start > end {
        Err(format!("range {start}..{end} starts after it ends"))
    } else if end > len {
        Err(format!("range {start}..{end} out of range for length {len}"))
    } else {
        Ok((start, end))
    }
}

impl Axis for Range<usize> {
    fn bounds(self, len: usize) -> Result<(usize, usize), String> {
        axis_range(self.start, self.end, len)
    }
}

impl Axis for RangeFrom<usize> {
    fn bounds(self, len: usize) -> Result<(usize, usize), String> {
        if self.start > len {
            Err(format!("range {}.. out of range for length {len}", self.start))
        } else {
            Ok((self.start, len))
        }
    }
}

impl Axis for RangeTo<usize> {
    fn bounds(self, len: usize) -> Result<(usize, usize), String> {
        axis_range(0, self.end, len)
    }
}

impl Axis for RangeFull {
    fn bounds(self, len: usize) -> Result<(usize, usize), String> {
        Ok((0, len))
    }
}

impl Axis for RangeInclusive<usize> {
    fn bounds(self, len: usize) -> Result<(usize, usize), String> {
        match self.end().checked_add(1) {
            Some(end) => axis_range(*self.start(), end, len),
            None => Err("range ends at usize::MAX".to_owned()),
        }
    }
}

impl Axis for RangeToInclusive<usize> {
    fn bounds(self, len: usize) -> Result<(usize, usize), String> {
        match self.end.checked_add(1) {
            Some(end) => axis_range(0, end, len),
            None => Err("range ends at usize::MAX".to_owned()),
        }
    }
}

/// Reads a matrix's header and returns its first element and shape.
///
/// # Safety
///
/// `base` points to a live matrix, writable when `reads.writing()`.
unsafe fn header<T>(base: *mut Matrix<T>, reads: &mut Reads<'_>) -> (*mut T, usize, usize) {
    let span = Span::of(base.cast_const());
    if reads.writing() {
        reads.read_exclusive(span);
        // SAFETY: no task holds a reference to the header (`read_exclusive`);
        // `as_mut_ptr` makes no reference to the elements.
        let m = unsafe { &mut *base };
        (m.data.as_mut_ptr(), m.rows, m.cols)
    } else {
        reads.read(span);
        // SAFETY: no task writes the header (`read`); the pointer is only read through.
        let m = unsafe { &*base };
        (m.data.as_ptr().cast_mut(), m.rows, m.cols)
    }
}

// SAFETY: reads only the header (announced); the element lies in the buffer.
unsafe impl<T> Project<(usize, usize)> for Matrix<T> {
    type Output = *mut T;

    unsafe fn project(base: *mut Self, (i, j): (usize, usize), reads: &mut Reads<'_>) -> Result<*mut T, String> {
        // SAFETY: `base` is a live matrix (caller).
        let (first, rows, cols) = unsafe { header(base, reads) };
        if i >= rows || j >= cols {
            return Err(format!("index ({i}, {j}) out of range for a {rows}×{cols} matrix"));
        }
        // SAFETY: (i, j) is inside the rows·cols elements of the buffer.
        Ok(unsafe { first.add(i * cols + j) })
    }
}

// SAFETY: the elements of a writable matrix may be written.
unsafe impl<T> ProjectMut<(usize, usize)> for Matrix<T> {}

// SAFETY: a row is `cols` consecutive elements of the buffer.
unsafe impl<T> Project<usize> for Matrix<T> {
    type Output = *mut [T];

    unsafe fn project(base: *mut Self, i: usize, reads: &mut Reads<'_>) -> Result<*mut [T], String> {
        // SAFETY: `base` is a live matrix (caller).
        let (first, rows, cols) = unsafe { header(base, reads) };
        if i >= rows {
            return Err(format!("row {i} out of range for a {rows}×{cols} matrix"));
        }
        // SAFETY: row i lies inside the buffer.
        Ok(std::ptr::slice_from_raw_parts_mut(unsafe { first.add(i * cols) }, cols))
    }
}

// SAFETY: as above.
unsafe impl<T> ProjectMut<usize> for Matrix<T> {}

/// The tile `rows × cols` of the matrix at `base`.
///
/// # Safety
///
/// `base` points to a live matrix, writable when `reads.writing()`.
unsafe fn tile<T>(
    base: *mut Matrix<T>,
    r: impl Axis,
    c: impl Axis,
    reads: &mut Reads<'_>,
) -> Result<TilePlace<T>, String> {
    // SAFETY: `base` is a live matrix (caller).
    let (first, rows, cols) = unsafe { header(base, reads) };
    let shape = |e: String| format!("{e} (a {rows}×{cols} matrix)");
    let (r0, r1) = r.bounds(rows).map_err(shape)?;
    let (c0, c1) = c.bounds(cols).map_err(shape)?;
    // An empty tile points at the buffer's start, which is always valid.
    let offset = if r0 < r1 && c0 < c1 { r0 * cols + c0 } else { 0 };
    // SAFETY: `offset` is an element inside the buffer, or 0.
    let ptr = unsafe { first.add(offset) };
    Ok(TilePlace { ptr, rows: r1 - r0, cols: c1 - c0, stride: cols })
}

macro_rules! tile_projections {
    ($($r:ty, $c:ty;)*) => {$(
        // SAFETY: reads only the header (announced); the tile lies in the
        // buffer, and tiles of disjoint ranges are disjoint.
        unsafe impl<T> Project<($r, $c)> for Matrix<T> {
            type Output = TilePlace<T>;

            unsafe fn project(base: *mut Self, (r, c): ($r, $c), reads: &mut Reads<'_>) -> Result<TilePlace<T>, String> {
                // SAFETY: `base` is a live matrix (caller).
                unsafe { tile(base, r, c, reads) }
            }
        }

        // SAFETY: the tiles of a writable matrix may be written.
        unsafe impl<T> ProjectMut<($r, $c)> for Matrix<T> {}
    )*};
}

macro_rules! tiles_with_rows {
    ($($r:ty),*) => {
        tile_projections! {$(
            $r, usize; $r, Range<usize>; $r, RangeFrom<usize>; $r, RangeTo<usize>;
            $r, RangeFull; $r, RangeInclusive<usize>; $r, RangeToInclusive<usize>;
        )*}
    };
}

tiles_with_rows!(
    Range<usize>,
    RangeFrom<usize>,
    RangeTo<usize>,
    RangeFull,
    RangeInclusive<usize>,
    RangeToInclusive<usize>
);
tile_projections! {
    usize, Range<usize>; usize, RangeFrom<usize>; usize, RangeTo<usize>;
    usize, RangeFull; usize, RangeInclusive<usize>; usize, RangeToInclusive<usize>;
}

/// The first element and shape of the part `rows × cols` of a view.
fn sub<T>(
    ptr: *mut T,
    nrows: usize,
    ncols: usize,
    stride: usize,
    rows: Range<usize>,
    cols: Range<usize>,
) -> (*mut T, usize, usize) {
    assert!(
        rows.start <= rows.end && rows.end <= nrows && cols.start <= cols.end && cols.end <= ncols,
        "tile {rows:?} × {cols:?} out of range for a {nrows}×{ncols} view"
    );
    let (r, c) = (rows.end - rows.start, cols.end - cols.start);
    if r == 0 || c == 0 {
        return (ptr, r, c);
    }
    // SAFETY: (rows.start, cols.start) is an element of the view.
    (unsafe { ptr.add(rows.start * stride + cols.start) }, r, c)
}

/// A shared view of a tile of a [`Matrix`]: what `In(m[(rows, cols)])` passes.
pub struct MatRef<'a, T> {
    ptr: *const T,
    rows: usize,
    cols: usize,
    stride: usize,
    life: PhantomData<&'a T>,
}

impl<T> Clone for MatRef<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for MatRef<'_, T> {}

// SAFETY: a `MatRef` is a shared borrow of `T`s.
unsafe impl<T: Sync> Send for MatRef<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for MatRef<'_, T> {}

impl<'a, T> MatRef<'a, T> {
    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i` of the tile.
    pub fn row(&self, i: usize) -> &'a [T] {
        assert!(i < self.rows, "row {i} out of range for a tile of {} rows", self.rows);
        // SAFETY: row i is `cols` live elements, shared for 'a.
        unsafe { std::slice::from_raw_parts(self.ptr.add(i * self.stride), self.cols) }
    }

    /// Element `(i, j)`, if inside the tile.
    pub fn get(&self, i: usize, j: usize) -> Option<&'a T> {
        (i < self.rows && j < self.cols).then(|| &self.row(i)[j])
    }

    /// The part `rows × cols` of this view.
    pub fn tile(&self, rows: Range<usize>, cols: Range<usize>) -> MatRef<'a, T> {
        let (ptr, r, c) = sub(self.ptr.cast_mut(), self.rows, self.cols, self.stride, rows, cols);
        MatRef { ptr, rows: r, cols: c, stride: self.stride, life: PhantomData }
    }

    /// A copy of the tile as a matrix of its own.
    pub fn to_matrix(&self) -> Matrix<T>
    where
        T: Clone,
    {
        Matrix::from_fn(self.rows, self.cols, |i, j| self.row(i)[j].clone())
    }
}

impl<T> Index<(usize, usize)> for MatRef<'_, T> {
    type Output = T;

    fn index(&self, (i, j): (usize, usize)) -> &T {
        &self.row(i)[j]
    }
}

impl<T: fmt::Debug> fmt::Debug for MatRef<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries((0..self.rows).map(|i| self.row(i))).finish()
    }
}

/// A mutable view of a tile of a [`Matrix`]: what `InOut(m[(rows, cols)])` passes.
pub struct MatMut<'a, T> {
    ptr: *mut T,
    rows: usize,
    cols: usize,
    stride: usize,
    life: PhantomData<&'a mut T>,
}

// SAFETY: a `MatMut` is a unique borrow of `T`s.
unsafe impl<T: Send> Send for MatMut<'_, T> {}
// SAFETY: shared access to a `MatMut` only reads.
unsafe impl<T: Sync> Sync for MatMut<'_, T> {}

impl<'a, T> MatMut<'a, T> {
    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i` of the tile.
    pub fn row(&self, i: usize) -> &[T] {
        self.as_ref().row(i)
    }

    /// Row `i` of the tile, mutably.
    pub fn row_mut(&mut self, i: usize) -> &mut [T] {
        assert!(i < self.rows, "row {i} out of range for a tile of {} rows", self.rows);
        // SAFETY: row i is `cols` live elements borrowed uniquely through
        // `&mut self`; rows do not overlap (`stride >= cols`).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(i * self.stride), self.cols) }
    }

    /// A shared view of the same tile.
    pub fn as_ref(&self) -> MatRef<'_, T> {
        MatRef { ptr: self.ptr, rows: self.rows, cols: self.cols, stride: self.stride, life: PhantomData }
    }

    /// A shorter-lived mutable view of the same tile.
    pub fn reborrow(&mut self) -> MatMut<'_, T> {
        MatMut { ptr: self.ptr, rows: self.rows, cols: self.cols, stride: self.stride, life: PhantomData }
    }

    /// The part `rows × cols` of this view, borrowed from it.
    pub fn tile(&mut self, rows: Range<usize>, cols: Range<usize>) -> MatMut<'_, T> {
        self.reborrow().into_tile(rows, cols)
    }

    /// The part `rows × cols` of this view.
    pub fn into_tile(self, rows: Range<usize>, cols: Range<usize>) -> MatMut<'a, T> {
        let (ptr, r, c) = sub(self.ptr, self.rows, self.cols, self.stride, rows, cols);
        MatMut { ptr, rows: r, cols: c, stride: self.stride, life: PhantomData }
    }

    /// The columns before `j` and the columns from `j` on, as two views.
    pub fn split_at_col(self, j: usize) -> (MatMut<'a, T>, MatMut<'a, T>) {
        assert!(j <= self.cols, "split at column {j} of a tile of {} columns", self.cols);
        let left = MatMut { ptr: self.ptr, rows: self.rows, cols: j, stride: self.stride, life: PhantomData };
        let first = if j < self.cols && self.rows > 0 {
            // SAFETY: column j of row 0 lies inside the tile.
            unsafe { self.ptr.add(j) }
        } else {
            self.ptr
        };
        (left, MatMut { ptr: first, rows: self.rows, cols: self.cols - j, stride: self.stride, life: PhantomData })
    }

    /// The rows before `i` and the rows from `i` on, as two views.
    pub fn split_at_row(self, i: usize) -> (MatMut<'a, T>, MatMut<'a, T>) {
        assert!(i <= self.rows, "split at row {i} of a tile of {} rows", self.rows);
        let top = MatMut { ptr: self.ptr, rows: i, cols: self.cols, stride: self.stride, life: PhantomData };
        let rest = if i < self.rows {
            // SAFETY: row i lies inside the tile.
            unsafe { self.ptr.add(i * self.stride) }
        } else {
            self.ptr
        };
        (top, MatMut { ptr: rest, rows: self.rows - i, cols: self.cols, stride: self.stride, life: PhantomData })
    }

    /// Sets every element to `value`.
    pub fn fill(&mut self, value: T)
    where
        T: Clone,
    {
        for i in 0..self.rows {
            self.row_mut(i).fill(value.clone());
        }
    }

    /// Copies `from`, a tile of the same shape, into this one.
    pub fn copy_from(&mut self, from: MatRef<'_, T>)
    where
        T: Clone,
    {
        assert!(from.rows == self.rows && from.cols == self.cols, "copy between tiles of different shapes");
        for i in 0..self.rows {
            self.row_mut(i).clone_from_slice(from.row(i));
        }
    }
}

impl<T> Index<(usize, usize)> for MatMut<'_, T> {
    type Output = T;

    fn index(&self, (i, j): (usize, usize)) -> &T {
        &self.row(i)[j]
    }
}

impl<T> IndexMut<(usize, usize)> for MatMut<'_, T> {
    fn index_mut(&mut self, (i, j): (usize, usize)) -> &mut T {
        &mut self.row_mut(i)[j]
    }
}

impl<T: fmt::Debug> fmt::Debug for MatMut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_ref().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use smallvec::SmallVec;

    use super::*;

    #[test]
    fn tiles_rows_and_columns_have_the_spans_of_their_elements() {
        let mut m = Matrix::from_fn(4, 4, |i, j| (i * 4 + j) as f64);
        let base = &raw mut m;
        let mut path = SmallVec::new();
        let mut reads = Reads { tracker: None, path: &mut path, writing: false };
        // SAFETY: `m` is live and used by nobody else.
        let col = unsafe { Matrix::project(base, (.., 1usize), &mut reads) }.unwrap();
        // SAFETY: as above.
        let row = unsafe { Matrix::project(base, (2usize, ..), &mut reads) }.unwrap();
        // SAFETY: as above.
        let other = unsafe { Matrix::project(base, (0..2, 2..4), &mut reads) }.unwrap();
        assert!(col.span().overlaps(&row.span()));
        assert!(!col.span().overlaps(&other.span()));
        // SAFETY: the column is live and only read here.
        let view = unsafe { col.view() };
        assert_eq!((0..4).map(|i| view[(i, 0)]).collect::<Vec<_>>(), [1.0, 5.0, 9.0, 13.0]);
        // SAFETY: as above.
        let err = unsafe { Matrix::project(base, (0..5, 0usize), &mut reads) }.unwrap_err();
        assert_eq!(err, "range 0..5 out of range for length 4 (a 4×4 matrix)");
    }

    #[test]
    fn views_split_and_copy() {
        let mut m = Matrix::filled(3, 3, 0);
        let mut v = m.view_mut();
        let (mut top, mut rest) = v.reborrow().split_at_row(1);
        top.fill(1);
        rest.row_mut(1)[2] = 7;
        assert_eq!(m.as_slice(), &[1, 1, 1, 0, 0, 0, 0, 0, 7]);
        let copy = m.view().to_matrix();
        assert_eq!(copy, m);
    }
}
