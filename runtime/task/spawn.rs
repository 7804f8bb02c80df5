//! Spawning: build a task cell, join the current group, register with the
//! inputs, and queue the task once they are all complete.
//!
//! Registration protocol: `pending` starts at the number of inputs. For each
//! input the spawner either registers the task as a listener (the input's
//! completion will subtract one) or, when the input is already complete,
//! subtracts one itself. Whoever brings `pending` to zero schedules the task,
//! so it is queued exactly once, after its last input. That can only happen
//! once every input was handled, and the spawner touches nothing of the task
//! after handling the last one.

use std::borrow::Cow;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;

use smallvec::SmallVec;

use super::cell::{Body, new_task, schedule, tell};
use super::listeners::Listener;
use super::raw::{Header, HeaderInit, TaskRef};
use super::slots::{Arg, ArgTasks, Call, PassAs, Tasks};
use super::{Task, TaskId};
use crate::error::{Error, ScopeError};
use crate::exec::{self, Shared, context};
use crate::sched::{Options, Placement};
use crate::trace;

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
    spawn_counted_on(rt, options, default_name, body, 0, false)
}

/// [`spawn_body`] for a task with no inputs that runs before the work
/// queued so far (see `Shared::schedule_urgent`).
pub(crate) fn spawn_urgent<B: Body>(options: Option<Options>, default_name: &'static str, body: B) -> Task<B::Output> {
    spawn_counted_on(exec::current(), options, default_name, body, 0, true)
}

/// [`spawn_body`] for a task that counts `extra` more references, for the
/// caller to take with [`TaskRef::counted`] (all of them, whatever becomes
/// of the task): cheaper than cloning its handle that many times.
pub(crate) fn spawn_counted<B: Body>(
    options: Option<Options>,
    default_name: &'static str,
    body: B,
    extra: usize,
) -> Task<B::Output> {
    spawn_counted_on(exec::current(), options, default_name, body, extra, false)
}

fn spawn_counted_on<B: Body>(
    rt: &'static Shared,
    options: Option<Options>,
    default_name: &'static str,
    body: B,
    extra: usize,
    urgent: bool,
) -> Task<B::Output> {
    let inherited = context::options();
    let mut scope = None;
    let mut name = None;
    for o in [options.as_ref(), inherited.as_deref()].into_iter().flatten() {
        scope = scope.or_else(|| o.scope.clone());
        name = name.or_else(|| o.name.clone());
    }
    let placement = rt.place(scope.as_ref()).and_then(|p| match p {
        Placement::Workers { mask, .. } if mask & 1 == 0 && body.remote().is_none() => Err(NOT_REMOTE.to_owned()),
        p => Ok(p),
    });
    let group = context::join_group();
    let mut inputs = 0u32;
    body.for_each_input(&mut |_| inputs += 1);
    let init = HeaderInit {
        id: TaskId::next(),
        rt,
        placement: placement.as_ref().copied().unwrap_or(Placement::Any),
        group,
        options: inherited,
        name: name.unwrap_or(Cow::Borrowed(default_name)),
        spawned_at: if trace::record::on() { trace::record::spawn_time() } else { 0 },
    };
    let (handle, queued) = new_task(init, body, inputs, extra);
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
        Ok(_) => rt.config_error().cloned(),
    };
    match refused {
        Some(error) => {
            if let Some(completion) = queued.header().fail(error) {
                tell(completion);
            }
            queued.run();
        }
        None if inputs == 0 && urgent => rt.schedule_urgent(queued),
        None if inputs == 0 => rt.schedule(queued),
        None => {
            // Before registering: until then nothing else touches the task.
            if let Some(router) = rt.router() {
                router.send_ahead(&queued);
            }
            register(queued)
        }
    }
    // SAFETY: the cell was built for `B`, whose value type is `B::Output`.
    unsafe { Task::from_raw(handle) }
}

