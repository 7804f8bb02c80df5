//! Distributed arrays: Dagger's `DArray`, an N-dimensional array cut into
//! tiles, each tile the result of a task that lives where it was made.
//!
//! ```
//! use dirk::array::{Blocks, DArray};
//!
//! let a: Vec<f64> = (0..256).map(|i| i as f64).collect();
//! let da = DArray::from_vec(a, [16, 16], Blocks([4, 4]))?;   // 16 tiles of 4×4
//! let db = da.map(|x| x * 2.0);                             // one task per tile
//! let dc = &da * 2.0 + &db;                                 // one fused task per tile
//! let v = dc.collect_vec()?;                                // row-major
//! assert_eq!(v[17], 17.0 * 4.0);
//!
//! let r = DArray::<f64, 2>::rand(Blocks([20, 20]), [100, 100]);
//! let mean = r.sum()? / 10_000.0;
//! assert!((0.4..0.6).contains(&mean));
//! # Ok::<(), dirk::Error>(())
//! ```
//!
//! - Every operation returns at once with the tasks of its tiles spawned;
//!   `wait`, `collect_vec` and the scalar reductions block. The one
//!   exception is an element-wise expression (`&a * 2.0 + &b`): its
//!   operators combine into one task per tile, spawned when the result is
//!   first used (read, reduced, passed by reference, cloned), so that the
//!   expression makes one pass over memory instead of one per operator.
//! - Tiles are row-major; the last tiles along an axis may be smaller.
//!   Arrays of equal shape and different blocks combine: the right-hand
//!   one is re-tiled ([`DArray::rechunk`]) first.
//! - The tile kernels of the linear algebra are faer's, run sequentially
//!   inside each task (parallelism comes from the tiles).
//! - Tiles are made and used by tasks of the current runtime's process;
//!   tiles on worker processes are not supported yet.

mod elementwise;
mod grid;
mod layout;
mod linalg;
mod picture;
mod reduce;
mod sort;
mod stencil;

use std::fmt;
use std::ops::{Add, Div, Mul, Sub};
use std::sync::{Arc, OnceLock};

use crate::{Error, Task};

pub use self::linalg::{Lu, Triangle};
/// The `ndarray` crate that [`DArray::from_ndarray`] and
/// [`DArray::to_ndarray`] speak, so that users need not match its version.
pub use ndarray;

use self::elementwise::Lazy;
use self::grid::Grid;

/// The shape of an array's tiles: `Blocks([rows, cols])` cuts a 2-D array
/// into tiles of `rows × cols` elements (smaller at the far edges).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Blocks<const N: usize>(pub [usize; N]);

/// What an array may hold: plain values, copied freely.
pub trait Element: Copy + Default + PartialOrd + Send + Sync + fmt::Debug + 'static {}

/// Elements with arithmetic: what the operators and reductions need.
pub trait Number: Element + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Div<Output = Self> {
    /// `0`.
    const ZERO: Self;
    /// `1`.
    const ONE: Self;
    /// The element nearest to `x` (`as` conversion).
    fn from_f64(x: f64) -> Self;
}

/// Floating-point elements: what `rand`, `randn` and `mean` need.
pub trait Float: Number {}

macro_rules! numbers {
    ($($t:ty),* ; $($f:ty),*) => {
        $(
            impl Element for $t {}
            impl Number for $t {
                const ZERO: Self = 0 as $t;
                const ONE: Self = 1 as $t;
                fn from_f64(x: f64) -> Self { x as $t }
            }
        )*
        $(impl Float for $f {})*
    };
}
numbers!(f32, f64, i8, i16, i32, i64, u8, u16, u32, u64, isize, usize; f32, f64);
impl Element for bool {}

/// One tile of a [`DArray`]: its elements in row-major order and where it
/// was made.
#[derive(Clone, PartialEq)]
pub struct Tile<T, const N: usize> {
    shape: [usize; N],
    data: Vec<T>,
    worker: usize,
    thread: Option<usize>,
}

impl<T, const N: usize> Tile<T, N> {
    /// A tile of `shape` holding `data` (row-major), made here.
    ///
    /// # Panics
    ///
    /// When `data` does not hold as many elements as `shape` says (inside a
    /// task, that fails the task).
    pub fn new(shape: [usize; N], data: Vec<T>) -> Tile<T, N> {
        let want: usize = shape.iter().product();
        assert_eq!(data.len(), want, "a tile of shape {shape:?} holds {want} elements, not {}", data.len());
        Tile { shape, data, worker: crate::current_worker(), thread: crate::current_thread() }
    }

