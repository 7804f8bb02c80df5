//! Data placement: [`Mutable`] (Dagger's `@mutable`), a value that lives in
//! one process and is never copied, and [`Shard`] (`@shard`), one value per
//! process.
//!
//! Both are handles: a task argument that is a handle crosses processes as
//! `(worker, id, maker)` and is bound, in the process that runs the task, to
//! that process's value in its table of live values. A value is made where
//! it lives, the first time a task there needs it: by the closure given
//! (in the process that made the handle), or by running the registered
//! `#[task]` given, which is how a value comes to live in another process.
//!
//! Placement: a task with a `Mutable` argument runs on the mutable's worker
//! (the cost model is told through the argument's codec: its *pin*); a
//! task with a `Shard` argument runs anywhere and gets that worker's part,
//! except a shard made by a closure, which exists only where the closure is.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::sync::Mutex;

use crate::task::registry;
use crate::transport::wire::{self, BlobWriter};
use crate::{Error, Scope};

type Live = Arc<Mutex<Box<dyn Any + Send>>>;

/// This process's live values, by id.
fn table() -> &'static Mutex<HashMap<u64, Live>> {
    static TABLE: OnceLock<Mutex<HashMap<u64, Live>>> = OnceLock::new();
    TABLE.get_or_init(Default::default)
}

/// A new id, unique in the cluster: the worker's id in the top bits.
fn new_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    (super::current_worker() as u64) << 48 | NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A closure run once, shared by the clones of a handle.
type Once<T> = Arc<Mutex<Option<Box<dyn FnOnce() -> T + Send>>>>;

/// How a value is made where it lives.
enum Maker<T> {
    /// A closure, which exists only in the process that made the handle.
    Here(Once<T>),
    /// A shareable closure (a shard's), for every part made here.
    Each(Arc<dyn Fn() -> T + Send + Sync>),
    /// A registered `#[task]` with no arguments, by id.
    Task(u64),
}

impl<T> Clone for Maker<T> {
    fn clone(&self) -> Self {
        match self {
            Maker::Here(f) => Maker::Here(f.clone()),
            Maker::Each(f) => Maker::Each(f.clone()),
            Maker::Task(id) => Maker::Task(*id),
        }
    }
}

/// This process's value `id`, made by `maker` when it is not there yet.
fn bind<T: Send + 'static>(id: u64, maker: &Maker<T>) -> Result<Live, Error> {
    let mut table = table().lock();
    if let Some(live) = table.get(&id) {
        return Ok(live.clone());
    }
    let value: Box<dyn Any + Send> = match maker {
        Maker::Here(f) => match f.lock().take() {
            Some(f) => Box::new(f()),
            None => return Err(Error::Config(format!("the value {id:#x} was dropped"))),
        },
        Maker::Each(f) => Box::new(f()),
        Maker::Task(task) => {
            let entry = registry::by_id(*task)
                .ok_or_else(|| Error::Config(format!("task {task:#x} that makes a live value is not registered")))?;
            let live =
                entry.glue.live.as_ref().ok_or_else(|| Error::Config("the task's result cannot live here".into()))?;
            let made = (live.0)();
            if !made.is::<T>() {
                return Err(Error::Codec(format!("task {task:#x} does not make a `{}`", std::any::type_name::<T>())));
            }
            made
        }
    };
    let live: Live = Arc::new(Mutex::new(value));
    table.insert(id, live.clone());
    Ok(live)
}

fn with_live<T: 'static, R>(live: &Live, f: impl FnOnce(&mut T) -> R) -> R {
    let mut guard = live.lock();
    let value = guard.downcast_mut::<T>().expect("a live value keeps its type");
    f(value)
}

/// A value pinned to one worker and never copied; tasks using it run
/// there (Dagger's `@mutable`).
///
/// Made with [`dirk::mutable`](crate::mutable) (in this process) or
/// [`dirk::mutable_on`](crate::mutable_on) (in another worker, by a
/// `#[task]` with no arguments). Pass a clone (a cheap handle) to `spawn!`: the task
/// is placed on the mutable's worker, where a `#[task]` taking
/// `&Mutable<T>` reads and changes it with [`with`](Mutable::with).
///
/// ```
/// use dirk::prelude::*;
///
/// #[task]
/// fn push(log: &dirk::Mutable<Vec<u32>>, x: u32) -> usize {
///     log.with(|v| { v.push(x); v.len() })
/// }
///
/// let log = dirk::mutable(Vec::new);
/// for x in 0..3 {
///     spawn!(push(log.clone(), x)).wait()?;
/// }
/// assert_eq!(log.with(|v| v.clone()), [0, 1, 2]);
/// # Ok::<(), dirk::Error>(())
/// ```
pub struct Mutable<T> {
    worker: u32,
    id: u64,
    maker: Maker<T>,
}

impl<T> Clone for Mutable<T> {
    fn clone(&self) -> Self {
        Mutable { worker: self.worker, id: self.id, maker: self.maker.clone() }
    }
}

impl<T> fmt::Debug for Mutable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutable").field("worker", &self.worker).field("id", &self.id).finish()
    }
}

