//! Task identities: the one fact about a task that the lowest layers
//! (errors, traces) name, so it lives below the task module itself.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

/// A task's identity: unique in the process, growing in spawn order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TaskId(pub(crate) u64);

impl TaskId {
    pub(crate) fn next() -> TaskId {
        // Alone on its cache line: a neighbour that other threads read
        // would make every spawn wait to take the line back.
        static NEXT: CachePadded<AtomicU64> = CachePadded::new(AtomicU64::new(1));
        TaskId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The id as a number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
