//! Running a registered task here on large values other workers keep,
//! read in place: the worker writes the value into the link's ring once
//! and the task reads it there, as a task on a worker reads what process 0
//! sends it. Bringing the value into its task here instead would copy it a
//! second time, into freshly allocated memory.
//!
//! Protocol, for a task [`route`](Cluster::route)d here whose inputs
//! include a value larger than a frame that a worker keeps:
//!
//! 1. Claim the task (`RUNNING`, as for a call sent elsewhere) and archive
//!    the arguments whose values are here; ask for each kept one with a
//!    pull ([`PullFor::Here`]).
//! 2. Each pulled value's ring region stays unreleased while the call
//!    holds it ([`Held`]); a value that came inside a frame is copied.
//! 3. With every argument in, run the function from the archived
//!    arguments on a compute thread (a task of its own), end the claimed
//!    task with the result, and release the regions.
//!
//! A task with an argument that cannot be archived here (a list of handles,
//! a place of a `datadeps!` block) gives its claim back and brings its
//! inputs into their tasks as before.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use rkyv::util::AlignedVec;

use super::{Cluster, INLINE_MAX, Link, PullFor, Then};
use crate::cluster::serve::set_received;
use crate::sched::{Options, Placement, Scope};
use crate::task::archived::RemoteArgs;
use crate::task::cell::{self, Body};
use crate::task::raw::TaskRef;
use crate::task::slots::SlotRef;
use crate::task::spawn::spawn_body_on;
use crate::task::state::ELSEWHERE;
use crate::transport::shm::Consumer;
use crate::transport::wire::{self, BlobWriter};
use crate::{Error, trace};

/// A task that runs here on arguments read in place, waiting for them.
pub(super) struct HereCall {
    task: TaskRef,
    placement: Placement,
    args: Vec<Option<Arc<Held>>>,
    missing: usize,
}

/// The body of the helper task that runs a [`HereCall`] on a compute
/// thread; traced as the run of the call's own task.
struct InPlace {
    cluster: &'static Cluster,
    here: HereCall,
}

impl Body for InPlace {
    type Output = ();

    fn for_each_input(&self, _: &mut dyn FnMut(&TaskRef)) {}

    fn call(self) {
        self.cluster.run_held(self.here);
    }

    fn traces_itself(&self) -> bool {
        true
    }
}

/// The bytes of one argument of a [`HereCall`].
pub(super) enum Held {
    /// A region of a link's ring, released when the last holder goes.
    Ring { ring: &'static Consumer, start: u64, end: u64, bytes: &'static [u8] },
    /// Archived here, or copied out of the frame that carried it.
    Owned(AlignedVec<{ wire::ALIGN }>),
}

impl Held {
    pub(super) fn len(&self) -> usize {
        self.bytes().len()
    }

    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Held::Ring { bytes, .. } => bytes,
            Held::Owned(v) => v,
        }
    }

    fn copy(bytes: &[u8]) -> Held {
        let mut v = AlignedVec::with_capacity(bytes.len());
        v.extend_from_slice(bytes);
        Held::Owned(v)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Held::Ring { ring, start, end, .. } = self {
            ring.release(*start, *end);
        }
    }
}

impl Cluster {
    /// Whether `task` should run here on its large kept inputs read in
    /// place: it can run from archived arguments, and some input larger
    /// than a frame is kept by a worker.
    pub(super) fn reads_in_place(&self, task: &TaskRef) -> bool {
        let Some(remote) = task.remote() else { return false };
        if remote.entry().glue.result.is_none() {
            return false;
        }
        let resident = self.resident.lock();
        let mut large = false;
        task.for_each_input(&mut |input| {
            let h = input.header();
            large |= h.state.load() & ELSEWHERE != 0
                && resident.get(&h.id.get()).is_some_and(|r| !r.lost && r.size > INLINE_MAX as u64);
        });
        large
    }

    /// Protocol step 1; `elsewhere` is an input kept by a worker, brought
    /// into its task when the call cannot be archived here.
    pub(super) fn run_in_place(&'static self, task: TaskRef, placement: Placement, elsewhere: TaskRef) {
        if !cell::start_elsewhere(&task) {
            return; // failed or cancelled before it started
        }
        let remote = task.remote().expect("checked by `reads_in_place`");
        let mut args = Vec::new();
        let mut pulls = Vec::new();
        let mut failure = None;
        let mut local = false;
        {
            let resident = self.resident.lock();
            remote.each_arg(&mut |i, slot, encode| {
                if failure.is_some() || local {
                    return;
                }
                let value = match slot {
                    SlotRef::Local => {
                        local = true;
                        return;
                    }
                    SlotRef::Value(v) | SlotRef::Task(_, Some(v)) => v,
                    SlotRef::Task(input, None) => {
                        let object = input.0.header().id.get();
                        match resident.get(&object) {
                            Some(r) if !r.lost => {
                                pulls.push((object, i));
                                args.push(None);
                            }
                            Some(r) => failure = Some(Error::WorkerLost { worker: r.worker, task: task.header().id }),
                            None => {
                                failure = Some(Error::Transport(format!("no worker keeps the value of task {object}")))
                            }
                        }
                        return;
                    }
                };
                match encode.map(|e| (e.write)(value, BlobWriter::growable())) {
                    Some(Ok(written)) => {
                        args.push(Some(Arc::new(Held::Owned(written.into_vec().expect("a growable writer")))));
                    }
                    Some(Err(e)) => failure = Some(e),
                    None => local = true,
                }
            });
        }
        if local {
            drop(args);
            cell::restart(&task);
            return self.pull_here(elsewhere, Then::Route(task));
        }
        if let Some(error) = failure {
            drop(args);
            // SAFETY: we hold the claim; nothing from `each_arg` is alive.
            unsafe { remote.release_inputs() };
            return cell::fail_elsewhere(task, error);
        }
        let call = task.header().id.get();
        let missing = pulls.len();
        let here = HereCall { task, placement, args, missing };
        if missing == 0 {
            return self.start_here(here);
        }
        self.here_calls.lock().insert(call, here);
        for (object, arg) in pulls {
            self.pull(object, PullFor::Here { call, arg });
        }
    }

