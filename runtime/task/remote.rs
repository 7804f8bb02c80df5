//! Calls that may run in another process: what a body built for a
//! registered `#[task]` (see [`registry`](super::registry)) tells whoever
//! runs it elsewhere: the function, its argument slots and how each one
//! is archived, its retries. The core defines the form and carries it in a
//! task's vtable; the extension that runs tasks in worker processes makes
//! and reads it.

use std::any::Any;

use super::registry::Entry;
use super::slots::SlotRef;
use crate::Error;
use crate::transport::wire::BlobWriter;

/// How one argument crosses: archived into a writer, and, for values that
/// live in one process (a [`Mutable`](crate::Mutable)), the worker its
/// task must run on.
#[derive(Clone, Copy, Debug)]
pub struct Encode {
    pub(crate) write: fn(&dyn Any, BlobWriter) -> Result<BlobWriter, Error>,
    /// For a handle to a value living in one worker: which one (the task
    /// must run there). `None` for values that travel.
    pub(crate) pin: Option<fn(&dyn Any) -> Option<u32>>,
    /// For a [`File`](crate::fs::File): its path and type fingerprint,
    /// which the worker that runs the task opens itself (the value never
    /// passes through this process).
    pub(crate) file: Option<FileOf>,
}

/// A file argument's path and the fingerprint of its type.
pub(crate) type FileOf = fn(&dyn Any) -> Option<(String, u64)>;

/// A body that may run in another process, as the extension that runs it
/// there sees it (the core only carries it, in the task's vtable).
pub(crate) trait RemoteCall {
    /// The registered task.
    fn entry(&self) -> &'static Entry;
    /// Each argument slot with its encoder, in order; nothing once the
    /// inputs were released.
    fn each_arg(&self, f: &mut dyn FnMut(usize, SlotRef<'_>, Option<Encode>));
    /// Takes one retry, if any is left.
    fn take_retry(&self) -> bool;
    /// Records that a worker keeps this task's result as `object`.
    fn keep(&self, object: u64);
    /// Marks the task as sent ahead to its worker (see `leader/ahead.rs`).
    fn set_ahead(&self);
    /// Whether the task was sent ahead.
    fn is_ahead(&self) -> bool;
    /// Drops the argument slots: the call ended elsewhere.
    ///
    /// # Safety
    ///
    /// Called by the party that claimed the task (`RUNNING`), once no
    /// reference obtained from [`each_arg`](RemoteCall::each_arg) is alive.
    unsafe fn release_inputs(&self);
}
