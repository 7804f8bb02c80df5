//! Tasks: the [`Task<T>`] handle, task identity, and spawning.

pub(crate) mod alloc;
pub(crate) mod archived;
pub(crate) mod cancel;
pub(crate) mod cell;
pub(crate) mod group;
pub(crate) mod listeners;
pub(crate) mod raw;
pub(crate) mod registry;
pub(crate) mod remote;
pub(crate) mod slots;
pub(crate) mod spawn;
pub(crate) mod state;

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use self::cell::tell;
use self::listeners::Listener;
use self::raw::TaskRef;
use self::state::{CANCEL, ELSEWHERE, FINISHING, RUNNING};
use crate::Error;
use crate::exec::extension::Extension;
use crate::exec::wait::{self, Awaited};

pub use crate::id::TaskId;

/// A handle to a spawned task and, once it has run, its result.
///
/// Made by [`spawn!`](crate::spawn!) and [`dirk::spawn`](crate::spawn()); the
/// task is already scheduled. Handles are cheap to clone and may be passed
/// to other spawns as inputs: `spawn!(f(&a))` or `spawn!(f(a))` runs `f`
/// after `a`, with `a`'s result.
///
/// ```
/// use dirk::prelude::*;
///
/// #[task]
/// fn add(a: i64, b: i64) -> i64 { a + b }
///
/// let a = spawn!(add(1, 2));
/// let b = spawn!(add(&a, 10));
/// let c = spawn!(add(a, b));
/// assert_eq!(c.fetch()?, 16);
/// # Ok::<(), dirk::Error>(())
/// ```
pub struct Task<T> {
    pub(crate) raw: TaskRef,
    value: PhantomData<fn() -> T>,
}

impl<T> Task<T> {
    /// Wraps a reference to a task whose value type is `T`.
    ///
    /// # Safety
    ///
    /// `raw` was built with value type `T`.
    pub(crate) unsafe fn from_raw(raw: TaskRef) -> Task<T> {
        Task { raw, value: PhantomData }
    }

    /// The task's result, once it is complete.
    pub(crate) fn result(&self) -> Option<Result<&T, &Error>> {
        // SAFETY: `Task<T>` is only made for tasks with value type `T`.
        unsafe { cell::result::<T>(&self.raw) }
    }
}

