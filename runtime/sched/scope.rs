//! Scopes: which processors a task may run on.
//!
//! A scope names workers (processes; worker 0 is the one the program
//! started in), a thread within the chosen worker, or a GPU. The default,
//! [`Scope::any`], lets the scheduler choose. A scope no processor satisfies
//! fails the task at spawn with [`Error::Scope`](crate::Error::Scope); the
//! rules are in [`place`](super::place).

use std::fmt;

/// Where a task may run: `spawn!(scope = Scope::thread(1), f(x))`.
///
/// ```
/// use dirk::prelude::*;
///
/// let rt = Runtime::builder().threads(2).build()?;
/// let on_one = rt.run(|| {
///     dirk::with_options(Options::new().scope(Scope::thread(1)), || {
///         dirk::spawn(|| dirk::current_thread()).fetch()
///     })
/// })?;
/// assert_eq!(on_one, Some(1));
/// # Ok::<(), dirk::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scope {
    workers: Option<Vec<usize>>,
    thread: Option<usize>,
    gpu: Option<usize>,
}

/// A scope naming workers, which may be narrowed to one of their threads
/// with [`thread`](WorkerScope::thread). Converts into a [`Scope`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WorkerScope(Vec<usize>);

impl Scope {
    /// Any processor (the default).
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// assert_eq!(Scope::any(), Scope::default());
    /// assert_eq!((Scope::any().worker_ids(), Scope::any().thread_id()), (None, None));
    /// assert_eq!(Scope::any().to_string(), "Scope::any()");
    /// ```
    pub fn any() -> Scope {
        Scope::default()
    }

    /// Worker `w` (worker 0 is the process the program started in).
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// #[task]
    /// fn whoami() -> usize { dirk::current_worker() }
    ///
    /// assert_eq!(spawn!(scope = Scope::worker(0), whoami()).fetch()?, 0);
    /// assert_eq!(Scope::from(Scope::worker(2)).worker_ids(), Some(&[2][..]));
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn worker(w: usize) -> WorkerScope {
        WorkerScope(vec![w])
    }

    /// Any of the given workers.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// let some = Scope::from(Scope::workers([3, 1, 3]));
    /// assert_eq!(some.worker_ids(), Some(&[1, 3][..])); // sorted, once each
    /// assert_eq!(some.to_string(), "Scope::workers([1, 3])");
    /// ```
    pub fn workers(ws: impl IntoIterator<Item = usize>) -> WorkerScope {
        let mut ws: Vec<usize> = ws.into_iter().collect();
        ws.sort_unstable();
        ws.dedup();
        WorkerScope(ws)
    }

    /// Thread `t` of the chosen worker.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// #[task]
    /// fn on() -> Option<usize> { dirk::current_thread() }
    ///
    /// let rt = Runtime::builder().threads(2).build()?;
    /// assert_eq!(rt.run(|| spawn!(scope = Scope::thread(1), on()).fetch())?, Some(1));
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn thread(t: usize) -> Scope {
        Scope { thread: Some(t), ..Scope::default() }
    }

    /// GPU processor `i` (with the `gpu` feature: see `dirk::gpu`).
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// let gpu = Scope::gpu(0); // a scope only: nothing runs on a GPU here
    /// assert_eq!(gpu.gpu_id(), Some(0));
    /// assert_eq!(gpu.to_string(), "Scope::gpu(0)");
    /// ```
    pub fn gpu(i: usize) -> Scope {
        Scope { gpu: Some(i), ..Scope::default() }
    }

    /// The workers this scope names, if it names any.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// assert_eq!(Scope::from(Scope::workers([2, 0])).worker_ids(), Some(&[0, 2][..]));
    /// assert_eq!(Scope::worker(1).thread(0).worker_ids(), Some(&[1][..]));
    /// assert_eq!(Scope::thread(0).worker_ids(), None); // whichever worker is chosen
    /// ```
    pub fn worker_ids(&self) -> Option<&[usize]> {
        self.workers.as_deref()
    }

    /// The thread this scope names, if any.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// assert_eq!(Scope::thread(3).thread_id(), Some(3));
    /// assert_eq!(Scope::worker(1).thread(2).thread_id(), Some(2));
    /// assert_eq!(Scope::from(Scope::worker(1)).thread_id(), None);
    /// ```
    pub fn thread_id(&self) -> Option<usize> {
        self.thread
    }

    /// The GPU this scope names, if any.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// assert_eq!(Scope::gpu(1).gpu_id(), Some(1));
    /// assert_eq!(Scope::thread(1).gpu_id(), None);
    /// ```
    pub fn gpu_id(&self) -> Option<usize> {
        self.gpu
    }
}

impl WorkerScope {
    /// Thread `t` of the chosen worker.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// #[task]
    /// fn on() -> Option<usize> { dirk::current_thread() }
    ///
    /// let rt = Runtime::builder().threads(2).build()?;
    /// let scope = Scope::worker(0).thread(1); // thread 1 of this process
    /// assert_eq!((scope.worker_ids(), scope.thread_id()), (Some(&[0][..]), Some(1)));
    /// assert_eq!(rt.run(|| spawn!(scope = scope, on()).fetch())?, Some(1));
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn thread(self, t: usize) -> Scope {
        Scope { workers: Some(self.0), thread: Some(t), gpu: None }
    }
}

impl From<WorkerScope> for Scope {
    fn from(w: WorkerScope) -> Scope {
        Scope { workers: Some(w.0), ..Scope::default() }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.workers, self.thread, self.gpu) {
            (_, _, Some(g)) => write!(f, "Scope::gpu({g})"),
            (None, None, None) => write!(f, "Scope::any()"),
            (None, Some(t), None) => write!(f, "Scope::thread({t})"),
            (Some(ws), thread, None) => {
                match ws.as_slice() {
                    [w] => write!(f, "Scope::worker({w})")?,
                    ws => write!(f, "Scope::workers({ws:?})")?,
                }
                match thread {
                    Some(t) => write!(f, ".thread({t})"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl fmt::Display for WorkerScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Scope::from(self.clone()), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_print_as_written() {
        assert_eq!(Scope::any().to_string(), "Scope::any()");
        assert_eq!(Scope::thread(3).to_string(), "Scope::thread(3)");
        assert_eq!(Scope::from(Scope::worker(2)).to_string(), "Scope::worker(2)");
        assert_eq!(Scope::worker(2).thread(1).to_string(), "Scope::worker(2).thread(1)");
        assert_eq!(Scope::from(Scope::workers([3, 1, 3])).to_string(), "Scope::workers([1, 3])");
        assert_eq!(Scope::gpu(0).to_string(), "Scope::gpu(0)");
    }
}