/// Why a body cannot go to the worker processes its scope names.
const NOT_REMOTE: &str = "only a #[task] function whose arguments and result archive (rkyv) runs on another worker, \
                          and this is a closure, a function without #[task], or a #[task] with a value that does not";

/// Registers `task` with each of its inputs (see the module note).
fn register(task: TaskRef) {
    // Collect first: once the last input is handled the task may run and
    // take its body, so the body must not be read while registering.
    let mut inputs: SmallVec<[NonNull<Header>; 4]> = SmallVec::new();
    task.for_each_input(&mut |input| inputs.push(input.as_ptr()));
    for input in inputs {
        // SAFETY: the task's body holds a reference to every input, and the
        // body lives until the task runs, which needs this input handled.
        let h = unsafe { input.as_ref() };
        if trace::record::on() {
            trace::record::record(trace::record::Event::Edge { from: h.id.0, to: task.header().id.0 });
        }
        if h.listeners.register(&h.state, Listener::Dependent(task.clone())).is_ok() {
            continue;
        }
        if let Some(error) = h.error() {
            let me = task.header();
            if let Some(completion) = me.fail(Error::upstream(me.id, me.name.clone(), error)) {
                tell(completion);
            }
        }
        if task.header().pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            return schedule(task);
        }
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

/// One task whose result is the results of `tasks`, in order: it runs
/// when they have all succeeded, and fails with [`Error::Upstream`] when
/// one of them failed.
///
/// Each value is moved when the new task holds its last reference (the
/// handles given here are consumed), cloned otherwise. To hand the results
/// to a function of your own, pass the `Vec<Task<T>>` itself:
/// `spawn!(f(tasks))` gives `f` a `Vec<T>`, `&[T]`, `&Vec<T>`, `Vec<&T>`
/// or `&[&T]`, as it declares.
///
/// ```
/// use dirk::prelude::*;
///
/// #[task]
/// fn square(x: u64) -> u64 { x * x }
///
/// let parts: Vec<Task<u64>> = (1..=4).map(|i| spawn!(square(i))).collect();
/// assert_eq!(dirk::join_all(parts).fetch()?, [1, 4, 9, 16]);
/// # Ok::<(), dirk::Error>(())
/// ```
pub fn join_all<T>(tasks: impl IntoIterator<Item = Task<T>>) -> Task<Vec<T>>
where
    T: Clone + Send + Sync + 'static,
{
    let handles: Tasks<T> = Arg::new(tasks.into_iter().collect::<Vec<_>>()).dirk_slot();
    let call = Call::new((handles, ()), |(mut handles, ()): (Tasks<T>, ())| -> Vec<T> { handles.provide() });
    spawn_body(None, "join_all", call)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::{Closure, spawn_body, spawn_urgent};
    use crate::exec::{Pool, PoolConfig};

    /// Where an urgent task spawned before three local ones runs.
    fn order(urgent: bool) -> Vec<i32> {
        let rt = Pool::start(PoolConfig { urgent, ..PoolConfig::new(1) }).unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let o = order.clone();
        rt.shared().run(move || {
            // Spawned first, from the one worker thread...
            let o2 = o.clone();
            let urgent = spawn_urgent(None, "urgent", Closure(move || o2.lock().unwrap().push(99)));
            // ...before these, which go on its own deque (last in, first out).
            let local: Vec<_> = (0..3)
                .map(|i| {
                    let o = o.clone();
                    spawn_body(None, "local", Closure(move || o.lock().unwrap().push(i)))
                })
                .collect();
            for t in local {
                t.wait().unwrap();
            }
            urgent.wait().unwrap();
        });
        order.lock().unwrap().clone()
    }

    #[test]
    fn an_urgent_task_runs_before_the_work_its_thread_queued_itself() {
        assert_eq!(order(true), [99, 2, 1, 0]);
    }

    #[test]
    fn without_an_urgent_queue_an_urgent_task_queues_as_others_do() {
        assert_eq!(order(false), [2, 1, 0, 99]);
    }
}
