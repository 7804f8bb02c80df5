//! [`Stream<T>`]: the handle a `streaming!` block returns, reading the
//! block's tail stream and controlling its region.
//!
//! The handle is the tail edge's reader. It blocks the way a task handle
//! does: on a worker thread it runs other tasks (the region's own nodes
//! among them) while it waits, so reading a stream inside a task works on a
//! one-thread runtime. Only one thread reads at a time: `iter`, `wait` and
//! dropping the handle take the reader in turn.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sync::Mutex;

use super::edge::{Input, Poll, Signal, Take, Waker};
use super::region::Region;
use crate::alloc;
use crate::error::Error;
use crate::exec::{context, wait};

/// The reading end of the tail edge, with its item type erased.
pub(crate) trait Tail<T>: Send {
    fn poll(&mut self) -> Poll;
    fn take(&mut self) -> T;
    fn release(&mut self);
    fn park(&mut self) -> bool;
    fn bind(&mut self, waker: &Waker);
    fn close(&mut self);
}

impl<T, R> Tail<T> for R
where
    R: Take<Elem = T>,
{
    fn poll(&mut self) -> Poll {
        Input::poll(self)
    }
    fn take(&mut self) -> T {
        Take::take(self)
    }
    fn release(&mut self) {
        Input::release(self);
    }
    fn park(&mut self) -> bool {
        Input::park(self)
    }
    fn bind(&mut self, waker: &Waker) {
        Input::bind(self, waker);
    }
    fn close(&mut self) {
        Input::close(self);
    }
}

/// A running streaming region and its tail stream, returned by
/// [`streaming!`](crate::streaming!).
///
/// ```
/// use dirk::prelude::*;
///
/// let mut next = 0u32;
/// let squares = streaming! {
///     #![dirk(max_evals = 5)]
///     let n = { next += 1; next };
///     n * n
/// };
/// assert_eq!(squares.iter().collect::<Vec<_>>(), [1, 4, 9, 16, 25]);
/// squares.wait()?;
/// assert!(squares.is_finished());
/// # Ok::<(), dirk::Error>(())
/// ```
///
/// Dropping the handle cancels the region and waits for its stages to stop.
pub struct Stream<T> {
    region: Arc<Region>,
    tail: Mutex<Option<Box<dyn Tail<T>>>>,
    signal: Arc<Signal>,
}

