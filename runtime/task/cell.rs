//! The task cell: one allocation per task holding its [`Header`], its value
//! once it succeeded, and its body until it runs.
//!
//! ```text
//! #[repr(C)] Cell<T, B> { Prefix<T> { header: Header, value: T }, body: Option<B> }
//! ```
//!
//! The value sits right after the header, so a handle that knows only `T`
//! finds it; the body comes last. Who touches what (bits in
//! [`state`](super::state)):
//!
//! - `body` is taken by the single party that sets `RUNNING`;
//! - `value` is written by the runner *before* it claims `FINISHING`, and
//!   published together with `COMPLETE` in one compare-and-swap. If a
//!   cancellation claimed `FINISHING` first, the runner drops the value
//!   itself, so `value` is initialised exactly when the state is `COMPLETE`
//!   without `FAILED` or `TAKEN`;
//! - a failure is written to the header by whoever claims `FINISHING` for it.
//!
//! Ownership: the cell is counted by [`TaskRef`]s held by user handles, the
//! run queue, listener lists and consumers' argument slots; the last one
//! frees it, value included.

use std::alloc::Layout;
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;

use super::alloc;
use super::listeners::{Listener, Taken};
use super::raw::{Header, HeaderInit, TaskRef, VTable};
use super::state::{BODY_DONE, COMPLETE, ELSEWHERE, FAILED, FINISHING, LISTENERS, RUNNING, TAKEN};
use crate::error::Error;
use crate::exec::context;
use crate::trace;

/// What a task does when it runs: a call with its argument slots, or a
/// closure. `for_each_input` lists the tasks whose results it reads.
pub(crate) trait Body: Send + 'static {
    type Output: Send + Sync + 'static;
    fn for_each_input(&self, f: &mut dyn FnMut(&TaskRef));
    fn call(self) -> Self::Output;
    /// How to run this body in another process, when it can be.
    fn remote(&self) -> Option<&dyn super::remote::RemoteCall> {
        None
    }
    /// Whether this body records its run in the trace itself: a helper
    /// that runs another task's function records that task's run (with
    /// [`record_run`]) before it completes that task, so that whoever
    /// waits for the task finds the run in a trace that ends then.
    fn traces_itself(&self) -> bool {
        false
    }
}

#[repr(C)]
struct Prefix<T> {
    header: Header,
    value: UnsafeCell<MaybeUninit<T>>,
}

#[repr(C)]
struct Cell<B: Body> {
    prefix: Prefix<B::Output>,
    body: UnsafeCell<Option<B>>,
}

impl<B: Body> Cell<B> {
    const VTABLE: VTable =
        VTable { run: run::<B>, for_each_input: for_each_input::<B>, remote: Some(remote::<B>), dealloc: dealloc::<B> };
}

/// Builds a task cell; returns two references (the handle's and the queue's).
/// The cell counts `extra` more references for the caller to take with
/// [`TaskRef::counted`].
pub(crate) fn new_task<B: Body>(init: HeaderInit, body: B, pending: u32, extra: usize) -> (TaskRef, TaskRef) {
    let (memory, origin) = alloc::allocate(Layout::new::<Cell<B>>());
    let cell = memory.cast::<Cell<B>>().as_ptr();
    // The fields are written one by one, in place: a whole `Cell` built
    // first would be copied in, its uninitialised value included.
    // SAFETY: `memory` is fresh, sized and aligned for `Cell<B>`; the value
    // stays uninitialised, as a `MaybeUninit` may.
    unsafe {
        (&raw mut (*cell).prefix.header).write(Header::new(init, &Cell::<B>::VTABLE, origin, pending, extra));
        (&raw mut (*cell).body).write(UnsafeCell::new(Some(body)));
    }
    let ptr = memory.cast::<Header>();
    // SAFETY: the header starts the cell (`repr(C)`) and counts two references.
    unsafe { (TaskRef::from_raw(ptr), TaskRef::from_raw(ptr)) }
}