impl<T: Send + 'static> Mutable<T> {
    /// The worker the value lives on.
    ///
    /// ```
    /// let log = dirk::mutable(Vec::<u32>::new); // made here, so it lives here
    /// assert_eq!(log.worker(), dirk::current_worker());
    /// assert_eq!(log.worker(), 0);
    /// ```
    pub fn worker(&self) -> usize {
        self.worker as usize
    }

    /// The scope of the value's worker.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// #[task]
    /// fn whoami() -> usize { dirk::current_worker() }
    ///
    /// let log = dirk::mutable(Vec::<u32>::new);
    /// assert_eq!(log.scope().worker_ids(), Some(&[log.worker()][..]));
    /// assert_eq!(spawn!(scope = log.scope(), whoami()).fetch()?, log.worker()); // runs beside it
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn scope(&self) -> Scope {
        Scope::worker(self.worker as usize).into()
    }

    /// Runs `f` with the value.
    ///
    /// # Panics
    ///
    /// When called in another process than the value's (a task using the
    /// mutable is placed on its worker, so this only happens to code that
    /// carried the handle elsewhere by hand).
    ///
    /// ```
    /// let count = dirk::mutable(|| 0u32);
    /// let same = count.clone(); // a clone is a handle to the same value
    /// same.with(|n| *n += 5);
    /// assert_eq!(count.with(|n| *n), 5);
    /// ```
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let here = super::current_worker();
        assert_eq!(
            here, self.worker as usize,
            "a dirk::Mutable lives on worker {} and cannot be used on worker {here}: spawn the code using it there",
            self.worker
        );
        let live = bind(self.id, &self.maker).unwrap_or_else(|e| panic!("{e}"));
        with_live(&live, f)
    }
}

/// A value made by `f` in this process, pinned here: see [`Mutable`].
pub fn mutable<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Mutable<T> {
    let worker = super::current_worker() as u32;
    Mutable { worker, id: new_id(), maker: Maker::Here(Arc::new(Mutex::new(Some(Box::new(f))))) }
}

/// A value pinned to the one worker `scope` names, made there (on first
/// use) by `make`, a `#[task]` with no arguments: see [`Mutable`].
///
/// Fails with [`Error::Scope`] when the scope does not name exactly one
/// worker, or when `make` is not a registered `#[task]` whose result can
/// live in a process.
pub fn mutable_on<T, F>(scope: impl Into<Scope>, make: F) -> Result<Mutable<T>, Error>
where
    T: Send + 'static,
    F: Fn() -> T + Copy + Send + 'static,
{
    let scope = scope.into();
    let refuse = |reason: String| {
        Error::Scope(crate::ScopeError {
            task: crate::TaskId(0),
            name: "dirk::mutable_on".into(),
            scope: scope.to_string(),
            reason,
        })
    };
    let worker = match scope.worker_ids() {
        Some(&[w]) => w as u32,
        _ => return Err(refuse("a mutable lives on exactly one worker: use Scope::worker(w)".to_owned())),
    };
    if worker as usize == super::current_worker() {
        return Ok(mutable(make));
    }
    let path = std::any::type_name_of_val(&make);
    match registry::by_path(path) {
        Some(entry) if entry.glue.live.is_some() => Ok(Mutable { worker, id: new_id(), maker: Maker::Task(entry.id) }),
        _ => Err(refuse(format!(
            "`{path}` is not a #[task] with no arguments whose result can live in a process, so it cannot run on worker {worker}"
        ))),
    }
}

/// One value per worker; a task gets the part of the worker it runs on
/// (Dagger's `@shard`).
///
/// Each part is made by `f` the first time a task on that worker uses the
/// shard. When `f` is a `#[task]` with no arguments, every worker makes its
/// own part; a closure exists only in this process, so tasks using a shard
/// made by a closure run here.
///
/// ```
/// use dirk::prelude::*;
///
/// #[task]
/// fn count(hits: &dirk::Shard<u64>) -> u64 {
///     hits.with(|n| { *n += 1; *n })
/// }
///
/// let hits = dirk::shard(|| 0u64);
/// for _ in 0..3 {
///     spawn!(count(hits.clone())).wait()?;
/// }
/// assert_eq!(hits.with(|n| *n), 3);
/// # Ok::<(), dirk::Error>(())
/// ```
pub struct Shard<T> {
    id: u64,
    home: u32,
    maker: Maker<T>,
}

impl<T> Clone for Shard<T> {
    fn clone(&self) -> Self {
        Shard { id: self.id, home: self.home, maker: self.maker.clone() }
    }
}

impl<T> fmt::Debug for Shard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shard").field("id", &self.id).finish()
    }
}

