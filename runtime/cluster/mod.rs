//! Processes: worker processes running the same binary, the task registry
//! that lets them run `#[task]` functions, placing tasks where their data
//! lives, and losing workers.
//!
//! - [`launch`]: how process 0 starts its workers and how a process learns
//!   that it is one (`#[dirk::main]` / `#[dirk::test]`).
//! - [`leader`]: process 0's side (placement, calls, results, pulls).
//! - [`serve`]: a worker's side (the worker loop); [`store`]: what a worker
//!   keeps, and the calls sent ahead that wait there for their inputs;
//!   [`peers`]: links between workers, for values given directly;
//!   [`answers`]: a worker's frames to process 0, short calls' answers
//!   held to go out together.
//! - [`probe`]: how the arguments and results of a registered `#[task]`
//!   (`task::registry`) cross, read in place through `task::archived`.
//! - [`remote`]: the task body that may run elsewhere.
//! - [`stream`]: streaming stages run by workers; [`proxy`]: such a
//!   stage's node in process 0.
//! - [`data`]: `dirk::mutable` and `dirk::shard`.

pub(crate) mod answers;
pub(crate) mod data;
mod join;
pub(crate) mod launch;
pub(crate) mod leader;
pub(crate) mod peers;
pub mod probe;
pub(crate) mod proxy;
pub(crate) mod remote;
pub(crate) mod rundir;
pub(crate) mod serve;
pub(crate) mod store;
pub(crate) mod stream;

use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Poll, Waker};

pub(crate) use self::leader::Cluster;
use self::leader::Then;
use crate::Error;
use crate::exec::extension::Extension;
use crate::exec::{Shared, wait};
use crate::sched::WorkerProcesses;
use crate::task::raw::TaskRef;
pub(crate) use crate::task::remote::RemoteCall;
use crate::task::state::ELSEWHERE;

/// A map keyed by task, call or object ids: ids that processes of one
/// cluster (which share its secret) make, never outside input, so a
/// multiplicative hash (its high bits, which the table uses, mix every
/// bit of the id) does instead of SipHash.
pub(crate) type IdMap<V> = std::collections::HashMap<u64, V, std::hash::BuildHasherDefault<IdHasher>>;

/// The hasher of [`IdMap`].
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = (self.0 ^ id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// The environment variables a worker process is started with.
pub(crate) mod env {
    /// The worker's id (1, 2, ...).
    pub(crate) const WORKER: &str = "DIRK_WORKER";
    /// Where process 0 listens (a Unix socket path).
    pub(crate) const CONNECT: &str = "DIRK_CONNECT";
}

static WORKER_ID: AtomicU32 = AtomicU32::new(0);

/// The worker (process) running the caller: 0 in the process the program
/// started in, 1..=k in the workers started by `Runtime::builder().workers(k)`
/// (or the MPI rank under `mpirun`).
pub(crate) fn current_worker() -> usize {
    WORKER_ID.load(Ordering::Relaxed) as usize
}

pub(crate) fn set_current_worker(id: u32) {
    WORKER_ID.store(id, Ordering::Relaxed);
}

/// The worker processes of the runtime `shared`, if it has some: its router.
pub(crate) fn of(shared: &Shared) -> Option<&'static Cluster> {
    shared.router().and_then(|r| r.as_any().downcast_ref::<Cluster>())
}

/// The processes of a cluster, as placement sees them.
impl WorkerProcesses for Cluster {
    fn size(&self) -> usize {
        Cluster::size(self)
    }

    fn threads(&self, w: usize) -> usize {
        self.link(w as u32).map_or(0, |l| l.threads)
    }
}

/// A runtime's worker processes plug into it as its router.
impl Extension for Cluster {
    fn workers(&'static self) -> Option<&'static dyn WorkerProcesses> {
        Some(self)
    }

    fn route(&'static self, task: TaskRef) {
        Cluster::route(self, task);
    }

    fn send_ahead(&'static self, task: &TaskRef) {
        Cluster::send_ahead(self, task);
    }

    /// Brings the value of a task that completed in another process here,
    /// waiting (on a worker thread: running other tasks) until it arrived.
    fn bring_here(&'static self, task: &TaskRef) -> Result<(), Error> {
        let cluster = self;
        let object = task.header().id.get();
        let arrived = || task.header().state.load() & ELSEWHERE == 0 || cluster.pull_failure(object).is_some();
        if !arrived() {
            cluster.pull_here(task.clone(), Then::Thread(std::thread::current()));
            wait::until(&arrived, None);
        }
        match cluster.pull_failure(object) {
            Some(e) if task.header().state.load() & ELSEWHERE != 0 => Err(e),
            _ => Ok(()),
        }
    }

    fn bring_here_async(&'static self, task: &TaskRef, waker: &Waker) -> Poll<Result<(), Error>> {
        let object = task.header().id.get();
        if task.header().state.load() & ELSEWHERE == 0 {
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = self.pull_failure(object) {
            return Poll::Ready(Err(e));
        }
        self.pull_here(task.clone(), Then::Waker(waker.clone()));
        Poll::Pending
    }

    fn cancel_elsewhere(&'static self, task: &TaskRef) {
        self.cancel_call(task.header().id.get());
    }

    fn stop(&'static self) {
        self.shutdown();
    }

    fn as_any(&'static self) -> &'static dyn std::any::Any {
        self
    }
}

/// In a task run for another process: the address range of the bytes its
/// argument `i` was read from (in the shared-memory ring, the frame that
/// carried it, or a value the worker kept). `None` elsewhere.
///
/// Lets a program check that an argument was read in place: a `&[f64]`
/// parameter's pointer lies inside this range.
pub(crate) fn received_bytes(i: usize) -> Option<std::ops::Range<usize>> {
    serve::received(i)
}
