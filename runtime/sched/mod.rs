//! Placement: where a task may run ([`Scope`]), the options a spawn carries
//! ([`Options`]), how a scope resolves to a queue ([`Placement`], by
//! [`place`] from the processors a runtime has), and the cost model that
//! chooses among worker processes (`cost`).

pub(crate) mod cost;
mod options;
mod place;
mod scope;

pub use self::options::{Options, with_options};
pub(crate) use self::place::{Available, GpuProcessors, WorkerProcesses, place};
pub use self::scope::{Scope, WorkerScope};

/// Where a task is queued on its runtime, resolved from its scope at spawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Any worker thread.
    Any,
    /// Only the worker thread with this index.
    Thread(usize),
    /// One of the worker processes in `mask` (bit `w` for worker `w`), on
    /// its thread `thread` when given; decided by the cluster.
    Workers { mask: u64, thread: Option<u16> },
    /// The GPU processor with this index (its runner thread runs the task).
    #[cfg(feature = "gpu")]
    Gpu(usize),
}
