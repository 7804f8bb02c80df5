//! `cargo xtask fuzz [seconds]`: run each cargo-fuzz target of `fuzz/`
//! from its corpus in `fuzz/corpus/` for a fixed time (20 s by default;
//! `cargo xtask test` runs them for 15 s each). New inputs go to a scratch
//! corpus under the target directory, so a run never changes the repository;
//! a crash fails the run and leaves its input in `fuzz/artifacts/`.

use crate::setup::{self, Gaps, MIRI_TOOLCHAIN};
use crate::sh::{self, cargo_on, root};

/// The targets, each with its corpus directory under `fuzz/corpus/`.
const TARGETS: &[&str] = &["frame", "handshake", "ring"];

/// The cargo-fuzz release installed, so that runs on different days use one.
const CARGO_FUZZ: &str = "0.13.2";

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let seconds = match args {
        [] => 20,
        [s] => s.parse().map_err(|_| format!("`cargo xtask fuzz [seconds]`: {s:?} is not a number of seconds"))?,
        _ => return Err("`cargo xtask fuzz` takes at most one argument, the seconds per target".to_owned()),
    };
    let mut gaps = Gaps::default();
    if setup::miri(&mut gaps)? {
        run_all(seconds)?;
    }
    gaps.finish()
}

/// Installs cargo-fuzz (a no-op when this release is there) and runs every
/// target for `seconds` on the pinned nightly (installed by `setup::miri`).
pub(crate) fn run_all(seconds: u32) -> Result<(), String> {
    let mut install = std::process::Command::new("cargo");
    install.args(["install", "cargo-fuzz", "--locked", "--version", CARGO_FUZZ]);
    sh::run(install).map_err(|e| format!("cargo-fuzz could not be installed: {e}"))?;
    let scratch = root().join("target/fuzz-corpus");
    for target in TARGETS {
        let found = scratch.join(target);
        let _ = std::fs::remove_dir_all(&found);
        std::fs::create_dir_all(&found).map_err(|e| format!("could not create {}: {e}", found.display()))?;
        let mut cmd = cargo_on(MIRI_TOOLCHAIN);
        cmd.current_dir(root())
            .args(["fuzz", "run", "--target-dir"])
            .arg(root().join("target/fuzz"))
            .arg(target)
            .arg(&found)
            .arg(root().join("fuzz/corpus").join(target))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            // An input that takes this long is a hang: a failure, not a wait.
            .arg("-timeout=10")
            .arg("-rss_limit_mb=4096");
        sh::run(cmd).map_err(|e| format!("fuzz target `{target}` failed: {e}"))?;
    }
    Ok(())
}
