//! `cargo xtask miri`: run the unit tests of the lock-free and unsafe pieces
//! (task cells and their reference counts, the listener lock, the state
//! word, the chunk allocator, the idle protocol, the run queues, compiled
//! plans, streaming rings, latches, datadeps' projections and matrix views)
//! under Miri, on the dated nightly of `setup`.
//!
//! Tree Borrows, because crossbeam-epoch (under compiled plans' deques) is
//! only sound under it; leaks are ignored because runtimes' shared state is
//! leaked on purpose and crossbeam-epoch keeps a global collector.

use crate::setup::{self, Gaps, MIRI_TOOLCHAIN};
use crate::sh::{self, cargo_on};

/// The unit-test filters Miri runs.
const FILTERS: &[&str] = &[
    "task::",
    "exec::idle",
    "exec::deque",
    "plan::",
    "stream::",
    "sync::latch",
    // The unsafe of datadeps: places projected into buffers, matrix views.
    // (Its tracker and spans are safe code, and their exhaustive tests
    // would take minutes under Miri.)
    "datadeps::matrix",
    "datadeps::project",
];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(unknown) = args.first() {
        return Err(format!("`cargo xtask miri` takes no arguments, not {unknown:?}"));
    }
    let mut gaps = Gaps::default();
    if setup::miri(&mut gaps)? {
        run_on_pinned_nightly()?;
    }
    gaps.finish()
}

/// Runs the filters under Miri; its toolchain must be installed.
pub(crate) fn run_on_pinned_nightly() -> Result<(), String> {
    let mut cmd = cargo_on(MIRI_TOOLCHAIN);
    cmd.args(["miri", "test", "-p", "dirk", "--lib", "--"])
        .args(FILTERS)
        .env("MIRIFLAGS", "-Zmiri-tree-borrows -Zmiri-permissive-provenance -Zmiri-ignore-leaks");
    sh::run(cmd)
}