    /// Holds the ring region `start`, `pos`, `len` of `link` for the calls
    /// that read it in place (protocol step 2).
    pub(super) fn hold(&'static self, link: &'static Link, start: u64, pos: u64, len: u64) -> Result<Arc<Held>, Error> {
        let ring =
            link.ring_in.as_ref().ok_or_else(|| Error::Codec("a value in a ring on a link without one".into()))?;
        let bytes = ring.read(start, pos, len)?;
        Ok(Arc::new(Held::Ring { ring, start, end: pos + len, bytes }))
    }

    /// Argument `arg` of the in-place call `call` arrived (or could not).
    pub(super) fn here_arg(&'static self, call: u64, arg: usize, held: Result<Arc<Held>, Error>) {
        let ready = {
            let mut calls = self.here_calls.lock();
            let Some(c) = calls.get_mut(&call) else { return };
            match held {
                Ok(held) => {
                    c.args[arg] = Some(held);
                    c.missing -= 1;
                    if c.missing > 0 {
                        return;
                    }
                    calls.remove(&call).expect("present")
                }
                Err(error) => {
                    let HereCall { task, args, .. } = calls.remove(&call).expect("present");
                    drop(calls);
                    drop(args); // gives back the regions that did arrive
                    if let Some(remote) = task.remote() {
                        // SAFETY: we hold the claim; nothing from `each_arg` is alive.
                        unsafe { remote.release_inputs() };
                    }
                    return cell::fail_elsewhere(task, error);
                }
            }
        };
        self.start_here(ready);
    }

    /// Bytes that came for an in-place call inside a frame (or the failure
    /// to get them): copied, as the frame does not outlive its handling.
    pub(super) fn here_arg_copied(&'static self, call: u64, arg: usize, bytes: Result<&[u8], Error>) {
        self.here_arg(call, arg, bytes.map(|b| Arc::new(Held::copy(b))));
    }

    /// Queues the call's run on a compute thread (protocol step 3).
    fn start_here(&'static self, here: HereCall) {
        let scope = match here.placement {
            Placement::Thread(t) => Scope::thread(t),
            _ => Scope::any(),
        };
        let options = Options::new().scope(scope).name(here.task.header().name.clone());
        self.local_load.fetch_add(1, Ordering::Relaxed);
        drop(spawn_body_on(self.shared, Some(options), "dirk::in_place", InPlace { cluster: self, here }));
    }

    fn run_held(&'static self, here: HereCall) {
        let HereCall { task, args, .. } = here;
        let remote = task.remote().expect("a claimed remote task keeps its remote form");
        let entry = remote.entry();
        let slices: Vec<&[u8]> = args.iter().map(|a| a.as_ref().expect("every argument arrived").bytes()).collect();
        set_received(&slices);
        let traced = trace::record::on().then(trace::record::run_start);
        let start = Instant::now();
        let ran = catch_unwind(AssertUnwindSafe(|| (entry.glue.run)(&RemoteArgs::new(slices))));
        set_received(&[]);
        self.ran_here(entry.id, start.elapsed());
        drop(args);
        // SAFETY: we hold the claim; the call ended, so nothing from
        // `each_arg` is alive.
        unsafe { remote.release_inputs() };
        let h = task.header();
        if let Some(start) = traced {
            // The task's run, recorded before the task completes (see `Body::traces_itself`).
            cell::record_run(h, start, !matches!(ran, Ok(Ok(_))));
        }
        let failure = match ran {
            Ok(Ok(bytes)) => match entry.glue.result {
                // SAFETY: the task's value type is the function's result
                // type, and we hold the claim.
                Some(glue) => unsafe { (glue.finish)(task.clone(), &bytes) }.err(),
                None => Some(Error::Codec("the result cannot cross processes".to_owned())),
            },
            Ok(Err(e)) => Some(e),
            Err(payload) => Some(Error::panicked(h.id, h.name.clone(), &*payload)),
        };
        if let Some(error) = failure {
            cell::fail_elsewhere(task, error);
        }
    }
}
