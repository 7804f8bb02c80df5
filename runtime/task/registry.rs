//! The task registry: every `#[task]` function of the binary, by a stable
//! id, with the glue that runs it from archived arguments.
//!
//! `#[task]` adds a [`Registration`] to the [`TASKS`] distributed slice
//! (linkme: the linker gathers them, no start-up code runs). A task's id is
//! the FNV-1a hash of its path as `std::any::type_name` spells the function
//! item (`crate::module::name`): every process of a cluster runs the same
//! binary, so the id means the same function everywhere, and a worker runs
//! only ids found here, never code sent to it.
//!
//! Whether a task can run remotely is decided per function at compile time
//! by the probes in [`probe`](super::probe): every parameter must decode
//! from an archive and the result must archive. A function that fails the
//! test is still registered (so that a remote scope can say why it cannot
//! go) but runs only locally.

use std::collections::HashMap;
use std::sync::OnceLock;

use linkme::distributed_slice;

use super::archived::RemoteArgs;
use super::raw::TaskRef;
use crate::Error;

/// Every `#[task]` of the binary.
#[distributed_slice]
pub static TASKS: [Registration];

/// One `#[task]`, as its macro registers it.
#[derive(Debug)]
pub struct Registration {
    /// The function item's path (`std::any::type_name_of_val(&f)`).
    pub path: fn() -> &'static str,
    /// The glue, built on first use.
    pub glue: fn() -> Glue,
}

/// Runs a registered function from archived arguments; returns its archived result.
pub type RunFn = fn(&RemoteArgs<'_>) -> Result<rkyv::util::AlignedVec<16>, Error>;

/// What the cluster needs to run a task elsewhere and to take its result.
#[derive(Debug)]
pub struct Glue {
    /// Whether every parameter decodes from an archive and the result archives.
    pub remote: bool,
    /// Runs the function from archived arguments.
    pub run: RunFn,
    /// The result's side, when it archives.
    pub result: Option<ResultGlue>,
    /// Runs the function and keeps its result alive in this process (for
    /// `dirk::mutable_on` and `dirk::shard`), when the result can be kept.
    pub live: Option<LiveFn>,
}

/// Runs a registered function with no arguments and returns its result as
/// a live value (boxed).
pub struct LiveFn(pub(crate) Box<dyn Fn() -> Box<dyn std::any::Any + Send> + Send + Sync>);

impl std::fmt::Debug for LiveFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveFn")
    }
}

/// The typed operations on a task's result.
#[derive(Debug, Clone, Copy)]
pub struct ResultGlue {
    /// Decodes an archived result and ends the task with it.
    pub(crate) finish: unsafe fn(TaskRef, &[u8]) -> Result<(), Error>,
    /// Decodes an archived result into a task that completed elsewhere.
    pub(crate) fill: unsafe fn(&TaskRef, &[u8]) -> Result<(), Error>,
}

/// A registered task, resolved.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) id: u64,
    pub(crate) glue: Glue,
}

struct Registry {
    by_path: HashMap<&'static str, Entry>,
    by_id: HashMap<u64, &'static str>,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut by_path = HashMap::new();
        let mut by_id: HashMap<u64, &'static str> = HashMap::new();
        let mut clashes = Vec::new();
        for r in TASKS.iter() {
            let path = (r.path)();
            let id = task_id(path);
            if by_id.get(&id).is_some_and(|p| *p != path) {
                clashes.push(id);
            }
            by_id.insert(id, path);
            by_path.insert(path, Entry { id, glue: (r.glue)() });
        }
        // Two paths with one id (never seen; 64-bit hashes) cannot run remotely.
        for id in clashes {
            by_id.remove(&id);
        }
        Registry { by_path, by_id }
    })
}

/// The registered task whose function item is spelled `path`.
pub(crate) fn by_path(path: &str) -> Option<&'static Entry> {
    if path.is_empty() {
        return None;
    }
    registry().by_path.get(path)
}

/// The registered task with id `id`.
pub(crate) fn by_id(id: u64) -> Option<&'static Entry> {
    let r = registry();
    r.by_id.get(&id).and_then(|p| r.by_path.get(p))
}

/// A task's stable id: FNV-1a of its path.
pub(crate) fn task_id(path: &str) -> u64 {
    path.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fnv1a_of_the_path() {
        assert_eq!(task_id(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(task_id("a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(task_id("m::add"), task_id("m::sub"));
    }
}
