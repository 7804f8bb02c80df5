//! Values moving between processes on demand: pulling a value a worker
//! keeps (merging requests for one value), filling the task here that
//! waits for it or forwarding it to the worker a pending call runs on, and
//! freeing what nobody needs any more; and recording those moves (and the
//! runs on other workers) in a trace.
//!
//! A pull asks the keeping worker with a `Pull` frame; its `Value` answer
//! names bytes in the frame or in the link's ring, which are read in place
//! and released once every waiting purpose has had them (see the
//! protocol in the parent module, steps 2 and 3).

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::encode::copy_out;
use super::{Cluster, FREE_BATCH, Link, Pending, PullFor, Then};
use crate::task::cell;
use crate::task::raw::TaskRef;
use crate::task::state::ELSEWHERE;
use crate::trace::record::Event;
use crate::transport::frame::{ArchivedBlob, Arg, Blob, Blobs, Message};
use crate::transport::socket::Incoming;
use crate::{Error, trace};

impl Cluster {
    /// Runs `f` on the bytes `blob` names, from the frame or `link`'s ring
    /// (which is released afterwards).
    pub(super) fn with_blob<R>(
        &self,
        link: &Link,
        frame: &Incoming,
        blob: &ArchivedBlob,
        f: impl FnOnce(&[u8]) -> Result<R, Error>,
    ) -> Result<R, Error> {
        match blob {
            ArchivedBlob::Frame { offset, len } => {
                let (o, l) = (offset.to_native() as usize, len.to_native() as usize);
                f(&frame.blobs()[o..o + l])
            }
            ArchivedBlob::Ring { start, pos, len } => {
                let (start, pos, len) = (start.to_native(), pos.to_native(), len.to_native());
                let ring = link
                    .ring_in
                    .as_ref()
                    .ok_or_else(|| Error::Codec("a value in a ring on a link without one".into()))?;
                let bytes = ring.read(start, pos, len)?;
                let out = f(bytes);
                ring.release(start, pos + len);
                out
            }
        }
    }

    /// Hands pulled bytes (or the failure to get them) to one purpose.
    pub(super) fn deliver(&'static self, object: u64, purpose: PullFor, bytes: Result<&[u8], Error>) {
        if trace::record::on()
            && let Ok(b) = &bytes
        {
            let from = self.resident.lock().get(&object).map_or(0, |r| r.worker);
            match &purpose {
                PullFor::Fill { .. } => trace_moved(object, b.len() as u64, from, 0),
                PullFor::Forward { call, .. } => {
                    let to = self.calls.lock().get(call).map_or(0, |p| p.worker);
                    trace_moved(*call, b.len() as u64, from, to);
                }
                PullFor::Here { call, .. } => trace_moved(*call, b.len() as u64, from, 0),
                PullFor::Give { .. } => {}
            }
        }
        match purpose {
            PullFor::Here { call, arg } => self.here_arg_copied(call, arg, bytes),
            PullFor::Give { watchers, from } => match bytes {
                Ok(b) => self.give(&watchers, object, from, b, 0),
                Err(_) => self.withhold(&watchers, object),
            },
            PullFor::Fill { task, then } => {
                let filled = bytes.and_then(|b| match self.resident.lock().get(&object).and_then(|r| r.fill) {
                    // SAFETY: `task` completed ELSEWHERE with the result type
                    // the glue was made for, and pulls of one object are
                    // merged, so this is its only filler.
                    Some(glue) => unsafe { (glue.fill)(&task, b) },
                    None => Err(Error::Codec("the result cannot cross processes".to_owned())),
                });
                if let Err(e) = filled {
                    self.failed_pulls.lock().insert(object, e);
                }
                match then {
                    Then::Thread(t) => t.unpark(),
                    Then::Waker(w) => w.wake(),
                    Then::Route(t) => self.after_pull(t, object),
                }
            }
            PullFor::Forward { call, arg } => {
                let ready = {
                    let mut calls = self.calls.lock();
                    let Some(p) = calls.get_mut(&call) else { return };
                    match bytes {
                        Ok(b) => {
                            let ring = self.link(p.worker).and_then(|link| link.ring_out.as_ref());
                            let mut blobs = std::mem::take(&mut p.blobs);
                            let blob = copy_out(ring, &mut blobs, b);
                            p.blobs = blobs;
                            p.args[arg] = Some(Arg::Blob(blob));
                            p.missing -= 1;
                            p.missing == 0
                        }
                        Err(e) => {
                            let p = calls.remove(&call).expect("present");
                            drop(calls);
                            if let Some(l) = self.link(p.worker) {
                                l.load.fetch_sub(1, Ordering::Relaxed);
                            }
                            if let Some(r) = p.task.remote() {
                                // SAFETY: we hold the claim; nothing from `each_arg` is alive.
                                unsafe { r.release_inputs() };
                            }
                            cell::fail_elsewhere(p.task, e);
                            self.withhold(&p.watchers, call);
                            return;
                        }
                    }
                };
                if ready {
                    self.send_call(call);
                }
            }
        }
    }

