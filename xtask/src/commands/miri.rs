//! `cargo xtask miri`: run the unit tests of the lock-free and unsafe pieces
//! (task cells and their reference counts, the listener lock, the state
//! word, the chunk allocator, the idle protocol, the run queues, compiled
//! plans, streaming rings) under Miri.
//!
//! Tree Borrows, because crossbeam-epoch (under compiled plans' deques) is
//! only sound under it; leaks are ignored because runtimes' shared state is
//! leaked on purpose and crossbeam-epoch keeps a global collector.

use std::process::Command;

use crate::sh;

/// The unit-test filters Miri runs.
const FILTERS: &[&str] = &["task::", "exec::idle", "exec::deque", "plan::", "stream::"];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(unknown) = args.first() {
        return Err(format!("`cargo xtask miri` takes no arguments, not {unknown:?}"));
    }
    setup()?;
    let mut cmd = Command::new("cargo");
    cmd.current_dir(sh::root())
        .args(["+nightly", "miri", "test", "-p", "dirk", "--lib", "--"])
        .args(FILTERS)
        .env("MIRIFLAGS", "-Zmiri-tree-borrows -Zmiri-permissive-provenance -Zmiri-ignore-leaks");
    sh::run(cmd)
}

/// Installs the nightly toolchain with Miri when it is missing.
fn setup() -> Result<(), String> {
    let has_miri =
        Command::new("cargo").args(["+nightly", "miri", "--version"]).output().is_ok_and(|o| o.status.success());
    if !has_miri {
        let mut cmd = Command::new("rustup");
        cmd.args(["toolchain", "install", "nightly", "--profile", "minimal", "--component", "miri", "rust-src"]);
        sh::run(cmd).map_err(|e| format!("Miri needs the nightly toolchain: {e}"))?;
    }
    Ok(())
}
