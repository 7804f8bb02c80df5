//! Type-erased tasks: the [`Header`] every task cell starts with, the
//! [`VTable`] of the operations that need the cell's types, and [`TaskRef`],
//! the reference-counted pointer that queues, listener lists, argument slots
//! and user handles hold.
//!
//! A `TaskRef` is one pointer wide. Cloning it adds a reference; dropping
//! the last reference drops the cell's contents and frees its memory through
//! the vtable.

use std::cell::UnsafeCell;
use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering, fence};

use super::TaskId;
use super::alloc::Origin;
use super::cell::Completion;
use super::group::GroupRef;
use super::listeners::Listeners;
use super::state::{BODY_DONE, COMPLETE, FAILED, LISTENERS, State};
use crate::error::{Error, Name};
use crate::exec::Shared;
use crate::sched::{Options, Placement};

/// A visitor of a task's inputs.
pub(crate) type InputVisitor<'a> = &'a mut dyn FnMut(&TaskRef);

/// Reads a body's remote form (see [`VTable::remote`]).
pub(crate) type RemoteFn = unsafe fn(&Header) -> Option<&dyn super::remote::RemoteCall>;

/// The operations on a task that depend on its value and body types.
pub(crate) struct VTable {
    /// Runs (or, when it was failed first, discards) the body; consumes the reference.
    pub(crate) run: unsafe fn(TaskRef),
    /// Lists the tasks the body reads.
    pub(crate) for_each_input: unsafe fn(&Header, InputVisitor<'_>),
    /// How to run the body in another process, if it can be (`None`: no
    /// body of this kind can).
    pub(crate) remote: Option<RemoteFn>,
    /// Drops the cell's contents and frees it.
    pub(crate) dealloc: unsafe fn(NonNull<Header>),
}

/// The part of a task cell the runtime reads without knowing the cell's
/// types. Always the first field of a cell (`#[repr(C)]`).
#[repr(C)]
pub(crate) struct Header {
    pub(crate) state: State,
    /// Inputs not yet complete, plus a guard while the spawner registers.
    pub(crate) pending: AtomicU32,
    refs: AtomicUsize,
    pub(crate) vtable: &'static VTable,
    pub(crate) origin: Origin,
    pub(crate) id: TaskId,
    pub(crate) rt: &'static Shared,
    pub(crate) placement: Placement,
    pub(crate) group: Option<GroupRef>,
    pub(crate) options: Option<Arc<Options>>,
    pub(crate) name: Name,
    /// When the task was spawned, on the trace clock (0 when not tracing).
    pub(crate) spawned_at: u64,
    pub(crate) listeners: Listeners,
    /// The error, when the task failed; written once, by the `FINISHING` winner.
    failure: UnsafeCell<Option<Box<Error>>>,
}

// SAFETY: `failure` is written once by the party that won `FINISHING`,
// before `COMPLETE` is published with release ordering, and read only after
// an acquire load saw `COMPLETE | FAILED`. Every other field is `Sync`.
unsafe impl Sync for Header {}
// SAFETY: all fields are `Send`; `failure` holds an owned `Error`.
unsafe impl Send for Header {}

/// What a spawner fills in.
pub(crate) struct HeaderInit {
    pub(crate) id: TaskId,
    pub(crate) rt: &'static Shared,
    pub(crate) placement: Placement,
    pub(crate) group: Option<GroupRef>,
    pub(crate) options: Option<Arc<Options>>,
    pub(crate) name: Name,
    pub(crate) spawned_at: u64,
}

impl Header {
    /// A header with two references (the spawner's handle and the queue's)
    /// and `extra` more for the spawner to hand out ([`TaskRef::counted`]).
    #[inline(always)]
    pub(crate) fn new(init: HeaderInit, vtable: &'static VTable, origin: Origin, pending: u32, extra: usize) -> Header {
        Header {
            state: State::default(),
            pending: AtomicU32::new(pending),
            refs: AtomicUsize::new(2 + extra),
            vtable,
            origin,
            id: init.id,
            rt: init.rt,
            placement: init.placement,
            group: init.group,
            options: init.options,
            name: init.name,
            spawned_at: init.spawned_at,
            listeners: Listeners::default(),
            failure: UnsafeCell::new(None),
        }
    }

    /// The error the task failed with, once it is complete.
    pub(crate) fn error(&self) -> Option<&Error> {
        if self.state.load() & (COMPLETE | FAILED) != COMPLETE | FAILED {
            return None;
        }
        // SAFETY: COMPLETE | FAILED was observed with acquire ordering, so
        // the write of `failure` happened before, and nobody writes it again.
        unsafe { (*self.failure.get()).as_deref() }
    }

