//! The region of one `datadeps!` block: where its tasks are made, and the
//! wait that ends it.
//!
//! Protocol of [`run`]:
//!
//! 1. Open a `dirk::sync` group, so that every task made inside (datadeps
//!    tasks, `spawn!`s, and what they spawn) is waited for and the first
//!    failure in spawn order is the block's error.
//! 2. Run the block's closure with a [`Region`]. Each task call evaluates its
//!    places, asks each root's tracker for the earlier tasks it conflicts
//!    with (or takes the list the macro planned at compile time), and spawns
//!    a [`DepsBody`] that runs after them and holds the region's latch.
//! 3. When the closure returns or unwinds, wait for the latch: every body
//!    has been dropped, so nothing borrowed is used any more (`body.rs`).
//! 4. `sync` then waits for its group and returns the value, the first
//!    error, or resumes the closure's panic.

use std::cell::Cell;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::resume_unwind;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use super::body::{DepsBody, Job, Latch};
use super::place::AccessInfo;
use super::root::Root;
use super::tracker::{Change, Tasks, body_done};
use crate::Error;
use crate::exec::wait::{self, Awaited};
use crate::task::Task;
use crate::task::raw::TaskRef;
use crate::task::slots::Slots;
use crate::task::spawn::{spawn_body, spawn_counted};

/// The tasks of one `datadeps!` block. Only the macro's code uses it.
pub struct Region<'scope, 'env: 'scope> {
    /// On a cache line of its own: every finishing task writes it, while
    /// the region's thread writes the fields beside it at every call.
    latch: CachePadded<Latch>,
    /// Latch holds reserved by this thread (see `Latch::hold`).
    credits: Cell<usize>,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
    /// Trackers are not thread-safe: the region stays on its thread.
    single_thread: PhantomData<*const ()>,
}

impl std::fmt::Debug for Region<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Region")
    }
}

/// Runs a `datadeps!` block: `f` makes the tasks; returns once all of them
/// (and everything they spawned) have ended. See the module note.
pub fn run<'env, R>(f: impl for<'scope> FnOnce(&'scope Region<'scope, 'env>) -> R) -> Result<R, Error> {
    let region = Region {
        latch: CachePadded::new(Latch::new()),
        credits: Cell::new(0),
        scope: PhantomData,
        env: PhantomData,
        single_thread: PhantomData,
    };
    crate::sync(|| {
        let _finish = Finish(&region.latch, &region.credits);
        f(&region)
    })
}

/// Waits for the latch when dropped, also while unwinding.
struct Finish<'a>(&'a Latch, &'a Cell<usize>);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.finish(self.1);
    }
}

/// A planned task's reference, kept so later calls can run after it.
#[derive(Debug)]
pub struct Kept(TaskRef);

impl<'scope, 'env> Region<'scope, 'env> {
    /// Borrows a root that some place writes, for the whole region.
    pub fn root_mut<T: ?Sized>(&'scope self, root: &'scope mut T) -> (&'scope mut T, Root) {
        (root, Root::tracked())
    }

    /// Borrows a root that places only read, for the whole region.
    pub fn root_ref<T: ?Sized>(&'scope self, root: &'scope T) -> (&'scope T, Root) {
        (root, Root::read_only())
    }