/// The result of a complete task, typed: `None` while it is not complete.
///
/// # Safety
///
/// `task` was built with value type `T`.
pub(crate) unsafe fn result<T>(task: &TaskRef) -> Option<Result<&T, &Error>> {
    let header = task.header();
    let state = header.state.load();
    if state & (COMPLETE | ELSEWHERE) != COMPLETE {
        return None;
    }
    if state & FAILED != 0 {
        return Some(Err(header.error().expect("a failed task stores its error")));
    }
    debug_assert_eq!(state & TAKEN, 0, "a taken value is never read again");
    // SAFETY: the cell's value type is `T` (caller), `Prefix<T>` starts the
    // cell, and COMPLETE without FAILED (seen with acquire ordering) means
    // the value was written and published.
    Some(Ok(unsafe { (*prefix::<T>(task).as_ref().value.get()).assume_init_ref() }))
}

/// Moves the value out of a successful task when `task` is the only
/// reference to it.
///
/// # Safety
///
/// `task` was built with value type `T`.
pub(crate) unsafe fn take_value<T>(task: &TaskRef) -> Option<T> {
    let header = task.header();
    if !task.is_unique() || header.state.load() & (COMPLETE | FAILED | TAKEN | ELSEWHERE) != COMPLETE {
        return None;
    }
    header.state.set(TAKEN);
    // SAFETY: `task` is the only reference, so nobody else reads the value;
    // it is initialised (checked above) and TAKEN keeps `dealloc` from
    // dropping it again. The value type is `T` (caller).
    Some(unsafe { (*prefix::<T>(task).as_ref().value.get()).assume_init_read() })
}

fn prefix<T>(task: &TaskRef) -> NonNull<Prefix<T>> {
    task.as_ptr().cast()
}

unsafe fn run<B: Body>(task: TaskRef) {
    // SAFETY: this vtable entry is only reachable from a `Cell<B>`.
    let cell = unsafe { task.as_ptr().cast::<Cell<B>>().as_ref() };
    let header = &cell.prefix.header;
    let prev = header.state.set(RUNNING);
    debug_assert_eq!(prev & RUNNING, 0, "task {} ran twice", header.id);
    // SAFETY: we set RUNNING, so nobody else touches the body.
    let body = unsafe { (*cell.body.get()).take() };
    if prev & FINISHING != 0 {
        // Failed before it started: `fail` set BODY_DONE and left the group.
        drop_quietly(body);
        return;
    }
    let Some(body) = body else { return };
    let traced = (trace::record::on() && !body.traces_itself()).then(trace::record::run_start);
    let outcome = {
        let _running = context::enter_task(header);
        catch_unwind(AssertUnwindSafe(|| body.call()))
    };
    if let Some(start) = traced {
        record_run(header, start, outcome.is_err());
    }
    match outcome {
        // SAFETY: the value type of this cell is `B::Output`.
        Ok(value) => unsafe { succeed(task, &cell.prefix, value) },
        Err(payload) => {
            let error = Error::panicked(header.id, header.name.clone(), &*payload);
            drop_quietly(payload);
            end_failed(task, error);
        }
    }
}

/// Stores and publishes a body's value, unless the task was cancelled while
/// it ran.
///
/// # Safety
///
/// `prefix` is the prefix of `task`'s cell, whose body was run by the caller.
unsafe fn succeed<T>(task: TaskRef, prefix: &Prefix<T>, value: T) {
    let header = &prefix.header;
    // SAFETY: only the runner writes `value`, and nobody reads it before the
    // COMPLETE published below.
    unsafe { (*prefix.value.get()).write(value) };
    let published = header.state.update(|s| (s & FINISHING == 0).then_some(s | FINISHING | BODY_DONE | COMPLETE));
    match published {
        Ok(prev) => {
            header.leave_group();
            if prev & LISTENERS != 0 {
                let listeners = header.listeners.take(&header.state);
                drop(task);
                tell(Completion { listeners, failure: None });
            }
        }
        Err(_) => {
            // Cancelled while running: the canceller wrote the result, and
            // the value we just stored is nobody's.
            // SAFETY: written above; FAILED keeps everyone else away from it.
            drop_quietly(unsafe { (*prefix.value.get()).assume_init_read() });
            if header.state.set(BODY_DONE) & COMPLETE != 0 {
                header.leave_group();
            }
        }
    }
}

