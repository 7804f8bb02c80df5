//! What the code emitted by dirk's macros calls. Not a public API: names and
//! signatures change without notice.

pub use crate::task::slots::{
    Arg, ArgTask, ArgTaskRef, ArgTasks, ArgValue, InputRef, Provide, Slot, Slots, Tasks, Value,
};

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
/// started as a worker, this is where the worker loop takes over. With
/// `DIRK_TRACE=path`, the trace of the run is written to `path` at the end.
pub fn main<R>(body: impl FnOnce() -> R) -> R {
    let value = body();
    if let Some(path) = std::env::var_os("DIRK_TRACE") {
        let trace = crate::trace::stop();
        match trace.write_chrome(&path) {
            Ok(()) => eprintln!("dirk: wrote the trace of {} tasks to {}", trace.tasks().len(), path.to_string_lossy()),
            Err(e) => eprintln!("dirk: could not write the trace to {}: {e}", path.to_string_lossy()),
        }
    }
    value
}

/// Entry of `#[dirk::test]`: runs one test's body.
pub fn test<R>(body: impl FnOnce() -> R) -> R {
    body()
}
