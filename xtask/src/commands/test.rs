//! `cargo xtask test`: the README's test command, and what CI runs.
//!
//! 1. Install what a fresh machine lacks: rustfmt, clippy, cargo-nextest.
//! 2. Check formatting, then clippy with warnings denied.
//! 3. Run every test with nextest (each test in its own process, with the
//!    time limits of `.config/nextest.toml`), then the doctests.
//! 4. Run the unsafe and lock-free pieces under Miri (`cargo xtask miri`).
//! 5. Run the benchmarks in their quick form, so the harness cannot rot.

use std::process::Command;

use crate::sh::{self, cargo};

/// The cargo features the tests run with. Each area adds its own feature
/// here (never `--all-features`: hardware-specific features such as `cuda`
/// cannot build on every machine).
const FEATURES: &[&str] = &[];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(unknown) = args.first() {
        return Err(format!("`cargo xtask test` takes no arguments, not {unknown:?}"));
    }
    setup()?;
    sh::run(cargo_args(&["fmt", "--all", "--", "--check"]))?;
    let features = FEATURES.join(",");
    let with_features = |args: &[&str]| {
        let mut cmd = cargo_args(args);
        if !features.is_empty() {
            cmd.args(["--features", &features]);
        }
        cmd
    };
    let mut clippy = with_features(&["clippy", "--workspace", "--all-targets"]);
    clippy.args(["--", "-D", "warnings"]);
    sh::run(clippy)?;
    let profile = if std::env::var_os("CI").is_some() { "ci" } else { "default" };
    sh::run(with_features(&["nextest", "run", "--workspace", "--profile", profile]))?;
    sh::run(with_features(&["test", "--workspace", "--doc"]))?;
    super::miri::run(&[])?;
    super::bench::run(&["--quick".to_owned()])?;
    Ok(())
}

fn cargo_args(args: &[&str]) -> Command {
    let mut cmd = cargo();
    cmd.args(args);
    cmd
}

/// Installs the tools the checks need when they are missing.
fn setup() -> Result<(), String> {
    let components = Command::new("rustup").args(["component", "list", "--installed"]).output();
    let installed = components.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    for component in ["rustfmt", "clippy"] {
        if !installed.lines().any(|l| l.starts_with(component)) {
            let mut cmd = Command::new("rustup");
            cmd.args(["component", "add", component]);
            sh::run(cmd)?;
        }
    }
    let nextest = cargo_args(&["nextest", "--version"]).output().is_ok_and(|o| o.status.success());
    if !nextest {
        sh::run(cargo_args(&["install", "cargo-nextest", "--locked"]))?;
    }
    Ok(())
}
