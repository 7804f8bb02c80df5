//! Spawning: build a task cell, join the current group, register with the
//! inputs, and queue the task once they are all complete.
//!
//! Registration protocol: `pending` starts at a large guard value. Each input
//! that accepts the task as a listener counts one; inputs that complete
//! meanwhile subtract one each. When registration ends the spawner subtracts
//! the guard less the registered count, and whoever brings `pending` to zero
//! schedules the task, so it is queued exactly once, after its last input.

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use super::cell::{Body, new_task, schedule, tell};
use super::listeners::Listener;
use super::raw::{HeaderInit, TaskRef};
use super::{Task, TaskId};
use crate::error::{Error, ScopeError};
use crate::exec::{self, Shared, context};
use crate::sched::{Options, Placement};

const GUARD: u32 = u32::MAX / 2;

/// A body that is a closure with no inputs.
pub(crate) struct Closure<F>(pub(crate) F);

impl<F, R> Body for Closure<F>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + Sync + 'static,
{
    type Output = R;

    fn for_each_input(&self, _: &mut dyn FnMut(&TaskRef)) {}

    fn call(self) -> R {
        (self.0)()
    }
}

/// Spawns `body` on the current runtime with the given per-spawn options on
/// top of the ones inherited from `with_options` and the running task.
pub(crate) fn spawn_body<B: Body>(options: Option<Options>, default_name: &'static str, body: B) -> Task<B::Output> {
    spawn_body_on(exec::current(), options, default_name, body)
}

/// [`spawn_body`] on a given runtime.
pub(crate) fn spawn_body_on<B: Body>(
    rt: &'static Shared,
    options: Option<Options>,
    default_name: &'static str,
    body: B,
) -> Task<B::Output> {
    let inherited = context::options();
    let mut scope = None;
    let mut name = None;
    for o in [options.as_ref(), inherited.as_deref()].into_iter().flatten() {
        scope = scope.or_else(|| o.scope.clone());
        name = name.or_else(|| o.name.clone());
    }
    let placement = rt.place(scope.as_ref());
    let group = context::group();
    if let Some(group) = group {
        group.join();
    }
    let mut has_inputs = false;
    body.for_each_input(&mut |_| has_inputs = true);
    let init = HeaderInit {
        id: TaskId::next(),
        rt,
        placement: placement.as_ref().copied().unwrap_or(Placement::Any),
        group,
        options: inherited,
        name: name.unwrap_or(Cow::Borrowed(default_name)),
    };
    let (handle, queued) = new_task(init, body, GUARD);
    let refused = match placement {
        Err(reason) => {
            let h = queued.header();
            Some(Error::Scope(ScopeError {
                task: h.id,
                name: h.name.clone(),
                scope: scope.as_ref().map_or_else(|| "Scope::any()".to_owned(), ToString::to_string),
                reason,
            }))
        }
        Ok(_) => rt.config_error.clone(),
    };
    match refused {
        Some(error) => {
            if let Some(completion) = queued.header().fail(error) {
                tell(completion);
            }
            queued.run();
        }
        None if !has_inputs => rt.schedule(queued),
        None => register(queued),
    }
    // SAFETY: the cell was built for `B`, whose value type is `B::Output`.
    unsafe { Task::from_raw(handle) }
}

/// Registers `task` with each of its inputs, then releases the guard.
fn register(task: TaskRef) {
    let mut registered = 0;
    let mut failed = None;
    task.for_each_input(&mut |input| {
        let h = input.header();
        match h.listeners.register(&h.state, Listener::Dependent(task.clone())) {
            Ok(()) => registered += 1,
            Err(_) => {
                if failed.is_none() {
                    failed = h.error().cloned();
                }
            }
        }
    });
    if let Some(error) = failed {
        let h = task.header();
        if let Some(completion) = h.fail(Error::upstream(h.id, h.name.clone(), &error)) {
            tell(completion);
        }
    }
    let release = GUARD - registered;
    if task.header().pending.fetch_sub(release, Ordering::AcqRel) == release {
        schedule(task);
    }
}

/// Spawns a closure with no inputs and returns its handle at once.
///
/// The closure-taking form of [`spawn!`](crate::spawn!): options inherited
/// from [`with_options`](crate::with_options) apply, and the task's name is
/// the closure's type name.
///
/// ```
/// let t = dirk::spawn(|| 6 * 7);
/// assert_eq!(t.fetch()?, 42);
/// # Ok::<(), dirk::Error>(())
/// ```
pub fn spawn<F, R>(f: F) -> Task<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + Sync + 'static,
{
    spawn_body(None, std::any::type_name::<F>(), Closure(f))
}
