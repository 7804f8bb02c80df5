//! Extensions: what runs tasks beyond this process's worker threads plugs
//! into the core here, through one trait the core defines and calls and
//! never looks behind (tokio's tasks are generic over `Schedule` and never
//! name the scheduler in the same way).
//!
//! A runtime has an extension in each of two roles at most:
//!
//! - its *router* (worker processes): every task whose inputs are complete
//!   goes to [`Extension::route`] instead of a queue of this process, and
//!   the router decides where it runs (here, through [`Shared::queue`],
//!   or in another process). It places every scope, may send a call ahead
//!   to the process that will run it before its inputs are done, and
//!   brings values that live elsewhere here when a handle reads them;
//! - its *devices* (GPU processors): tasks placed on a device
//!   (`Placement::Gpu`) go to [`Extension::queue`], and device scopes are
//!   placed by it.
//!
//! The core calls an extension at these points, and promises:
//!
//! 1. `workers` and `gpus`, when a task is spawned with a scope: the
//!    processors the extension brings, which `sched::place` resolves the
//!    scope against (the extension resolves nothing itself);
//! 2. `route` (router) and `queue` (devices), once for every task whose
//!    inputs are all complete, in place of the core's own queues;
//! 3. `send_ahead` (router), for a task with inputs, before it registers
//!    with them (nothing else touches the task yet);
//! 4. `bring_here` (router), when a handle reads a complete task whose
//!    value lives elsewhere (its state says `ELSEWHERE`, which only the
//!    router sets);
//! 5. `stop` when the runtime is dropped, before its threads are stopped,
//!    and `stopped` once they are joined and its queues drained (the core
//!    drains them once more after it).
//!
//! [`Shared::queue`]: super::Shared::queue

use std::any::Any;
use std::task::{Poll, Waker};

use crate::error::Error;
use crate::sched::{GpuProcessors, WorkerProcesses};
use crate::task::raw::TaskRef;

/// Something that runs tasks beyond this process's worker threads (see the
/// module note for when the core calls each method).
///
/// Extensions live as long as the process (`&'static`), as the runtime's
/// shared state does.
pub(crate) trait Extension: Send + Sync + 'static {
    /// The worker processes it brings, for placing scopes (the router's).
    fn workers(&'static self) -> Option<&'static dyn WorkerProcesses> {
        None
    }

    /// The GPU processors it brings, for placing scopes (the devices').
    fn gpus(&'static self) -> Option<&'static dyn GpuProcessors> {
        None
    }

    /// Takes a task whose inputs are complete (the router's role).
    fn route(&'static self, task: TaskRef) {
        unreachable!("an extension that routes nothing was given task {}", task.header().id);
    }

    /// Queues a task placed on device `index` (the devices' role).
    #[cfg(feature = "gpu")]
    fn queue(&self, index: usize, task: TaskRef) {
        unreachable!("an extension with no devices was given task {} for device {index}", task.header().id);
    }

    /// Sees a task with inputs before it registers with them.
    fn send_ahead(&'static self, _task: &TaskRef) {}

    /// Makes the value of a complete task that lives elsewhere readable
    /// here, waiting for it.
    fn bring_here(&'static self, _task: &TaskRef) -> Result<(), Error> {
        Ok(())
    }

    /// [`bring_here`](Extension::bring_here) for an `.await`: wakes `waker`
    /// when the value is here.
    fn bring_here_async(&'static self, _task: &TaskRef, _waker: &Waker) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    /// The runtime is being dropped; its threads still run.
    /// `task`, which may be running in another process, was cancelled:
    /// tell that process, so that the body sees [`cancelled`](crate::cancelled).
    fn cancel_elsewhere(&'static self, _task: &TaskRef) {}

    fn stop(&'static self) {}

    /// The runtime's threads are joined and its queues drained.
    fn stopped(&'static self) {}

    /// The extension itself, for the module that made it.
    fn as_any(&'static self) -> &'static dyn Any;
}