    /// The tile's shape.
    pub fn shape(&self) -> [usize; N] {
        self.shape
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tile has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements, row-major.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    /// The elements, row-major, to change in place.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// The elements, row-major.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// The worker (process) whose task made the tile: Dagger's `myid()`.
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// The thread whose task made the tile (`None` off the worker threads):
    /// Dagger's `threadid()`.
    pub fn thread(&self) -> Option<usize> {
        self.thread
    }
}

impl<T: fmt::Debug, const N: usize> fmt::Debug for Tile<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tile")
            .field("shape", &self.shape)
            .field("worker", &self.worker)
            .field("thread", &self.thread)
            .field("data", &self.data)
            .finish()
    }
}

/// The tasks of an array's tiles, in row-major order over the grid of tiles.
type Tiles<T, const N: usize> = Arc<[Task<Tile<T, N>>]>;

/// An N-dimensional array cut into tiles, each the result of a task.
///
/// Cloning is cheap (the tiles are shared). See the [module](self) for
/// an overview.
pub struct DArray<T, const N: usize> {
    grid: Grid<N>,
    body: Body<T, N>,
    /// For an array made by `transpose`: the tiles it transposes (so that
    /// `a.matmul(&a.transpose())` is seen as `A·Aᵀ`).
    transpose_of: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

enum Body<T, const N: usize> {
    /// Tiles made by tasks.
    Tiles(Tiles<T, N>),
    /// An element-wise expression, turned into tile tasks on first use.
    Lazy(Arc<Lazy<T, N>>),
}

impl<T, const N: usize> Clone for Body<T, N> {
    fn clone(&self) -> Self {
        match self {
            Body::Tiles(t) => Body::Tiles(t.clone()),
            Body::Lazy(l) => Body::Lazy(l.clone()),
        }
    }
}

impl<T: Element, const N: usize> Clone for DArray<T, N> {
    fn clone(&self) -> Self {
        // A clone shares the tiles; an expression is made into tiles once.
        self.tiles();
        DArray { grid: self.grid, body: self.body.clone(), transpose_of: self.transpose_of.clone() }
    }
}

impl<T: Element, const N: usize> fmt::Debug for DArray<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ready = match &self.body {
            Body::Tiles(t) => t.iter().filter(|t| t.is_ready()).count(),
            Body::Lazy(l) => l.made().map_or(0, |t| t.iter().filter(|t| t.is_ready()).count()),
        };
        f.debug_struct("DArray")
            .field("element", &std::any::type_name::<T>())
            .field("shape", &self.grid.shape)
            .field("blocks", &self.grid.blocks)
            .field("tiles", &self.grid.count())
            .field("ready", &ready)
            .finish()
    }
}

/// The error for a shape that does not fit.
pub(crate) fn shape_error(what: impl fmt::Display) -> Error {
    Error::Shape(what.to_string())
}

pub(crate) use crate::error::fail_task;

/// Fails the running task with [`Error::Failed`] naming it and `message`.
pub(crate) fn fail_here(message: String) -> ! {
    let (task, name) =
        crate::exec::context::with_task(|h| h.map_or((crate::TaskId(0), "".into()), |h| (h.id, h.name.clone())));
    fail_task(Error::Failed { task, name, message })
}