impl<T> fmt::Debug for Stream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream").field("finished", &self.region.is_finished()).finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Stream<T> {
    pub(crate) fn new(region: Arc<Region>, tail: Option<Box<dyn Tail<T>>>) -> Stream<T> {
        let signal = Arc::new(Signal::default());
        region.watch(&signal);
        let mut tail = tail;
        if let Some(tail) = tail.as_mut() {
            tail.bind(&Waker::signal(signal.clone()));
        }
        Stream { region, tail: Mutex::new(tail), signal }
    }

    /// The tail's elements, in order, blocking for each; ends when the tail
    /// stage has ended and everything it produced was read.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// let mut n = 0u32;
    /// let evens = streaming! {
    ///     let x = { n += 1; (n <= 3).then_some(n) }?;
    ///     x * 2
    /// };
    /// assert_eq!(evens.iter().collect::<Vec<_>>(), [2, 4, 6]);
    /// assert_eq!(evens.iter().next(), None); // the tail has ended
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { stream: self }
    }

    /// The next element, waiting at most `timeout`: `Ok(Some)` with an
    /// element, `Ok(None)` when the tail has ended, `Err(())` on time-out.
    ///
    /// ```
    /// use dirk::prelude::*;
    /// use std::time::Duration;
    ///
    /// let one = streaming! { #![dirk(max_evals = 1)] let x = 7u32; x };
    /// assert_eq!(one.next_timeout(Duration::from_secs(10)), Ok(Some(7)));
    /// assert_eq!(one.next_timeout(Duration::from_secs(10)), Ok(None));
    /// let idle = streaming! { let x = dirk::sleep(Duration::from_secs(3600)); x };
    /// assert_eq!(idle.next_timeout(Duration::from_millis(10)), Err(())); // nothing yet
    /// ```
    #[allow(clippy::result_unit_err)]
    pub fn next_timeout(&self, timeout: Duration) -> Result<Option<T>, ()> {
        self.next(Some(Instant::now() + timeout))
    }

    fn next(&self, deadline: Option<Instant>) -> Result<Option<T>, ()> {
        let mut guard = self.tail.lock();
        let Some(tail) = guard.as_mut() else { return Ok(None) };
        loop {
            match tail.poll() {
                Poll::Ready => return Ok(Some(tail.take())),
                Poll::Closed => return Ok(None),
                Poll::Empty => {}
            }
            self.signal.arm();
            if !tail.park() {
                continue;
            }
            if !self.block(deadline) {
                return Err(());
            }
        }
    }

    /// Waits until every stage of the region has ended, dropping tail
    /// elements nobody read so that they never hold the region up.
    ///
    /// `Ok(())` when the region ended on its own or was cancelled; the
    /// first stage failure otherwise ([`Error::Panicked`] or
    /// [`Error::Failed`], naming the stage).
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// fn fragile(x: u32) -> u32 { assert!(x != 3, "three"); x }
    ///
    /// let mut n = 0u32;
    /// let ok = streaming! { #![dirk(max_evals = 100)] let x = { n += 1; n }; x };
    /// assert_eq!(ok.wait(), Ok(())); // the 100 elements nobody read were dropped
    /// let mut m = 0u32;
    /// let bad = streaming! { let x = { m += 1; m }; let y = fragile(x); y };
    /// assert!(matches!(bad.wait(), Err(Error::Panicked { name, .. }) if name == "y"));
    /// ```
    pub fn wait(&self) -> Result<(), Error> {
        self.wait_until(None).unwrap_or(Ok(()))
    }

    /// Like [`wait`](Stream::wait), giving up after `timeout` (`None`).
    ///
    /// ```
    /// use dirk::prelude::*;
    /// use std::time::Duration;
    ///
    /// let idle = streaming! { let x = dirk::sleep(Duration::from_secs(3600)); x };
    /// assert_eq!(idle.wait_timeout(Duration::from_millis(10)), None); // still running
    /// idle.cancel();
    /// assert_eq!(idle.wait_timeout(Duration::from_secs(10)), Some(Ok(())));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<(), Error>> {
        self.wait_until(Some(Instant::now() + timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Option<Result<(), Error>> {
        let mut guard = self.tail.lock();
        loop {
            self.signal.arm();
            let mut parked = true;
            if let Some(tail) = guard.as_mut() {
                let mut last = tail.poll();
                while last == Poll::Ready {
                    drop(tail.take());
                    last = tail.poll();
                }
                tail.release();
                // A closed tail has nothing more to give: wait (helping, on
                // a worker thread) for the region to finish, rather than
                // look again at once, which on a runtime of one thread would
                // keep the region's own nodes from ever running.
                parked = last == Poll::Closed || tail.park();
            }
            self.region.watch(&self.signal);
            if self.region.is_finished() {
                if let Some(tail) = guard.as_mut() {
                    tail.close();
                }
                return Some(self.region.result());
            }
            if parked && !self.block(deadline) {
                return None;
            }
        }
    }

    /// Blocks until the signal is set or the region finishes; `false` when
    /// the deadline passed first.
    fn block(&self, deadline: Option<Instant>) -> bool {
        self.region.check_runtime();
        let done = || self.signal.is_set() || self.region.is_finished();
        let helped = context::with_worker(|w| w.map(|w| w.help_until(&done, None, deadline)));
        match (helped, deadline) {
            (Some(done), _) => done,
            (None, None) => wait::until(&done, None),
            (None, Some(deadline)) => {
                while !done() {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    std::thread::park_timeout(deadline - now);
                }
                true
            }
        }
    }
}

impl<T> Stream<T> {
    /// Cancels the region: every stage stops after its current iteration,
    /// and stages waiting in [`dirk::sleep`](crate::sleep) return at once.
    /// [`wait`](Stream::wait) then returns `Ok(())` unless a stage had
    /// already failed.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// let mut n = 0u64;
    /// let naturals = streaming! { let x = { n += 1; n }; x }; // never ends on its own
    /// let first: Vec<u64> = naturals.iter().take(3).collect();
    /// naturals.cancel();
    /// assert_eq!(first, [1, 2, 3]);
    /// assert_eq!(naturals.wait(), Ok(()));
    /// ```
    pub fn cancel(&self) {
        self.region.cancel();
    }

    /// Whether every stage of the region has ended.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// let mut n = 0u32;
    /// let out = streaming! { #![dirk(max_evals = 3)] let x = { n += 1; n }; x };
    /// assert_eq!(out.iter().sum::<u32>(), 6);
    /// out.wait()?;
    /// assert!(out.is_finished());
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.region.is_finished()
    }

    /// Per-stage counts so far: elements produced, time spent, and with
    /// `#![dirk(report_allocs)]` (and [`alloc::Counting`] installed)
    /// allocations.
    ///
    /// ```
    /// use dirk::prelude::*;
    ///
    /// let mut n = 0u64;
    /// let out = streaming! {
    ///     #![dirk(max_evals = 10)]
    ///     let x = { n += 1; n };
    ///     #[dirk(name = "square")] let y = x * x;
    ///     y
    /// };
    /// out.wait()?;
    /// assert_eq!(out.stats().stage("square").unwrap().elements, 10);
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        let counting = self.region.report_allocs && alloc::is_counting();
        let stages = self
            .region
            .stages
            .iter()
            .map(|s| {
                use std::sync::atomic::Ordering::Relaxed;
                StageStats {
                    name: s.name.to_string(),
                    elements: s.elements.load(Relaxed),
                    busy: Duration::from_nanos(s.busy_ns.load(Relaxed)),
                    allocations: counting.then(|| s.allocs.load(Relaxed)),
                }
            })
            .collect();
        Stats { stages }
    }
}