    /// A task waiting for an input's value: route it again, or fail it when
    /// the value could not be brought.
    pub(super) fn after_pull(&'static self, task: TaskRef, object: u64) {
        let failed = self.failed_pulls.lock().get(&object).cloned();
        match failed {
            Some(error) => {
                let h = task.header();
                if let Some(c) = h.fail(Error::upstream(h.id, h.name.clone(), &error)) {
                    cell::tell(c);
                }
                task.run();
            }
            None => self.route(task),
        }
    }

    /// Asks the worker keeping `object` for it, merging requests.
    ///
    /// Checking that the keeper is not lost and registering the request
    /// are one step under the pulls' lock (the resident table is read
    /// inside it): `on_lost` marks the values lost before it takes that
    /// lock to fail the waiting requests, so either it finds this request
    /// or this finds the value lost. No request waits for a lost worker.
    pub(super) fn pull(&'static self, object: u64, purpose: PullFor) {
        let registered = {
            let mut pulls = self.pulls.lock();
            let resident = self.resident.lock().get(&object).copied();
            match resident {
                Some(r) if !r.lost => {
                    let entry = pulls.entry(object).or_insert_with(|| (Vec::new(), Instant::now()));
                    entry.0.push(purpose);
                    Ok((r.worker, entry.0.len() == 1))
                }
                Some(r) => Err((Error::WorkerLost { worker: r.worker, task: crate::TaskId(object) }, purpose)),
                None => Err((Error::Transport(format!("no worker keeps the value of task {object}")), purpose)),
            }
        };
        let (worker, first) = match registered {
            Ok(registered) => registered,
            Err((error, purpose)) => {
                self.failed_pulls.lock().insert(object, error.clone());
                return self.deliver(object, purpose, Err(error));
            }
        };
        if first && let Some(link) = self.link(worker) {
            let _ = link.outbox.send(&Message::Pull { object }, Blobs::default());
        }
    }

    /// Brings the value of `task` (complete `ELSEWHERE`) here; `then` is
    /// told when it arrived or could not.
    pub(crate) fn pull_here(&'static self, task: TaskRef, then: Then) {
        let object = task.header().id.get();
        if task.header().state.load() & ELSEWHERE == 0 {
            return self.deliver_now(then, task);
        }
        self.pull(object, PullFor::Fill { task, then });
    }

    fn deliver_now(&'static self, then: Then, task: TaskRef) {
        match then {
            Then::Thread(t) => t.unpark(),
            Then::Waker(w) => w.wake(),
            Then::Route(t) => {
                drop(task);
                self.route(t)
            }
        }
    }

    /// Why the value of `object` could not be brought here, if it could not.
    pub(crate) fn pull_failure(&self, object: u64) -> Option<Error> {
        self.failed_pulls.lock().get(&object).cloned()
    }

    /// The task with result `object` is gone: the workers holding it may
    /// free it.
    pub(crate) fn forget(&'static self, object: u64) {
        self.went_unrun(object);
        self.failed_pulls.lock().remove(&object);
        let Some(r) = self.resident.lock().remove(&object) else { return };
        let holders = r.copies | 1 << r.worker;
        for link in (1..self.size() as u32).filter(|w| holders & (1 << w) != 0).filter_map(|w| self.link(w)) {
            if !link.alive.load(Ordering::Acquire) {
                continue;
            }
            let full = {
                let mut frees = link.frees.lock();
                frees.push(object);
                (frees.len() >= FREE_BATCH).then(|| std::mem::take(&mut *frees))
            };
            if let Some(objects) = full {
                let _ = link.outbox.send(&Message::Free { objects }, Blobs::default());
            }
        }
    }
}

/// The length of the bytes a blob names.
pub(super) fn blob_len(blob: &Blob) -> u64 {
    match blob {
        Blob::Frame { len, .. } | Blob::Ring { len, .. } => *len,
    }
}

/// Records `bytes` of `task`'s data moved from worker `from` to `to`.
pub(super) fn trace_moved(task: u64, bytes: u64, from: u32, to: u32) {
    trace::record::record(Event::Moved { task, bytes, from, to, at: trace::record::now() });
}

/// Records the run of a task on another worker as process 0 saw it: from
/// when its call was sent until its result came back (the worker's own
/// clock is not comparable with this one).
pub(super) fn trace_remote_run(p: &Pending, failed: bool) {
    let h = p.task.header();
    trace::record::record(Event::Run {
        task: h.id.0,
        name: trace::record::static_name(&h.name),
        spawned: h.spawned_at,
        worker: p.worker,
        thread: p.thread.unwrap_or(u32::MAX),
        start: p.sent_ticks,
        end: trace::record::now(),
        failed,
    });
}
