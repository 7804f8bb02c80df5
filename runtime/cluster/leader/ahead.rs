//! Sending calls ahead: a task scoped to one worker goes there when it is
//! spawned, before its inputs are complete, and the worker runs it as soon
//! as they are there. A chain of tasks on one worker then runs without a
//! round trip to process 0 per task, and a small value crossing workers
//! goes from one to the other directly (step 6).
//!
//! Protocol (process 0's half; the worker's is in `cluster/store.rs`):
//!
//! 1. [`Cluster::send_ahead`] runs at spawn, before the task registers
//!    with its inputs, so nothing else touches it yet. Each argument must
//!    be a small value here (sent along), a complete input the worker
//!    holds (by object id), or an input whose call is in flight (sent, or
//!    sent ahead): `Await`. An awaited call on another worker gets this
//!    worker as a *watcher*. Anything else (an input running here or not
//!    yet routed, a value to forward, a large value, a handle pinned to a
//!    worker, a failed input) and the task takes the ordinary route. The
//!    `Run` goes out under the `calls` lock, so whoever later sees the
//!    entry (a `Forget`, a `Free`) sends after it.
//! 2. The call's entry is unclaimed. When the task's inputs are complete
//!    here, `route` claims it ([`Cluster::claim_ahead`]) instead of sending
//!    it. Its answer may come first (an input completed here on another
//!    thread, so the claim waits for that thread): it is kept in the entry
//!    and handled by the claim.
//! 3. When a call ends here, its value is given to its watchers (`Give`,
//!    after completing the task here), or withheld when it failed
//!    (`Withhold`: the calls awaiting it fail there; here their tasks
//!    failed with it). A watcher's own answer may still come before its
//!    inputs completed here (its value came directly, step 6): it waits
//!    in its entry for the claim.
//! 4. A task sent ahead that goes unrun here (an input failed, it was
//!    cancelled) ends its entry when its body goes ([`Cluster::went_unrun`])
//!    or its answer comes, whichever is later; its watchers are withheld.
//! 5. A lost worker withdraws every unclaimed call (`Forget`): each takes
//!    the ordinary route once its inputs are complete.
//! 6. Values go between workers directly: registering a watcher on a call
//!    whose `Run` went out also asks that call's worker to give the value
//!    to the watcher's worker itself (`Forward`, once per worker; see
//!    `cluster/peers.rs`), when it is small enough to come back with
//!    `Done`. Step 3 then gives it only to the other watchers; a large
//!    value is given from here as before. A worker that cannot reach its
//!    peer sends the value here (`Relay`), and it is given from here.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use smallvec::SmallVec;

use super::encode::{copy_out, encode_within};
use super::pulls::{blob_len, trace_moved};
use super::{Cluster, INLINE_MAX, Pending, PullFor, Resident};
use crate::sched::Placement;
use crate::task::cell;
use crate::task::raw::TaskRef;
use crate::task::slots::SlotRef;
use crate::task::state::{COMPLETE, FAILED};
use crate::trace;
use crate::transport::frame::{Arg, Blobs, Message};

impl Cluster {
    /// Sends a just-spawned task to its worker ahead of its inputs, when
    /// it can go there that way (protocol step 1).
    pub(crate) fn send_ahead(&'static self, task: &TaskRef) {
        let h = task.header();
        let Placement::Workers { mask, thread } = h.placement else { return };
        if !mask.is_power_of_two() || mask == 1 {
            return;
        }
        let worker = mask.trailing_zeros();
        let Some(remote) = task.remote() else { return };
        let Some(link) = self.link(worker).filter(|l| l.alive.load(Ordering::Acquire)) else { return };
        let call = h.id.get();
        let mut blobs = Blobs::default();
        let mut args = Vec::with_capacity(8);
        let mut awaits: SmallVec<[u64; 4]> = SmallVec::new();
        let mut able = true;
        {
            let resident = self.resident.lock();
            remote.each_arg(&mut |_, slot, encode| {
                // A handle pinned to a worker takes the ordinary route, which checks it.
                let Some(encode) = encode.filter(|e| able && e.pin.is_none()) else {
                    able = false;
                    return;
                };
                let arg = match slot {
                    SlotRef::Local => None,
                    SlotRef::Value(v) => encode_within(&mut blobs, v, encode, INLINE_MAX).map(Arg::Blob),
                    SlotRef::Task(input, value) => {
                        let object = input.0.header().id.get();
                        let state = input.0.header().state.load();
                        if state & COMPLETE == 0 {
                            awaits.push(object);
                            Some(Arg::Await(object))
                        } else if state & FAILED != 0 {
                            None
                        } else if resident.get(&object).is_some_and(|r| r.held_by(worker)) {
                            Some(Arg::Object(object))
                        } else {
                            value.and_then(|v| encode_within(&mut blobs, v, encode, INLINE_MAX)).map(Arg::Blob)
                        }
                    }
                };
                match arg {
                    Some(arg) => args.push(arg),
                    None => able = false,
                }
            });
        }
        if !able {
            return;
        }
        let mut calls = self.calls.lock();
        if awaits.iter().any(|o| !calls.contains_key(o)) {
            return; // an input runs here, is not routed yet, or is just ending
        }
        if !link.alive.load(Ordering::Acquire) {
            // Lost meanwhile: `on_lost` swept the calls before this took
            // their lock, so the task takes the ordinary route.
            return;
        }
        for &o in &awaits {
            let p = calls.get_mut(&o).expect("checked");
            if p.worker == worker {
                continue;
            }
            p.watchers.push((worker, call));
            // Its `Run` went out (sent ahead, or routed with every argument
            // ready), so `Forward` follows it (protocol step 6).
            let sent = !p.claimed || p.missing == 0;
            if sent
                && !p.dead
                && p.forwarded & (1 << worker) == 0
                && let Some(maker) = self.link(p.worker)
            {
                p.forwarded |= 1 << worker;
                let _ = maker.outbox.send_soon(&Message::Forward { object: o, to: worker }, Blobs::default());
            }
        }
        // The result (or its failure's marker) stays with the worker until
        // the task goes, whether it runs here or not.
        remote.keep(call);
        remote.set_ahead();
        self.resident.lock().insert(call, Resident::new(worker, 0, remote.entry().glue.result));
        calls.insert(call, Pending::new(task.clone(), worker, thread.map(u32::from), false));
        if trace::record::on() {
            for arg in &args {
                if let Arg::Blob(b) = arg {
                    trace_moved(call, blob_len(b), 0, worker);
                }
            }
        }
        let free = std::mem::take(&mut *link.frees.lock());
        let entry = remote.entry().id;
        let run = Message::Run { call, task: entry, thread: thread.map(u32::from), args, free };
        let _ = link.outbox.send_soon(&run, blobs);
    }