impl<T: Send + 'static> Shard<T> {
    /// Runs `f` with this worker's part.
    ///
    /// ```
    /// let seen = dirk::shard(Vec::<u32>::new);
    /// seen.with(|v| v.push(1));
    /// seen.clone().with(|v| v.push(2)); // clones share this worker's part
    /// assert_eq!(seen.with(|v| v.clone()), [1, 2]);
    /// ```
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let live = bind(self.id, &self.maker).unwrap_or_else(|e| panic!("{e}"));
        with_live(&live, f)
    }

    /// Every part, each as a [`Mutable`] pinned to its worker, in worker
    /// order: a task given one runs where that part lives, so gathering or
    /// combining the parts is one task per part (Dagger's
    /// `map(b -> fetch(@spawn copy(b)), shard)`). A shard made by a
    /// `#[task]` has a part on every process of the current runtime (made
    /// now if no task used it there yet); one made by a closure has only
    /// the part of the process that made it.
    ///
    /// ```
    /// use dirk::prelude::*;
    /// use dirk::Mutable;
    ///
    /// #[task]
    /// fn add(bins: &dirk::Shard<Vec<u64>>, x: usize) { bins.with(|b| b[x % 4] += 1) }
    ///
    /// #[task]
    /// fn copy(part: &Mutable<Vec<u64>>) -> Vec<u64> { part.with(|b| b.clone()) }
    ///
    /// let bins = dirk::shard(|| vec![0u64; 4]);
    /// dirk::sync(|| for x in 0..10 { spawn!(add(bins.clone(), x)); })?;
    /// let parts = dirk::join_all(bins.parts().into_iter().map(|p| spawn!(copy(p)))).take()?;
    /// let total: Vec<u64> = (0..4).map(|i| parts.iter().map(|b| b[i]).sum()).collect();
    /// assert_eq!(total, [3, 3, 2, 2]);
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn parts(&self) -> Vec<Mutable<T>> {
        let part = |worker: usize| Mutable { worker: worker as u32, id: self.id, maker: self.maker.clone() };
        match self.maker {
            Maker::Task(_) => {
                let processes = super::of(crate::exec::current()).map_or(1, |c| c.size());
                (0..processes).map(part).collect()
            }
            Maker::Each(_) | Maker::Here(_) => vec![part(self.home as usize)],
        }
    }
}

/// One value per worker, each made by `f` where it is used: see [`Shard`].
pub fn shard<T, F>(f: F) -> Shard<T>
where
    T: Send + 'static,
    F: Fn() -> T + Send + Sync + 'static,
{
    let path = std::any::type_name_of_val(&f);
    let maker = match registry::by_path(path) {
        Some(entry) if entry.glue.live.is_some() => Maker::Task(entry.id),
        _ => Maker::Each(Arc::new(f)),
    };
    Shard { id: new_id(), home: super::current_worker() as u32, maker }
}

/// What crosses for a handle: its id, its worker, and its maker's task id
/// (0 for a closure).
pub(crate) trait Handle {
    fn wire(&self) -> (u64, u32, u64);
}

impl<T> Handle for Mutable<T> {
    fn wire(&self) -> (u64, u32, u64) {
        (self.id, self.worker, if let Maker::Task(t) = self.maker { t } else { 0 })
    }
}

impl<T> Handle for Shard<T> {
    fn wire(&self) -> (u64, u32, u64) {
        (self.id, self.home, if let Maker::Task(t) = self.maker { t } else { 0 })
    }
}

/// Archives a handle argument (see `probe::HandleSlot`).
pub(crate) fn write_handle<H: Handle + 'static>(value: &dyn Any, writer: BlobWriter) -> Result<BlobWriter, Error> {
    let handle = value.downcast_ref::<H>().ok_or_else(|| Error::Codec("not the handle it was spawned with".into()))?;
    wire::serialize_into(&handle.wire(), writer)
}

/// A mutable's task runs on its worker.
pub(crate) fn pin_mutable<T: 'static>(value: &dyn Any) -> Option<u32> {
    value.downcast_ref::<Mutable<T>>().map(|m| m.worker)
}

/// A shard made by a closure can only be used where the closure is.
pub(crate) fn pin_shard<T: 'static>(value: &dyn Any) -> Option<u32> {
    value.downcast_ref::<Shard<T>>().and_then(|s| matches!(s.maker, Maker::Each(_) | Maker::Here(_)).then_some(s.home))
}

fn read(bytes: &[u8]) -> Result<(u64, u32, u64), Error> {
    wire::decode::<(u64, u32, u64)>(bytes)
}

/// A mutable handle that arrived with a call.
pub(crate) fn read_mutable<T: Send + 'static>(bytes: &[u8]) -> Result<Mutable<T>, Error> {
    let (id, worker, task) = read(bytes)?;
    if task == 0 && worker as usize != super::current_worker() {
        return Err(Error::Codec(format!("a mutable made by a closure on worker {worker} cannot be used elsewhere")));
    }
    Ok(Mutable { worker, id, maker: Maker::Task(task) })
}

/// A shard handle that arrived with a call.
pub(crate) fn read_shard<T: Send + 'static>(bytes: &[u8]) -> Result<Shard<T>, Error> {
    let (id, home, task) = read(bytes)?;
    if task == 0 {
        return Err(Error::Codec(format!("a shard made by a closure on worker {home} cannot be used elsewhere")));
    }
    Ok(Shard { id, home, maker: Maker::Task(task) })
}
