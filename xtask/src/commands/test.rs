//! `cargo xtask test`: the README's test command, and what CI runs.
//!
//! 1. Install what a fresh machine lacks, every installer on every run
//!    (`setup`): Rust 1.95.0 with rustfmt and clippy, cargo-nextest, OpenMPI
//!    and libclang (for the `mpi` feature's bindings), a Vulkan driver for
//!    the GPU tests (Mesa's runs kernels on the CPU where there is no GPU),
//!    and the nightly with Miri.
//! 2. Check formatting, then clippy with warnings denied, for each
//!    [`FEATURE_SETS`]: the default set users get, each feature alone, all.
//! 3. Run every test with nextest (each test in its own process, with the
//!    time limits of `.config/nextest.toml`) and the doctests, with every
//!    feature; then the tests again with the default features, the
//!    compile-fail snapshots among them (they hold one configuration's
//!    wording: the pinned toolchain, the default features).
//! 4. Run the unsafe and lock-free pieces under Miri (`cargo xtask miri`),
//!    then each cargo-fuzz target from its corpus for 15 s (`cargo xtask
//!    fuzz`), cargo-fuzz itself installed by `cargo install` on every run.
//! 5. Run the benchmarks in their quick form, so the harness cannot rot.
//!
//! Steps 2 to 4 run on the pinned toolchain. A tool that could not be
//! installed fails the command at the end, after the other checks ran.

use std::process::Command;

use crate::setup::{self, Checks, Gaps};
use crate::sh;

/// The cargo features the tests run with. Each area adds its own feature
/// here (never `--all-features`: hardware-specific features such as `cuda`
/// cannot build on every machine).
pub(crate) const FEATURES: &[&str] = &[
    "mpi",   // worker ranks under mpirun (issue 5); needs OpenMPI, installed by `setup`
    "gpu",   // GPU processors through CubeCL (issue 6); needs a Vulkan driver, installed by `setup`
    "array", // distributed arrays on faer tiles (issue 25)
];

/// The feature sets clippy checks: the default (what users build), each
/// feature on its own (a `cfg` that only compiles beside another feature
/// is caught here), and all of them.
const FEATURE_SETS: &[&[&str]] = &[&[], &["mpi"], &["gpu"], FEATURES];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(unknown) = args.first() {
        return Err(format!("`cargo xtask test` takes no arguments, not {unknown:?}"));
    }
    let mut gaps = Gaps::default();
    let checks = setup::checks(&mut gaps)?;
    let miri = setup::miri(&mut gaps)?;

    let mut fmt = checks.cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    sh::run(fmt)?;
    for features in FEATURE_SETS {
        let mut clippy = with_features(&checks, &["clippy", "--workspace", "--all-targets"], features);
        clippy.args(["--", "-D", "warnings"]);
        sh::run(clippy)?;
    }
    let profile = if std::env::var_os("CI").is_some() { "ci" } else { "default" };
    let nextest = ["nextest", "run", "--workspace", "--profile", profile];
    // The compile-fail snapshots hold rustc's words for one configuration,
    // the pinned toolchain and the default features (with more crates
    // linked, rustc spells paths in full: `dirk::Task<String>` for
    // `Task<String>`), so they run with the default set only.
    let mut every_feature = with_features(&checks, &nextest, FEATURES);
    every_feature.args(["-E", "not binary(ui)"]);
    sh::run(every_feature)?;
    sh::run(with_features(&checks, &["test", "--workspace", "--doc"], FEATURES))?;
    sh::run(with_features(&checks, &nextest, &[]))?;
    if miri {
        super::miri::run_on_pinned_nightly()?;
        // The fuzz targets build on the same pinned nightly.
        super::fuzz::run_all(15)?;
    }
    super::bench::run(&["--quick".to_owned()])?;
    gaps.finish()
}

/// `cargo <args> --features <features>` on the checks' toolchain.
pub(crate) fn with_features(checks: &Checks, args: &[&str], features: &[&str]) -> Command {
    let mut cmd = checks.cargo();
    cmd.args(args);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    cmd
}