impl<T: Send + Sync + 'static> Task<T> {
    /// Waits for the task and returns a clone of its result.
    ///
    /// On a worker thread (inside a task) the wait runs other tasks, so
    /// tasks that fetch their children never deadlock, even on one thread.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// #[task]
    /// fn double(x: u32) -> u32 { x * 2 }
    ///
    /// let t = spawn!(double(21));
    /// assert_eq!(t.fetch()?, 42);
    /// assert_eq!(t.fetch()?, 42); // a clone each time: the handle keeps the value
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn fetch(&self) -> Result<T, Error>
    where
        T: Clone,
    {
        self.block();
        if self.raw.header().state.load() & ELSEWHERE != 0 {
            router(&self.raw)?.bring_here(&self.raw)?;
        }
        self.completed().cloned().map_err(Clone::clone)
    }

    /// Waits for the task and returns its result, moved out without a
    /// copy when this is the last handle to it (no other handle, and no
    /// task waiting to read it); a clone otherwise.
    ///
    /// Use it for big results: [`fetch`](Task::fetch) always clones, so
    /// that every handle can read the value; `take` consumes the handle.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// #[task]
    /// fn big(n: usize) -> Vec<u8> { vec![7; n] }
    ///
    /// let t = spawn!(big(1 << 20));
    /// let bytes: Vec<u8> = t.take()?; // the task's own vector, not a copy
    /// assert_eq!(bytes.len(), 1 << 20);
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn take(self) -> Result<T, Error>
    where
        T: Clone,
    {
        self.block();
        let header = self.raw.header();
        if header.state.load() & ELSEWHERE != 0 {
            router(&self.raw)?.bring_here(&self.raw)?;
        }
        self.outcome()?;
        // The thread that completed the task lets go of its own reference
        // just after publishing the result: give it that moment before
        // deciding that another handle exists.
        for round in 0..TAKE_PATIENCE {
            // SAFETY: `Task<T>` is only made for tasks with value type `T`.
            if let Some(value) = unsafe { cell::take_value::<T>(&self.raw) } {
                return Ok(value);
            }
            if round < TAKE_PATIENCE / 2 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        self.completed().cloned().map_err(Clone::clone)
    }

    /// Waits for the task to end; `Ok` when it succeeded.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// #[task]
    /// fn check(x: i32) -> i32 { assert!(x >= 0, "negative"); x }
    ///
    /// assert_eq!(spawn!(check(1)).wait(), Ok(()));
    /// let err = spawn!(check(-1)).wait().unwrap_err();
    /// assert!(matches!(err, Error::Panicked { message, .. } if message == "negative"));
    /// ```
    pub fn wait(&self) -> Result<(), Error> {
        self.block();
        self.outcome()
    }

    /// Success or the error, of a complete task (its value may be elsewhere).
    fn outcome(&self) -> Result<(), Error> {
        match self.raw.header().error() {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// Like [`wait`](Task::wait), but gives up after `timeout`, returning
    /// `None` when the task has not ended by then.
    ///
    /// ```
    /// use dirk::prelude::*;
    /// use std::time::Duration;
    ///
    /// let slow = dirk::spawn(|| dirk::sleep(Duration::from_secs(3600)));
    /// assert_eq!(slow.wait_timeout(Duration::from_millis(10)), None); // still sleeping
    /// slow.cancel();
    /// assert!(slow.wait_timeout(Duration::from_secs(10)).unwrap().unwrap_err().is_cancelled());
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<(), Error>> {
        let deadline = Instant::now() + timeout;
        let header = self.raw.header();
        if !wait::until(&|| header.state.is_complete(), Some(Awaited { header, deadline: Some(deadline) })) {
            return None;
        }
        Some(self.outcome())
    }

    /// Whether the task has ended (with a result or an error).
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// #[task]
    /// fn add(a: i64, b: i64) -> i64 { a + b }
    ///
    /// let t = spawn!(add(1, 2));
    /// t.wait()?;
    /// assert!(t.is_ready()); // `fetch` now returns at once
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn is_ready(&self) -> bool {
        self.raw.header().state.is_complete()
    }

    /// Cancels the task.
    ///
    /// A task that has not started never runs, and it and its dependents
    /// fail (the task with [`Error::Cancelled`], dependents with
    /// [`Error::Upstream`] whose root is that). A running task ends at once
    /// as far as its handles and dependents can tell; its body is asked to
    /// stop, which [`dirk::sleep`](crate::sleep) and
    /// [`dirk::cancelled`](crate::cancelled) observe. Cancelling a finished
    /// task does nothing.
    ///
    /// ```
    /// use dirk::prelude::*;
    /// use std::time::Duration;
    ///
    /// #[task]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// let slow = dirk::spawn(|| { dirk::sleep(Duration::from_secs(3600)); 1 });
    /// let after = spawn!(add(&slow, 1));
    /// slow.cancel();
    /// assert!(slow.wait().unwrap_err().is_cancelled());
    /// assert!(matches!(after.wait(), Err(Error::Upstream { .. })));
    /// ```
    pub fn cancel(&self) {
        let header = self.raw.header();
        let before = header.state.set(CANCEL);
        if before & FINISHING != 0 {
            return;
        }
        if let Some(completion) = header.fail(Error::Cancelled { task: header.id }) {
            tell(completion);
        }
        // A body running in another process learns it there too.
        if before & RUNNING != 0
            && let Some(router) = header.rt.router()
        {
            router.cancel_elsewhere(&self.raw);
        }
    }

    /// The task's id.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// #[task]
    /// fn add(a: i64, b: i64) -> i64 { a + b }
    ///
    /// let (a, b) = (spawn!(add(1, 2)), spawn!(add(1, 2)));
    /// assert_ne!(a.id(), b.id()); // one id per task
    /// assert_eq!(a.clone().id(), a.id()); // shared by its handles
    /// ```
    pub fn id(&self) -> TaskId {
        self.raw.header().id
    }

    /// The task's name: the function's name, or the `name = ...` option.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// #[task]
    /// fn add(a: i64, b: i64) -> i64 { a + b }
    ///
    /// assert_eq!(spawn!(add(1, 2)).name(), "add");
    /// assert_eq!(spawn!(name = "sum", add(1, 2)).name(), "sum");
    /// ```
    pub fn name(&self) -> &str {
        &self.raw.header().name
    }

    /// Waits for the task and borrows its result where it is (brought to
    /// this process first when it lives in another).
    #[cfg_attr(not(feature = "array"), expect(dead_code, reason = "arrays read tiles in place"))]
    pub(crate) fn fetch_ref(&self) -> Result<&T, Error> {
        self.block();
        if self.raw.header().state.load() & ELSEWHERE != 0 {
            router(&self.raw)?.bring_here(&self.raw)?;
        }
        self.completed().map_err(Clone::clone)
    }

    fn block(&self) {
        let header = self.raw.header();
        if !header.state.is_complete() {
            wait::until(&|| header.state.is_complete(), Some(Awaited { header, deadline: None }));
        }
    }

    fn completed(&self) -> Result<&T, &Error> {
        self.result().expect("a task is complete after its wait returned")
    }
}

impl<T> Clone for Task<T> {
    fn clone(&self) -> Self {
        Task { raw: self.raw.clone(), value: PhantomData }
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = self.raw.header();
        f.debug_struct("Task").field("id", &h.id).field("name", &h.name).field("ready", &h.state.is_complete()).finish()
    }
}

impl<T: Clone + Send + Sync + 'static> IntoFuture for Task<T> {
    type Output = Result<T, Error>;
    type IntoFuture = TaskFuture<T>;

    fn into_future(self) -> TaskFuture<T> {
        TaskFuture { task: self, registered: None }
    }
}

/// The future of `task.await`: resolves to the task's result (cloned).
pub struct TaskFuture<T> {
    task: Task<T>,
    registered: Option<Waker>,
}

impl<T> fmt::Debug for TaskFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskFuture").field("task", &self.task).finish()
    }
}

