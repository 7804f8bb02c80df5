//! Tasks that may run in another process: the body `spawn!` builds for a
//! registered `#[task]` on a runtime with worker processes.
//!
//! A [`Dual`] is an ordinary call (run here when the scheduler keeps it)
//! plus what the cluster needs to run it elsewhere: the registry entry and
//! one encoder per argument (from the `spawn!` site's probes). When it runs
//! elsewhere, the cluster claims it (`RUNNING`), encodes its slots, drops
//! them once the call ended ([`RemoteCall::release_inputs`]), and the body's
//! remaining part (a [`Kept`] token) stays in the cell: when the task's
//! last handle goes, the token tells the worker that kept the result to
//! free it.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use smallvec::SmallVec;

use super::leader::Cluster;
use crate::exec::{self, context};
use crate::sched::Options;
use crate::task::Task;
use crate::task::cell::Body;
use crate::task::raw::TaskRef;
use crate::task::registry::{self, Entry};
use crate::task::remote::{Encode, RemoteCall};
use crate::task::slots::{Call, RemoteSlots, SlotRef};
use crate::task::spawn::spawn_body_on;

/// Frees a result kept by a worker when the task that names it goes.
pub(crate) struct Kept {
    cluster: &'static Cluster,
    object: AtomicU64,
}

impl Drop for Kept {
    fn drop(&mut self) {
        let object = *self.object.get_mut();
        if object != 0 {
            self.cluster.forget(object);
        }
    }
}

/// A call that runs here or in a worker process.
pub(crate) struct Dual<S, F, R> {
    call: UnsafeCell<Option<Call<S, F, R>>>,
    entry: &'static Entry,
    encoders: SmallVec<[Option<Encode>; 4]>,
    retries: AtomicU32,
    ahead: AtomicBool,
    kept: Kept,
}

// SAFETY: `call` is `Send` (it is a `Call` of `Send` slots and closure); the
// cell is only touched by the thread that runs the body or holds the claim.
unsafe impl<S: Send, F: Send, R> Send for Dual<S, F, R> {}

impl<S, F, R> Body for Dual<S, F, R>
where
    S: RemoteSlots + Send + 'static,
    F: FnOnce(S) -> R + Send + 'static,
    R: Send + Sync + 'static,
{
    type Output = R;

    fn for_each_input(&self, f: &mut dyn FnMut(&TaskRef)) {
        // SAFETY: reading the call while nobody holds the claim (see `Body`).
        if let Some(call) = unsafe { &*self.call.get() } {
            call.for_each_input(f);
        }
    }

    fn call(self) -> R {
        let call = self.call.into_inner().expect("a task body runs once");
        let start = Instant::now();
        let value = call.call();
        self.kept.cluster.ran_here(self.entry.id, start.elapsed());
        value
    }

    fn remote(&self) -> Option<&dyn RemoteCall> {
        let able = self.entry.glue.remote && self.encoders.iter().all(Option::is_some);
        able.then_some(self as &dyn RemoteCall)
    }
}

impl<S, F, R> RemoteCall for Dual<S, F, R>
where
    S: RemoteSlots + Send + 'static,
    F: FnOnce(S) -> R + Send + 'static,
    R: Send + Sync + 'static,
{
    fn entry(&self) -> &'static Entry {
        self.entry
    }

    fn each_arg(&self, f: &mut dyn FnMut(usize, SlotRef<'_>, Option<Encode>)) {
        // SAFETY: the caller holds the claim or is placing the task.
        let Some(call) = (unsafe { &*self.call.get() }) else { return };
        let mut i = 0;
        call.slots().each_slot(&mut |slot| {
            f(i, slot, self.encoders.get(i).copied().flatten());
            i += 1;
        });
    }

    fn take_retry(&self) -> bool {
        // A compare-exchange loop rather than `fetch_update`, which Rust
        // 1.99 deprecates for `try_update` (not in the supported 1.88).
        let mut left = self.retries.load(Ordering::Acquire);
        while left > 0 {
            match self.retries.compare_exchange_weak(left, left - 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(now) => left = now,
            }
        }
        false
    }

    fn keep(&self, object: u64) {
        self.kept.object.store(object, Ordering::Release);
    }

    fn set_ahead(&self) {
        self.ahead.store(true, Ordering::Release);
    }

    fn is_ahead(&self) -> bool {
        self.ahead.load(Ordering::Acquire)
    }

    unsafe fn release_inputs(&self) {
        // SAFETY: per the contract, the caller has the body to itself.
        drop(unsafe { (*self.call.get()).take() });
    }
}

/// Spawns `f(slots)` once every input among the slots is complete; on a
/// runtime with worker processes a registered `#[task]` (the function item
/// spelled `path`) may run in any of them, its arguments archived with
/// `encoders`. Emitted by `spawn!` through `__private`.
pub fn spawn_task<S, F, R>(
    options: Option<Options>,
    name: &'static str,
    path: &'static str,
    encoders: &[Option<Encode>],
    slots: S,
    f: F,
) -> Task<R>
where
    S: RemoteSlots + Send + 'static,
    F: FnOnce(S) -> R + Send + 'static,
    R: Send + Sync + 'static,
{
    let rt = exec::current();
    let cluster = super::of(rt);
    let entry = cluster.and_then(|_| registry::by_path(path));
    match (cluster, entry) {
        (Some(cluster), Some(entry)) => {
            let inherited = context::options();
            let retries = [options.as_ref(), inherited.as_deref()].into_iter().flatten().find_map(|o| o.retries);
            let body = Dual {
                call: UnsafeCell::new(Some(Call::new(slots, f))),
                entry,
                encoders: encoders.iter().copied().collect(),
                retries: AtomicU32::new(retries.unwrap_or(0)),
                ahead: AtomicBool::new(false),
                kept: Kept { cluster, object: AtomicU64::new(0) },
            };
            spawn_body_on(rt, options, name, body)
        }
        _ => spawn_body_on(rt, options, name, Call::new(slots, f)),
    }
}
