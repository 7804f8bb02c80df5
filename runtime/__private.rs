//! What the code emitted by dirk's macros calls. Not a public API: names and
//! signatures change without notice.

pub use crate::task::slots::{Arg, ArgTask, ArgTaskRef, ArgValue, InputRef, Provide, Slot, Slots, Value};

pub use crate::stream::glue as stream;

use crate::sched::Options;
use crate::task::Task;
use crate::task::slots::Call;
use crate::task::spawn::spawn_body;

/// Spawns `f(slots)` once every input among the slots is complete.
pub fn spawn_call<S, F, R>(options: Option<Options>, name: &'static str, slots: S, f: F) -> Task<R>
where
    S: Slots + Send + 'static,
    F: FnOnce(S) -> R + Send + 'static,
    R: Send + Sync + 'static,
{
    spawn_body(options, name, Call::new(slots, f))
}

/// Entry of `#[dirk::main]`: runs the program's body. Later, in a process
/// started as a worker, this is where the worker loop takes over.
pub fn main<R>(body: impl FnOnce() -> R) -> R {
    body()
}

/// Entry of `#[dirk::test]`: runs one test's body.
pub fn test<R>(body: impl FnOnce() -> R) -> R {
    body()
}
