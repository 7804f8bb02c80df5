//! What the code emitted by dirk's macros calls. Not a public API: names and
//! signatures change without notice.

pub use crate::task::slots::{
    Arg, ArgTask, ArgTaskRef, ArgTasks, ArgValue, InputRef, PassAs, RemoteSlot, RemoteSlots, Slot, Slots, Tasks, Value,
};

pub use crate::datadeps::private as datadeps;

#[cfg(feature = "gpu")]
pub use crate::gpu::task::gpu_task;
/// What the code emitted by `streaming!` calls.
pub mod stream {
    pub use crate::cluster::proxy::{
        ArchiveDeref, ArchiveNone, ArchiveProbe, ArchiveValue, DecodeProbe, Decoder, Decodes, NoDecode, RemoteForm,
        RemoteGroup, Returns, archived_const, const_writer, result_probe,
    };
    pub use crate::stream::glue::*;
}

/// Entry of `#[dirk::main]`: runs the program's body, or, in a process
/// started as a worker, the worker loop. With `DIRK_TRACE=path`, the trace
/// of the run is written to `path` at the end.
pub fn main<R>(body: impl FnOnce() -> R) -> R {
    let value = crate::cluster::launch::main(body);
    if let Some(path) = std::env::var_os("DIRK_TRACE") {
        let trace = crate::trace::stop();
        match trace.write_chrome(&path) {
            Ok(()) => eprintln!("dirk: wrote the trace of {} tasks to {}", trace.tasks().len(), path.to_string_lossy()),
            Err(e) => eprintln!("dirk: could not write the trace to {}: {e}", path.to_string_lossy()),
        }
    }
    value
}

/// Entry of `#[dirk::test]` (`path` is `module_path!()::name`): runs one
/// test's body, or, in a process started as a worker, the worker loop.
pub fn test<R>(path: &str, body: impl FnOnce() -> R) -> R {
    crate::cluster::launch::test(path, body)
}

// Cluster glue: what `#[task]` registers and `spawn!` passes (issue 5).
pub use crate::cluster::probe;
pub use crate::cluster::probe::{ParamProbe, ResultProbe, slot_probe};
pub use crate::task::archived::RemoteArgs;
pub use crate::task::registry::{Glue, Registration, ResultGlue, RunFn, TASKS};
pub use crate::task::remote::Encode;
pub use crate::transport::wire::{BlobWriter, Check};

/// An archived result, as a registered task's glue returns it.
pub type AlignedBytes = rkyv::util::AlignedVec<16>;
pub use crate::task::slots::SlotRef;
pub use linkme;

pub use crate::cluster::remote::spawn_task;
pub use crate::fs::spawn_checkpointed;

/// Checks at compile time that `T` is the companion of a `#[task]`: what
/// `spawn!` emits for a literal scope naming another worker.
/// What a macro expands to, beside its `compile_error!`s: a value of
/// whatever type the surrounding code expects, so that one mistake gives
/// one error. Unlike `unreachable!()` its type is not `!`, so the code
/// after it is not reported as unreachable.
pub fn placeholder<T>() -> T {
    unreachable!("a macro with errors does not compile")
}

pub fn must_be_task<T: TaskCompanion>() {}

/// Implemented by the companion type `#[task]` emits beside its function.
#[diagnostic::on_unimplemented(
    message = "only a #[task] function can run on another worker",
    label = "not a #[task]",
    note = "worker processes run registered #[task] functions only: mark the function with #[task], or scope the spawn to worker 0"
)]
pub trait TaskCompanion {}