unsafe fn for_each_input<B: Body>(header: &Header, f: &mut dyn FnMut(&TaskRef)) {
    // SAFETY: this vtable entry is only reachable from a `Cell<B>`.
    let cell = unsafe { NonNull::from(header).cast::<Cell<B>>().as_ref() };
    // SAFETY: called by the spawner before the task can run (its pending
    // guard is held), so nobody takes the body concurrently.
    if let Some(body) = unsafe { (*cell.body.get()).as_ref() } {
        body.for_each_input(f);
    }
}

unsafe fn remote<B: Body>(header: &Header) -> Option<&dyn super::remote::RemoteCall> {
    // SAFETY: this vtable entry is only reachable from a `Cell<B>`.
    let cell = unsafe { NonNull::from(header).cast::<Cell<B>>().as_ref() };
    // SAFETY: called by whoever holds the task before it runs (the spawner,
    // or the scheduler placing it), or by the cluster after it set RUNNING
    // for a body that runs elsewhere: nobody takes the body concurrently.
    unsafe { (*cell.body.get()).as_ref() }.and_then(Body::remote)
}

unsafe fn dealloc<B: Body>(ptr: NonNull<Header>) {
    let cell = ptr.cast::<Cell<B>>().as_ptr();
    // SAFETY: the last reference is gone; the cell is initialised and ours.
    unsafe {
        let header = &(*cell).prefix.header;
        let origin = header.origin;
        if header.state.load() & (COMPLETE | FAILED | TAKEN | ELSEWHERE) == COMPLETE {
            (*(*cell).prefix.value.get()).assume_init_drop();
        }
        std::ptr::drop_in_place((*cell).body.get());
        Header::drop_in_place(ptr);
        alloc::free(ptr.cast(), Layout::new::<Cell<B>>(), origin);
    }
}

/// Records a traced run of `header`'s body that started at `start`.
#[cold]
pub(crate) fn record_run(header: &Header, start: u64, failed: bool) {
    let ran = trace::record::Ran {
        task: header.id.0,
        name: trace::record::static_name(&header.name),
        spawned: header.spawned_at,
        worker: crate::current_worker() as u32,
        thread: crate::current_thread().map_or(u32::MAX, |t| t as u32),
        failed,
    };
    trace::record::run_end(start, &ran);
}

/// Claims a task whose body runs in another process: sets `RUNNING`, and
/// returns `false` when the task was already failed or cancelled (then
/// nothing is to run; the body is dropped with the cell).
pub(crate) fn start_elsewhere(task: &TaskRef) -> bool {
    task.header().state.set(RUNNING) & FINISHING == 0
}

/// Gives a task claimed by [`start_elsewhere`] back, to be run again from
/// the start (its first run was lost with its process).
pub(crate) fn restart(task: &TaskRef) {
    task.header().state.clear(RUNNING);
}

/// Ends a task claimed by [`start_elsewhere`] with its value, brought here.
///
/// # Safety
///
/// `task` was built with value type `T`, and the caller claimed it.
pub(crate) unsafe fn succeed_elsewhere<T>(task: TaskRef, value: T) {
    let prefix = prefix::<T>(&task);
    // SAFETY: the value type is `T` and we are the runner (caller); the
    // prefix lives as long as `task`, which `succeed` holds.
    unsafe { succeed(task, prefix.as_ref(), value) }
}

