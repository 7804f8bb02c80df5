//! Spawn options and [`with_options`], which applies them to every spawn in
//! a region, nested tasks included.

use std::sync::Arc;

use super::Scope;
use crate::error::Name;
use crate::exec::context;

/// Options for spawned tasks: where they may run and what they are called.
///
/// `spawn!` takes them inline (`spawn!(scope = Scope::thread(0), name =
/// "load", f(x))`); [`with_options`] applies them to a whole region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub(crate) scope: Option<Scope>,
    pub(crate) name: Option<Name>,
    pub(crate) retries: Option<u32>,
}

impl Options {
    /// No options: tasks go anywhere and are named after their function.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// #[task]
    /// fn add(a: i64, b: i64) -> i64 { a + b }
    ///
    /// let t = dirk::with_options(Options::new(), || spawn!(add(1, 2)));
    /// assert_eq!(t.name(), "add");
    /// assert_eq!(t.fetch()?, 3);
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn new() -> Self {
        Options::default()
    }

    /// Restricts where tasks may run.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// #[task]
    /// fn whereami() -> (usize, Option<usize>) { (dirk::current_worker(), dirk::current_thread()) }
    ///
    /// let rt = Runtime::builder().threads(2).build()?;
    /// let here = Options::new().scope(Scope::worker(0).thread(1)); // any `Into<Scope>`
    /// let at = rt.run(|| dirk::with_options(here, || spawn!(whereami())).fetch())?;
    /// assert_eq!(at, (0, Some(1)));
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn scope(mut self, scope: impl Into<Scope>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Names the tasks (in errors, traces and [`Task::name`](crate::Task::name)).
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// #[task]
    /// fn add(a: i64, b: i64) -> i64 { a + b }
    ///
    /// let t = dirk::with_options(Options::new().name("load"), || spawn!(add(1, 2)));
    /// assert_eq!(t.name(), "load");
    /// ```
    pub fn name(mut self, name: impl Into<Name>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How many times a task that ran on a worker process that was lost is
    /// run again elsewhere (when its inputs are still available) before it
    /// fails with [`Error::WorkerLost`](crate::Error::WorkerLost). Default 0.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// #[task]
    /// fn add(a: i64, b: i64) -> i64 { a + b }
    ///
    /// // As `spawn!(retries = 2, add(1, 2))`; no worker is lost here, so it runs once.
    /// let t = dirk::with_options(Options::new().retries(2), || spawn!(add(1, 2)));
    /// assert_eq!(t.fetch()?, 3);
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = Some(n);
        self
    }

    /// These options with every field that `self` leaves unset taken from `outer`.
    fn over(self, outer: Option<&Options>) -> Options {
        let Some(outer) = outer else { return self };
        Options {
            scope: self.scope.or_else(|| outer.scope.clone()),
            name: self.name.or_else(|| outer.name.clone()),
            retries: self.retries.or(outer.retries),
        }
    }
}

/// Runs `f` with `options` applied to every task spawned inside it, and to
/// every task those tasks spawn. Inner options override outer ones field by
/// field; options given to a single `spawn!` override both.
///
/// ```
/// use dirk::prelude::*;
///
/// let rt = Runtime::builder().threads(2).build()?;
/// let threads = rt.run(|| {
///     dirk::with_options(Options::new().scope(Scope::thread(0)), || {
///         let outer = dirk::spawn(|| {
///             // nested spawns inherit the scope
///             let inner = dirk::spawn(dirk::current_thread);
///             (dirk::current_thread(), inner.fetch().unwrap())
///         });
///         outer.fetch()
///     })
/// })?;
/// assert_eq!(threads, (Some(0), Some(0)));
/// # Ok::<(), dirk::Error>(())
/// ```
pub fn with_options<R>(options: Options, f: impl FnOnce() -> R) -> R {
    let merged = Arc::new(options.over(context::options().as_deref()));
    let _applied = context::enter_options(&merged);
    f()
}