impl<T: Element, const N: usize> DArray<T, N> {
    /// An array of `shape` in tiles of `blocks`, the tile at grid position
    /// `index` made by `make(index, tile_shape, first_element_index)`.
    fn generate<F>(name: &'static str, blocks: Blocks<N>, shape: [usize; N], make: F) -> DArray<T, N>
    where
        F: Fn(usize, [usize; N], [usize; N]) -> Vec<T> + Send + Sync + 'static,
    {
        let grid = Grid::new(shape, blocks.0);
        let make = Arc::new(make);
        let tiles = (0..grid.count())
            .map(|i| {
                let (make, tshape, start) = (make.clone(), grid.tile_shape(i), grid.tile_start(i));
                crate::spawn!(name = name, (move || Tile::new(tshape, make(i, tshape, start)))())
            })
            .collect();
        DArray { grid, body: Body::Tiles(tiles), transpose_of: None }
    }

    /// An array from tasks that make its tiles (row-major over the grid).
    fn from_tiles(grid: Grid<N>, tiles: Vec<Task<Tile<T, N>>>) -> DArray<T, N> {
        debug_assert_eq!(tiles.len(), grid.count());
        DArray { grid, body: Body::Tiles(tiles.into()), transpose_of: None }
    }

    /// Distributes `data` (row-major, `shape`) in tiles of `blocks`: the
    /// tile tasks copy their parts out of one shared copy of `data`.
    ///
    /// `Error::Shape` when `data` does not hold as many elements as `shape`.
    pub fn from_vec(data: Vec<T>, shape: [usize; N], blocks: Blocks<N>) -> Result<DArray<T, N>, Error> {
        let want: usize = shape.iter().product();
        if data.len() != want {
            return Err(shape_error(format_args!(
                "from_vec: shape {shape:?} holds {want} elements, the data has {}",
                data.len()
            )));
        }
        let whole = Arc::new(data);
        Ok(Self::generate("darray from_vec", blocks, shape, move |_, tshape, start| {
            let mut out = Vec::with_capacity(tshape.iter().product());
            grid::for_each_row(shape, start, tshape, |offset, len| out.extend_from_slice(&whole[offset..offset + len]));
            out
        }))
    }

    /// An array whose element at `index` is `f(index)`, each tile made by a
    /// task of its own.
    pub fn from_fn<F>(blocks: Blocks<N>, shape: [usize; N], f: F) -> DArray<T, N>
    where
        F: Fn([usize; N]) -> T + Send + Sync + 'static,
    {
        Self::generate("darray from_fn", blocks, shape, move |_, tshape, start| {
            let mut out = Vec::with_capacity(tshape.iter().product());
            grid::for_each_index(tshape, |local| {
                let mut global = local;
                for d in 0..N {
                    global[d] += start[d];
                }
                out.push(f(global));
            });
            out
        })
    }

    /// An array with every element `value`.
    pub fn fill(value: T, blocks: Blocks<N>, shape: [usize; N]) -> DArray<T, N> {
        Self::generate("darray fill", blocks, shape, move |_, tshape, _| vec![value; tshape.iter().product()])
    }

    /// The array's shape.
    pub fn shape(&self) -> [usize; N] {
        self.grid.shape
    }

    /// The shape of its tiles (the last along an axis may be smaller).
    pub fn blocks(&self) -> Blocks<N> {
        Blocks(self.grid.blocks)
    }

    /// How many tiles there are along each axis.
    pub fn tile_counts(&self) -> [usize; N] {
        self.grid.counts
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.grid.shape.iter().product()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The task of the tile at grid position `index` (Dagger's `chunks`).
    ///
    /// # Panics
    ///
    /// When `index` is outside the grid of tiles ([`DArray::tile_counts`]).
    pub fn tile(&self, index: [usize; N]) -> Task<Tile<T, N>> {
        for d in 0..N {
            assert!(
                index[d] < self.grid.counts[d],
                "tile {index:?} is outside the grid of {:?} tiles",
                self.grid.counts
            );
        }
        self.tiles()[self.grid.linear(index)].clone()
    }

    /// Every tile's task, row-major over the grid.
    pub fn tile_tasks(&self) -> Vec<Task<Tile<T, N>>> {
        self.tiles().to_vec()
    }

    /// The tile tasks, spawning those of an expression on first use.
    pub(crate) fn tiles(&self) -> &Tiles<T, N> {
        match &self.body {
            Body::Tiles(t) => t,
            Body::Lazy(l) => l.tiles(&self.grid),
        }
    }

    /// Waits until every tile is made; the first failure in tile order.
    pub fn wait(&self) -> Result<(), Error> {
        let mut first = Ok(());
        for t in self.tiles().iter() {
            if let Err(e) = t.wait()
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }

    /// The elements in row-major order (Dagger's `collect`).
    pub fn collect_vec(&self) -> Result<Vec<T>, Error> {
        let shape = self.grid.shape;
        let mut out = vec![T::default(); self.len()];
        for (i, t) in self.tiles().iter().enumerate() {
            t.wait()?;
            let tile = t.fetch_ref()?;
            let (start, tshape) = (self.grid.tile_start(i), self.grid.tile_shape(i));
            let mut at = 0;
            grid::for_each_row(shape, start, tshape, |offset, len| {
                out[offset..offset + len].copy_from_slice(&tile.data[at..at + len]);
                at += len;
            });
        }
        Ok(out)
    }

    /// Where each tile was made, `(worker, thread)` row-major over the
    /// grid: the notebook's `myid()` / `threadid()` matrices. Waits for the
    /// tiles.
    pub fn placement(&self) -> Result<Vec<(usize, Option<usize>)>, Error> {
        self.tiles()
            .iter()
            .map(|t| {
                let tile = t.fetch_ref()?;
                Ok((tile.worker, tile.thread))
            })
            .collect()
    }
}

impl<T: Number, const N: usize> DArray<T, N> {
    /// An array of zeros.
    pub fn zeros(blocks: Blocks<N>, shape: [usize; N]) -> DArray<T, N> {
        Self::fill(T::ZERO, blocks, shape)
    }

    /// An array of ones.
    pub fn ones(blocks: Blocks<N>, shape: [usize; N]) -> DArray<T, N> {
        Self::fill(T::ONE, blocks, shape)
    }
}

/// The seed of the random arrays made by this process: different in each
/// run, different for each array.
fn next_seed() -> u64 {
    static RUN: OnceLock<u64> = OnceLock::new();
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = *RUN.get_or_init(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        t.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32)
    });
    run ^ splitmix(COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// SplitMix64's output function: a well-mixed 64-bit value from a counter.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Xoshiro256++: the generator of each tile, seeded from the array's seed
/// and the tile's index.
struct Xoshiro([u64; 4]);

impl Xoshiro {
    fn new(seed: u64, stream: u64) -> Xoshiro {
        let base = splitmix(seed ^ splitmix(stream));
        Xoshiro([splitmix(base), splitmix(base + 1), splitmix(base + 2), splitmix(base + 3)])
    }

    fn next(&mut self) -> u64 {
        let s = &mut self.0;
        let out = (s[0].wrapping_add(s[3])).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// Uniform in [0, 1) with 53 random bits.
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

impl<T: Float, const N: usize> DArray<T, N> {
    /// Uniform random elements in `[0, 1)`, each tile drawn by the task
    /// that makes it (nothing large passes through this thread).
    pub fn rand(blocks: Blocks<N>, shape: [usize; N]) -> DArray<T, N> {
        Self::rand_seeded(blocks, shape, next_seed())
    }

    /// [`DArray::rand`] from a seed: the same seed, shape and blocks give
    /// the same array.
    pub fn rand_seeded(blocks: Blocks<N>, shape: [usize; N], seed: u64) -> DArray<T, N> {
        Self::generate("darray rand", blocks, shape, move |i, tshape, _| {
            let mut rng = Xoshiro::new(seed, i as u64);
            (0..tshape.iter().product::<usize>()).map(|_| T::from_f64(rng.uniform())).collect()
        })
    }

    /// Standard normal random elements (Box–Muller), made where each tile
    /// lives.
    pub fn randn(blocks: Blocks<N>, shape: [usize; N]) -> DArray<T, N> {
        let seed = next_seed();
        Self::generate("darray randn", blocks, shape, move |i, tshape, _| {
            let mut rng = Xoshiro::new(seed, i as u64);
            let n: usize = tshape.iter().product();
            let mut out = Vec::with_capacity(n);
            while out.len() < n {
                let (u, v) = (1.0 - rng.uniform(), rng.uniform());
                let r = (-2.0 * u.ln()).sqrt();
                let a = std::f64::consts::TAU * v;
                out.push(T::from_f64(r * a.cos()));
                if out.len() < n {
                    out.push(T::from_f64(r * a.sin()));
                }
            }
            out
        })
    }
}

impl<T, const N: usize> DArray<T, N>
where
    T: Element,
    ndarray::Dim<[usize; N]>: ndarray::Dimension,
    [usize; N]: ndarray::IntoDimension<Dim = ndarray::Dim<[usize; N]>>,
{
    /// Distributes an `ndarray` array (any memory order) in tiles of
    /// `blocks`.
    pub fn from_ndarray(array: &ndarray::Array<T, ndarray::Dim<[usize; N]>>, blocks: Blocks<N>) -> DArray<T, N> {
        let mut shape = [0; N];
        shape.copy_from_slice(array.shape());
        let data: Vec<T> = array.iter().copied().collect();
        match Self::from_vec(data, shape, blocks) {
            Ok(a) => a,
            Err(_) => unreachable!("an ndarray holds as many elements as its shape says"),
        }
    }

    /// The elements as an `ndarray` array of the same shape.
    pub fn to_ndarray(&self) -> Result<ndarray::Array<T, ndarray::Dim<[usize; N]>>, Error> {
        let data = self.collect_vec()?;
        ndarray::Array::from_shape_vec(self.grid.shape, data).map_err(|e| shape_error(format_args!("to_ndarray: {e}")))
    }
}