/// Ends a task claimed by [`start_elsewhere`] that succeeded in another
/// process, which keeps its value.
pub(crate) fn complete_elsewhere(task: TaskRef) {
    let header = task.header();
    let bits = FINISHING | BODY_DONE | COMPLETE | ELSEWHERE;
    match header.state.update(|s| (s & FINISHING == 0).then_some(s | bits)) {
        Ok(prev) => {
            header.leave_group();
            if prev & LISTENERS != 0 {
                let listeners = header.listeners.take(&header.state);
                drop(task);
                tell(Completion { listeners, failure: None });
            }
        }
        Err(_) => {
            // Cancelled while it ran: the canceller wrote the result.
            if header.state.set(BODY_DONE) & COMPLETE != 0 {
                header.leave_group();
            }
        }
    }
}

/// Ends a task claimed by [`start_elsewhere`] with a failure.
pub(crate) fn fail_elsewhere(task: TaskRef, error: Error) {
    end_failed(task, error);
}

/// Ends a task whose body this side ran (here or elsewhere) with a failure,
/// unless it was already failed (cancelled) meanwhile.
fn end_failed(task: TaskRef, error: Error) {
    let header = task.header();
    let prev = header.state.set(FINISHING | BODY_DONE);
    if prev & FINISHING != 0 {
        if prev & COMPLETE != 0 {
            header.leave_group();
        }
        return;
    }
    let completion = header.complete_failed(error);
    drop(task);
    tell(completion);
}

/// Writes the value of a task ended by [`complete_elsewhere`], once
/// it was brought here, and makes it readable.
///
/// # Safety
///
/// `task` was built with value type `T`; its state has `ELSEWHERE`; the
/// caller is the only party writing it (the cluster's single pull).
pub(crate) unsafe fn fill_elsewhere<T>(task: &TaskRef, value: T) {
    // SAFETY: ELSEWHERE means nobody reads the value slot (see `result`),
    // and the caller is its only writer.
    unsafe { (*prefix::<T>(task).as_ref().value.get()).write(value) };
    task.header().state.clear(ELSEWHERE);
}

/// Drops a body, value or panic payload nobody needs, keeping a panic in a
/// user's `Drop` from unwinding into the runtime.
fn drop_quietly<T>(value: T) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
}

/// A finished task's listeners and, when it failed, its error: the work
/// [`tell`] does after the task's own state is settled.
pub(crate) struct Completion {
    pub(crate) listeners: Taken,
    pub(crate) failure: Option<Error>,
}

/// Tells the listeners of a completed task. A failure fails every dependent
/// in turn; that cascade uses a work list, not recursion, so a failure at
/// the head of a million-task chain does not overflow the stack.
pub(crate) fn tell(first: Completion) {
    let Completion { listeners, failure } = first;
    let Some(error) = failure else {
        // The common case: no failure to pass on, nothing to queue up.
        return tell_each(listeners, None, &mut Vec::new());
    };
    let mut work = Vec::new();
    tell_each(listeners, Some(&error), &mut work);
    while let Some(Completion { listeners, failure }) = work.pop() {
        tell_each(listeners, failure.as_ref(), &mut work);
    }
}

/// Tells one completion's listeners; dependents failed by `failure` add
/// their own completions to `work`.
#[inline]
fn tell_each(listeners: Taken, failure: Option<&Error>, work: &mut Vec<Completion>) {
    for listener in listeners {
        match listener {
            Listener::Dependent(task) => {
                if let Some(error) = failure {
                    let h = task.header();
                    if let Some(c) = h.fail(Error::upstream(h.id, h.name.clone(), error)) {
                        work.push(c);
                    }
                }
                input_done(task);
            }
            Listener::Thread(thread) => thread.unpark(),
            Listener::Waker(waker) => waker.wake(),
        }
    }
}

/// One input of `task` completed; schedules it when it was the last.
pub(crate) fn input_done(task: TaskRef) {
    if task.header().pending.fetch_sub(1, Ordering::AcqRel) == 1 {
        schedule(task);
    }
}

/// Queues a task whose inputs are all complete. A task already failed only
/// needs its body dropped, which happens here rather than in a queue.
pub(crate) fn schedule(task: TaskRef) {
    if task.header().state.load() & FINISHING != 0 {
        task.run();
    } else {
        let rt = task.header().rt;
        rt.schedule(task);
    }
}
