//! The end of a remote call (protocol step 3 in the parent module): its
//! answer learned from, its inputs released, its result written here or
//! left with its worker, its failure passed on, and its value given to the
//! workers whose calls sent ahead await it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::pulls::trace_remote_run;
use super::{Cluster, Pending, Resident};
use crate::Error;
use crate::task::cell;
use crate::transport::frame::{ArchivedMessage, ArchivedOutcome};
use crate::transport::socket::Incoming;

impl Cluster {
    /// Ends call `p` with its answer `frame` (a `Done`), removed from `calls`.
    pub(super) fn finish(&'static self, p: Pending, frame: &Incoming) {
        let ArchivedMessage::Done { micros, outcome, .. } = frame.message() else { return };
        let Some(link) = self.link(p.worker) else { return };
        if !p.claimed {
            // Its task went unrun here: the worker's copy goes with the task.
            return self.withhold(&p.watchers, p.task.header().id.get());
        }
        link.load.fetch_sub(1, Ordering::Relaxed);
        // A call its worker could not run because an input will not come:
        // that input failed here first (lost with its worker, or failed),
        // and the call fails as any dependent does, naming it.
        let mut failed_input = None;
        if matches!(outcome, ArchivedOutcome::Failed { .. }) {
            let resident = self.resident.lock();
            p.task.for_each_input(&mut |input| {
                if failed_input.is_some() {
                    return;
                }
                let h = input.header();
                failed_input = h.error().cloned().or_else(|| {
                    let r = resident.get(&h.id.get()).filter(|r| r.lost)?;
                    Some(Error::WorkerLost { worker: r.worker, task: h.id })
                });
            });
        }
        let remote = p.task.remote().expect("a claimed remote task keeps its remote form");
        let entry = remote.entry();
        self.cost.learn_run(entry.id, Duration::from_micros(micros.to_native()));
        // SAFETY: the call ended; nothing from `each_arg` is alive.
        unsafe { remote.release_inputs() };
        let h = p.task.header();
        let (id, name, worker) = (h.id, h.name.clone(), p.worker);
        if p.sent_ticks != 0 {
            trace_remote_run(&p, matches!(outcome, ArchivedOutcome::Panicked { .. }));
        }
        // The worker keeps the result, or the marker of its failure, until
        // the task here goes.
        let size = match outcome {
            ArchivedOutcome::Value { size, .. } | ArchivedOutcome::Kept { size } => size.to_native(),
            _ => 0,
        };
        remote.keep(id.get());
        self.resident.lock().insert(id.get(), Resident::new(worker, size, entry.glue.result));
        let Pending { task, watchers, forwarded, .. } = p;
        match outcome {
            ArchivedOutcome::Value { blob, .. } => {
                let result = self.with_blob(link, frame, blob, |bytes| {
                    let filled = match entry.glue.result {
                        // SAFETY: the task's value type is the function's
                        // result type, and we hold the claim.
                        Some(glue) => unsafe { (glue.finish)(task.clone(), bytes) },
                        None => Err(Error::Codec("the result cannot cross processes".to_owned())),
                    };
                    if filled.is_ok() {
                        // The worker gave it to the workers it was asked to.
                        self.give(&watchers, id.get(), worker, bytes, forwarded);
                    }
                    filled
                });
                if let Err(e) = result {
                    cell::fail_elsewhere(task, e);
                    self.withhold(&watchers, id.get());
                }
            }
            ArchivedOutcome::Kept { .. } => {
                cell::complete_elsewhere(task);
                self.give_kept(&watchers, id.get());
            }
            ArchivedOutcome::Panicked { message } => {
                cell::fail_elsewhere(task, Error::Panicked { task: id, name, message: message.to_string() });
                self.withhold(&watchers, id.get());
            }
            ArchivedOutcome::Failed { message } => {
                let error = match failed_input {
                    Some(cause) => Error::upstream(id, name, &cause),
                    None => Error::Codec(format!("task {id} `{name}` on worker {worker}: {message}")),
                };
                cell::fail_elsewhere(task, error);
                self.withhold(&watchers, id.get());
            }
        }
    }
}