    /// Claims a task sent ahead whose inputs are complete here (protocol
    /// step 2); `false` when it was withdrawn and takes the ordinary route.
    pub(crate) fn claim_ahead(&'static self, task: &TaskRef) -> bool {
        let id = task.header().id.get();
        let mut calls = self.calls.lock();
        let Some(p) = calls.get_mut(&id) else { return false };
        if !cell::start_elsewhere(task) {
            // Failed or cancelled meanwhile: it goes unrun here.
            p.dead = true;
            if p.early.is_some() {
                let p = calls.remove(&id).expect("present");
                drop(calls);
                self.withhold(&p.watchers, id);
            }
            return true;
        }
        p.claimed = true;
        if trace::record::on() {
            p.sent_ticks = trace::record::now();
        }
        if let Some(link) = self.link(p.worker) {
            link.load.fetch_add(1, Ordering::Relaxed);
        }
        if p.early.is_some() {
            let mut p = calls.remove(&id).expect("present");
            drop(calls);
            let frame = p.early.take().expect("checked");
            self.finish(p, &frame);
        }
        true
    }

    /// The body of task `object` went: if it was sent ahead and not
    /// claimed, it went unrun here (protocol step 4).
    pub(crate) fn went_unrun(&self, object: u64) {
        let mut calls = self.calls.lock();
        let Some(p) = calls.get_mut(&object).filter(|p| !p.claimed) else { return };
        p.dead = true;
        if p.early.is_some() {
            let p = calls.remove(&object).expect("present");
            drop(calls);
            self.withhold(&p.watchers, object);
        }
    }

    /// Gives `object`'s value (`bytes`, kept by worker `from`) to the
    /// workers of `watchers` (protocol step 3), but for those in the mask
    /// `given`, which `from` gave it to itself (step 6).
    pub(super) fn give(&self, watchers: &[(u32, u64)], object: u64, from: u32, bytes: &[u8], given: u64) {
        let mut sent = 0u64;
        for &(worker, call) in watchers {
            if trace::record::on() {
                trace_moved(call, bytes.len() as u64, from, worker);
            }
            if sent & (1 << worker) != 0 {
                continue;
            }
            sent |= 1 << worker;
            if given & (1 << worker) != 0 {
                self.copied_to(object, worker);
            } else {
                self.give_to(worker, object, bytes);
            }
        }
    }

    /// Gives `object`'s value (`bytes`) to `worker`.
    pub(super) fn give_to(&self, worker: u32, object: u64, bytes: &[u8]) {
        self.copied_to(object, worker);
        let Some(link) = self.link(worker) else { return };
        let mut blobs = Blobs::default();
        let blob = copy_out(link.ring_out.as_ref(), &mut blobs, bytes);
        let _ = link.outbox.send(&Message::Give { object, blob }, blobs);
    }

    /// `worker` holds a copy of `object` now (it is freed there too).
    fn copied_to(&self, object: u64, worker: u32) {
        if let Some(r) = self.resident.lock().get_mut(&object) {
            r.copies |= 1 << worker;
        }
    }

    /// Gives the value of `object`, which its worker kept, to `watchers`:
    /// pulled here first.
    pub(super) fn give_kept(&'static self, watchers: &[(u32, u64)], object: u64) {
        if watchers.is_empty() {
            return;
        }
        let from = self.resident.lock().get(&object).map_or(0, |r| r.worker);
        self.pull(object, PullFor::Give { watchers: watchers.into(), from });
    }

    /// Tells the workers of `watchers` that `object` will not come.
    pub(super) fn withhold(&self, watchers: &[(u32, u64)], object: u64) {
        let mut sent = 0u64;
        for &(worker, _) in watchers {
            if sent & (1 << worker) == 0
                && let Some(link) = self.link(worker)
            {
                sent |= 1 << worker;
                let _ = link.outbox.send(&Message::Withhold { object }, Blobs::default());
            }
        }
    }

    /// Withdraws calls sent ahead (protocol step 5); called with the
    /// `calls` lock held, after removing them.
    pub(super) fn forget_ahead<'p>(&self, calls: impl Iterator<Item = &'p Pending>) {
        let mut by_worker: HashMap<u32, Vec<u64>> = HashMap::new();
        for p in calls {
            by_worker.entry(p.worker).or_default().push(p.task.header().id.get());
        }
        for (worker, calls) in by_worker {
            if let Some(link) = self.link(worker) {
                let _ = link.outbox.send(&Message::Forget { calls }, Blobs::default());
            }
        }
    }
}