    /// Fails the task with `error` unless somebody else finishes it; returns
    /// who must be told. Never tells them itself (see `cell::tell`).
    #[must_use]
    pub(crate) fn fail(&self, error: Error) -> Option<Completion> {
        self.state.claim_failure()?;
        Some(self.complete_failed(error))
    }

    /// Writes a failure and publishes it. The caller won `FINISHING`.
    pub(crate) fn complete_failed(&self, error: Error) -> Completion {
        let told = error.clone();
        // SAFETY: the caller won `FINISHING`, so it is the only writer, and
        // nobody reads before COMPLETE is set below.
        unsafe { *self.failure.get() = Some(Box::new(error)) };
        let prev = self.state.set(COMPLETE | FAILED);
        self.completed(prev, Some(told))
    }

    /// After `COMPLETE` was set (with `prev` the state before): gives the
    /// group membership back if the body is done too, and takes the listeners.
    pub(crate) fn completed(&self, prev: u32, failure: Option<Error>) -> Completion {
        if prev & BODY_DONE != 0 {
            self.leave_group();
        }
        let listeners = if prev & LISTENERS != 0 { self.listeners.take(&self.state) } else { Default::default() };
        Completion { listeners, failure }
    }

    /// Gives the task's group membership back; called by whoever sets the
    /// second of `BODY_DONE` and `COMPLETE`.
    pub(crate) fn leave_group(&self) {
        if let Some(group) = self.group {
            if let Some(error) = self.error() {
                group.record_error(self.id, error);
            }
            crate::exec::context::leave_group(group);
        }
    }

    /// Drops the header's own fields in place.
    ///
    /// # Safety
    ///
    /// Called once, by the cell's dealloc, when no reference remains.
    pub(crate) unsafe fn drop_in_place(this: NonNull<Header>) {
        // SAFETY: per the contract, the header is initialised and unreachable.
        unsafe { std::ptr::drop_in_place(this.as_ptr()) };
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header").field("id", &self.id).field("name", &self.name).finish_non_exhaustive()
    }
}

/// An owning, reference-counted pointer to a task, with its types erased.
pub(crate) struct TaskRef(NonNull<Header>);

// SAFETY: a task's shared state is `Sync` (see `Header`, and cells are only
// built for `Send` bodies and `Send + Sync` values), and the count is atomic.
unsafe impl Send for TaskRef {}
// SAFETY: as above.
unsafe impl Sync for TaskRef {}

impl TaskRef {
    /// Takes over one reference of a freshly built cell.
    ///
    /// # Safety
    ///
    /// `ptr` points to an initialised cell whose header counts this reference.
    pub(crate) unsafe fn from_raw(ptr: NonNull<Header>) -> TaskRef {
        TaskRef(ptr)
    }

    pub(crate) fn as_ptr(&self) -> NonNull<Header> {
        self.0
    }

    /// One of the references a task was built to count beyond its handle's
    /// and its queue's ([`spawn_counted`](super::spawn::spawn_counted)):
    /// taking it costs no atomic update, which cloning would.
    ///
    /// # Safety
    ///
    /// Called at most once for each such reference.
    pub(crate) unsafe fn counted(&self) -> TaskRef {
        TaskRef(self.0)
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: this reference keeps the cell alive.
        unsafe { self.0.as_ref() }
    }

    /// Runs the task on this thread; see [`VTable::run`].
    pub(crate) fn run(self) {
        let run = self.header().vtable.run;
        // SAFETY: the vtable belongs to this cell, and `run` takes over the reference.
        unsafe { run(self) }
    }

    /// Lists the tasks this task reads; only meaningful before it runs.
    pub(crate) fn for_each_input(&self, f: &mut dyn FnMut(&TaskRef)) {
        let h = self.header();
        // SAFETY: the vtable belongs to this cell, which is alive.
        unsafe { (h.vtable.for_each_input)(h, f) }
    }

    /// The body's remote form, if it has one; only meaningful before it
    /// runs, or while the cluster runs it elsewhere.
    pub(crate) fn remote(&self) -> Option<&dyn super::remote::RemoteCall> {
        let h = self.header();
        // SAFETY: the vtable belongs to this cell, which is alive.
        h.vtable.remote.and_then(|remote| unsafe { remote(h) })
    }

    /// Whether this is the only reference to the task.
    pub(crate) fn is_unique(&self) -> bool {
        self.header().refs.load(Ordering::Acquire) == 1
    }
}

impl Clone for TaskRef {
    fn clone(&self) -> Self {
        let old = self.header().refs.fetch_add(1, Ordering::Relaxed);
        if old > isize::MAX as usize {
            std::process::abort();
        }
        TaskRef(self.0)
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        if self.header().refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        let dealloc = self.header().vtable.dealloc;
        // SAFETY: that was the last reference: nobody else can reach the cell.
        unsafe { dealloc(self.0) }
    }
}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TaskRef").field(&self.header().id).finish()
    }
}