impl<T: Clone + Send + Sync + 'static> Future for TaskFuture<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(result) = self.task.result() {
            return Poll::Ready(result.cloned().map_err(Clone::clone));
        }
        if self.task.is_ready() {
            // Complete, with its value in another process: bring it here.
            let router = match router(&self.task.raw) {
                Ok(router) => router,
                Err(e) => return Poll::Ready(Err(e)),
            };
            return match router.bring_here_async(&self.task.raw, cx.waker()) {
                Poll::Ready(Ok(())) => Poll::Ready(self.task.completed().cloned().map_err(Clone::clone)),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            };
        }
        if self.registered.as_ref().is_none_or(|w| !w.will_wake(cx.waker())) {
            let header = self.task.raw.header();
            let waker = cx.waker().clone();
            if header.listeners.register(&header.state, Listener::Waker(Box::new(waker.clone()))).is_err() {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.registered = Some(waker);
        }
        Poll::Pending
    }
}

/// How many times [`Task::take`] looks for the completer's reference to go
/// (half spinning, half yielding) before it clones: a few microseconds.
const TAKE_PATIENCE: u32 = 128;

/// The extension that keeps the value of `task`, which completed elsewhere.
fn router(task: &TaskRef) -> Result<&'static dyn Extension, Error> {
    task.header()
        .rt
        .router()
        .ok_or_else(|| Error::Transport("a value kept elsewhere on a runtime without workers".to_owned()))
}

/// Small end-to-end runs of the task lifecycle, sized for Miri (`cargo xtask
/// miri`): reference counts, the cell's slots, listener registration racing
/// completion, moving the value to its last user, failure and cancellation.
#[cfg(test)]
mod tests {
    use crate::exec::{Pool, PoolConfig};
    use crate::{Error, spawn};

    #[crate::task]
    fn add(a: u64, b: u64) -> u64 {
        a + b
    }

    #[crate::task]
    fn concat(a: &String, b: String) -> String {
        format!("{a}{b}")
    }

    #[crate::task]
    fn boom(_x: u64) -> u64 {
        panic!("boom")
    }

    #[test]
    fn a_diamond_with_moved_and_borrowed_values() {
        let rt = Pool::start(PoolConfig::new(2)).unwrap();
        rt.shared().run(|| {
            for _ in 0..8 {
                let a = spawn!(add(1, 2));
                let b = spawn!(add(&a, 10));
                let c = spawn!(add(&a, 20));
                let d = spawn!(add(b, c));
                assert_eq!(d.fetch().unwrap(), 36);
                let s = crate::spawn(|| String::from("dirk"));
                let t = spawn!(concat(&s, String::from("!")));
                let u = spawn!(concat(&t, t.clone()));
                assert_eq!(u.fetch().unwrap(), "dirk!dirk!");
            }
        });
    }

    #[test]
    fn failures_and_cancellations_reach_dependents() {
        let rt = Pool::start(PoolConfig::new(2)).unwrap();
        rt.shared().run(|| {
            let bad = spawn!(boom(1));
            let after = spawn!(add(&bad, 1));
            assert!(matches!(after.fetch(), Err(Error::Upstream { .. })));
            let slow = crate::spawn(|| crate::sleep(std::time::Duration::from_secs(60)));
            let waiting = spawn!(add(1, 1));
            let dep = crate::spawn(move || waiting.fetch().unwrap());
            slow.cancel();
            assert!(slow.wait().unwrap_err().is_cancelled());
            assert_eq!(dep.fetch().unwrap(), 2);
        });
    }
}