    /// Makes the task of one call, ordered by the roots' trackers.
    pub fn call<const N: usize, S, F, R>(
        &'scope self,
        name: &'static str,
        accesses: [AccessInfo<'_>; N],
        slots: S,
        f: F,
    ) -> Task<R>
    where
        S: Slots + Send + 'scope,
        F: FnOnce(S) -> R + Send + 'scope,
        R: Send + Sync + 'static,
    {
        let Some(task) = self.make(name, accesses, None, slots, f, false) else {
            unreachable!("a call that keeps its handle gets it")
        };
        task
    }

    /// Makes the task of one call whose value nobody takes (a call
    /// statement `f(..);`), ordered by the roots' trackers. No handle is
    /// made: the tracker's records are the only references besides the
    /// queue's, which saves touching the task once more while it runs.
    pub fn call_detached<const N: usize, S, F, R>(
        &'scope self,
        name: &'static str,
        accesses: [AccessInfo<'_>; N],
        slots: S,
        f: F,
    ) where
        S: Slots + Send + 'scope,
        F: FnOnce(S) -> R + Send + 'scope,
        R: Send + Sync + 'static,
    {
        drop(self.make(name, accesses, None, slots, f, true));
    }

    /// Makes the task of one call that the macro ordered at compile time: it
    /// runs after the tasks in `after`, and no tracker is consulted.
    pub fn call_planned<const N: usize, const M: usize, S, F, R>(
        &'scope self,
        name: &'static str,
        after: [&Kept; M],
        accesses: [AccessInfo<'_>; N],
        slots: S,
        f: F,
    ) -> Task<R>
    where
        S: Slots + Send + 'scope,
        F: FnOnce(S) -> R + Send + 'scope,
        R: Send + Sync + 'static,
    {
        let Some(task) = self.make(name, accesses, Some(&after), slots, f, false) else {
            unreachable!("a call that keeps its handle gets it")
        };
        task
    }

    /// Keeps a reference to a planned task for later calls.
    pub fn keep<R>(&self, task: &Task<R>) -> Kept {
        Kept(task.raw.clone())
    }

    /// Waits until the body of a planned task has ended: the macro calls it
    /// before evaluating a place whose headers that task may write.
    pub fn settle(&self, task: &Kept) {
        settle_body(&task.0);
    }

    /// Makes the task of one call; hands back its handle unless `detach`
    /// and the tracker holds the task (its last record takes the handle's
    /// reference).
    fn make<const N: usize, S, F, R>(
        &'scope self,
        name: &'static str,
        accesses: [AccessInfo<'_>; N],
        planned: Option<&[&Kept]>,
        slots: S,
        f: F,
        detach: bool,
    ) -> Option<Task<R>>
    where
        S: Slots + Send + 'scope,
        F: FnOnce(S) -> R + Send + 'scope,
        R: Send + Sync + 'static,
    {
        if let Some(message) = refusal(name, &accesses) {
            let fail = move || -> R {
                drop((slots, f));
                resume_unwind(Box::new(message))
            };
            // SAFETY: the job is dropped inside a body holding this region's
            // latch; the region outlives 'scope (body.rs).
            let job = unsafe { Job::new(fail) };
            return Some(spawn_body(None, name, DepsBody::new(job, Tasks::new(), self.latch.hold(&self.credits))));
        }
        let mut after = Tasks::new();
        slots.each_input(&mut |input| after.push(input.0.clone()));
        // Filled in place: a plan is moved nowhere between query and register.
        let mut plans: [Change; N] = std::array::from_fn(|_| Change::default());
        let mut records = 0;
        match planned {
            Some(kept) => after.extend(kept.iter().map(|k| k.0.clone())),
            None => {
                for (a, plan) in accesses.iter().zip(&mut plans) {
                    if let Some(tracker) = a.tracker {
                        tracker.borrow().query(&a.access(), plan, &mut after);
                        records += 1;
                    }
                }
            }
        }
        if after.len() > 1 {
            dedup(&mut after);
        }
        // SAFETY: as above.
        let job = unsafe { Job::new(move || f(slots)) };
        // Each tracker record of the task holds a reference, counted when it
        // is built; a detached call's handle gives its own to the last one.
        let hand_over = detach && records > 0;
        let body = DepsBody::new(job, after, self.latch.hold(&self.credits));
        // Not dropped by an unwind from `register`: its reference may have
        // been given to a record already (a leak is the worst outcome).
        let task = ManuallyDrop::new(spawn_counted(None, name, body, records - usize::from(hand_over)));
        if planned.is_none() {
            for (access, plan) in accesses.iter().zip(&plans) {
                let Some(tracker) = access.tracker else { continue };
                // SAFETY: one of the references counted for the records,
                // the last one being the handle's when it is handed over (the
                // handle is then never dropped).
                let record = unsafe { task.raw.counted() };
                tracker.borrow_mut().register(&access.access(), plan, record);
            }
        }
        (!hand_over).then(|| ManuallyDrop::into_inner(task))
    }
}

/// Why a call cannot run: a place out of range, or two places of the call
/// that overlap while one is written.
fn refusal(name: &str, accesses: &[AccessInfo<'_>]) -> Option<String> {
    for a in accesses {
        if let Some(error) = &a.error {
            return Some(format!("`{}` of `{name}`: {error}", a.what));
        }
    }
    for (i, a) in accesses.iter().enumerate() {
        for b in &accesses[i + 1..] {
            if a.aliases(b) {
                return Some(format!(
                    "`{}` and `{}` of `{name}` overlap in memory and one of them is written: \
                     a task cannot borrow the same memory twice when it writes it",
                    a.what, b.what
                ));
            }
        }
    }
    None
}

fn dedup(tasks: &mut Tasks) {
    let mut i = 0;
    while i < tasks.len() {
        let ptr = tasks[i].as_ptr();
        if tasks[..i].iter().any(|t| t.as_ptr() == ptr) {
            tasks.swap_remove(i);
        } else {
            i += 1;
        }
    }
}

/// Waits until `task`'s body will not touch memory any more.
pub(crate) fn settle_body(task: &TaskRef) {
    if body_done(task) {
        return;
    }
    let header = task.header();
    wait::until(&|| header.state.is_complete(), Some(Awaited { header, deadline: None }));
    settle_cancelled(task);
}

/// A task cancelled while running is complete before its body returns.
#[cold]
fn settle_cancelled(task: &TaskRef) {
    while !body_done(task) {
        std::thread::sleep(Duration::from_micros(50));
    }
}