impl<T> Drop for Stream<T> {
    fn drop(&mut self) {
        self.region.cancel();
        let mut guard = self.tail.lock();
        loop {
            self.signal.arm();
            if let Some(tail) = guard.as_mut() {
                while tail.poll() == Poll::Ready {
                    drop(tail.take());
                }
                tail.close();
            }
            self.region.watch(&self.signal);
            if self.region.is_finished() {
                return;
            }
            self.region.check_runtime();
            let done = || self.signal.is_set() || self.region.is_finished();
            if context::with_worker(|w| w.map(|w| w.help_until(&done, None, None))).is_none() {
                wait::until(&done, None);
            }
        }
    }
}

/// Iterator over a stream's tail elements; see [`Stream::iter`].
pub struct Iter<'a, T> {
    stream: &'a Stream<T>,
}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Iter")
    }
}

impl<T: Send + 'static> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.stream.next(None).unwrap_or(None)
    }
}

impl<'a, T: Send + 'static> IntoIterator for &'a Stream<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    /// `for x in &stream` reads the tail, as [`Stream::iter`].
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// What [`Stream::stats`] reports: one entry per stage, in block order.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// The stages, in the order the block wrote them.
    pub stages: Vec<StageStats>,
}

impl Stats {
    /// The stage named `name` (the `let`'s name, or the `name` option).
    pub fn stage(&self, name: &str) -> Option<&StageStats> {
        self.stages.iter().find(|s| s.name == name)
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<16} {:>12} {:>12} {:>14}", "stage", "elements", "busy", "allocs/elem")?;
        for s in &self.stages {
            let allocs = s.allocs_per_element().map_or_else(|| "-".to_owned(), |a| format!("{a:.3}"));
            writeln!(f, "{:<16} {:>12} {:>12?} {:>14}", s.name, s.elements, s.busy, allocs)?;
        }
        Ok(())
    }
}

/// One stage's counts.
#[derive(Clone, Debug, PartialEq)]
pub struct StageStats {
    /// The stage's name.
    pub name: String,
    /// Values it produced.
    pub elements: u64,
    /// Time its node spent running turns. Stages fused into one loop share
    /// their loop's time, so each of them reports the loop's total.
    pub busy: Duration,
    /// Allocations made inside its calls: `None` unless the region has
    /// `#![dirk(report_allocs)]` and [`alloc::Counting`] is the global allocator.
    pub allocations: Option<u64>,
}

impl StageStats {
    /// Allocations per element produced, when counted.
    pub fn allocs_per_element(&self) -> Option<f64> {
        self.allocations.map(|a| if self.elements == 0 { a as f64 } else { a as f64 / self.elements as f64 })
    }
}
