//! Installing what the checks need, on every run.
//!
//! Every installer is called every time and is idempotent (it does nothing
//! when the tool is there), so no install step is skipped on a machine that
//! happens to have the tool already, and none can rot unseen:
//!
//! 1. Rust [`CHECKS_TOOLCHAIN`] with rustfmt and clippy (rustup). Formatting,
//!    lints, tests and the compile-fail snapshots run on this named
//!    toolchain, so a new stable's wording or lints change nothing until the
//!    pin moves (`cargo xtask bless` rewrites the snapshots on it too).
//! 2. cargo-nextest [`NEXTEST_VERSION`] (`cargo install --locked` builds it
//!    only when that version is not installed).
//! 3. OpenMPI, libclang (the `mpi` feature's bindings) and a Vulkan driver
//!    (the `gpu` tests; Mesa's runs kernels on the CPU), from the system's
//!    packages when a file they provide is missing.
//! 4. [`MIRI_TOOLCHAIN`] with Miri and rust-src (rustup), for `cargo xtask miri`.
//!
//! Where a step cannot run at all (no rustup, no apt-get), it says what to
//! install and how. Steps the rest does not need (the pinned toolchain,
//! Miri) become [`Gaps`]: the other checks still run, and the command fails
//! at the end naming each gap, so a missing tool is never a silent pass.

use std::path::Path;
use std::process::Command;

use crate::sh::{self, cargo, cargo_on};

/// The toolchain every check runs on (README: "Two commands").
pub(crate) const CHECKS_TOOLCHAIN: &str = "1.95.0";

/// The nightly Miri runs on, dated so that Miri's own checks move only when we move them.
pub(crate) const MIRI_TOOLCHAIN: &str = "nightly-2026-05-20";

/// The test runner's version, pinned so a new release is never compiled unasked.
const NEXTEST_VERSION: &str = "0.9.143";

/// Checks that could not run, each with what to install; reported at the end.
#[derive(Debug, Default)]
pub(crate) struct Gaps(Vec<String>);

impl Gaps {
    /// Records a check that cannot run, and says so loudly at once.
    pub(crate) fn note(&mut self, what: String) {
        eprintln!("\n!!! NOT CHECKED: {what}\n");
        self.0.push(what);
    }

    /// `Ok` when every check ran; otherwise an error naming each gap.
    pub(crate) fn finish(self) -> Result<(), String> {
        if self.0.is_empty() {
            return Ok(());
        }
        Err(format!(
            "every check that ran passed, but {} could not run, so this is not a pass:\n  - {}",
            if self.0.len() == 1 { "one" } else { "some" },
            self.0.join("\n  - ")
        ))
    }
}

/// The cargo the checks run with.
#[derive(Debug)]
pub(crate) struct Checks {
    /// Whether rustup installed [`CHECKS_TOOLCHAIN`] (else: the running cargo).
    pinned: bool,
}

impl Checks {
    /// `cargo` on the pinned toolchain, in the workspace root.
    pub(crate) fn cargo(&self) -> Command {
        if self.pinned { cargo_on(CHECKS_TOOLCHAIN) } else { cargo() }
    }
}

/// Steps 1 to 3: the toolchain, nextest and the system packages.
pub(crate) fn checks(gaps: &mut Gaps) -> Result<Checks, String> {
    let checks = toolchain(gaps)?;
    let mut nextest = checks.cargo();
    nextest.args(["install", "cargo-nextest", "--locked", "--version", NEXTEST_VERSION]);
    sh::run(nextest)?;
    system_packages()?;
    Ok(checks)
}

/// Step 1: the pinned toolchain, or the running one (and a gap) without rustup.
pub(crate) fn toolchain(gaps: &mut Gaps) -> Result<Checks, String> {
    if sh::has("rustup") {
        let mut install = Command::new("rustup");
        install.args(["toolchain", "install", CHECKS_TOOLCHAIN, "--profile", "minimal"]);
        install.args(["--component", "rustfmt", "--component", "clippy"]);
        sh::run(install)?;
        return Ok(Checks { pinned: true });
    }
    gaps.note(format!(
        "the checks ran on this machine's Rust, not on Rust {CHECKS_TOOLCHAIN}, so the compile-fail snapshots \
         and lints may differ: install rustup (https://rustup.rs), then run `cargo xtask test` again"
    ));
    let checks = Checks { pinned: false };
    for (subcommand, component) in [("fmt", "rustfmt"), ("clippy", "clippy")] {
        let present = checks.cargo().args([subcommand, "--version"]).output().is_ok_and(|o| o.status.success());
        if !present {
            return Err(format!("`cargo {subcommand}` is missing: install {component} with your Rust"));
        }
    }
    Ok(checks)
}

/// Step 4: Miri's toolchain; `false` (and a gap) where it cannot be installed.
pub(crate) fn miri(gaps: &mut Gaps) -> Result<bool, String> {
    if !sh::has("rustup") {
        gaps.note(format!(
            "Miri did not run: it needs rustup (https://rustup.rs), then \
             `rustup toolchain install {MIRI_TOOLCHAIN} --profile minimal --component miri --component rust-src`"
        ));
        return Ok(false);
    }
    let mut install = Command::new("rustup");
    install.args(["toolchain", "install", MIRI_TOOLCHAIN, "--profile", "minimal"]);
    install.args(["--component", "miri", "--component", "rust-src"]);
    sh::run(install).map_err(|e| format!("Miri's toolchain could not be installed: {e}"))?;
    Ok(true)
}

/// A system package, and how to tell that it (or an equivalent) is installed.
struct Package {
    name: &'static str,
    present: fn() -> bool,
    why: &'static str,
}

const PACKAGES: &[Package] = &[
    Package { name: "openmpi-bin", present: || sh::has("mpirun"), why: "mpirun, for the `mpi` tests" },
    Package {
        name: "libopenmpi-dev",
        present: || any_exists(&["/usr/include/x86_64-linux-gnu/openmpi", "/usr/lib/x86_64-linux-gnu/openmpi/include"]),
        why: "the MPI headers the `mpi` feature builds against",
    },
    Package { name: "libclang-dev", present: libclang, why: "libclang, which generates the MPI bindings" },
    Package {
        name: "mesa-vulkan-drivers",
        present: vulkan_driver,
        why: "a Vulkan driver, which runs the `gpu` tests' kernels on the CPU where there is no GPU",
    },
    Package {
        name: "libvulkan1",
        present: || {
            any_exists(&["/usr/lib/x86_64-linux-gnu/libvulkan.so.1", "/usr/lib/aarch64-linux-gnu/libvulkan.so.1"])
        },
        why: "the Vulkan loader",
    },
];

/// Step 3: installs each package that is missing.
fn system_packages() -> Result<(), String> {
    let missing: Vec<&Package> = PACKAGES.iter().filter(|p| !(p.present)()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !sh::has("apt-get") {
        let what: Vec<String> = missing.iter().map(|p| format!("{} ({})", p.name, p.why)).collect();
        return Err(format!(
            "these system packages are missing and there is no apt-get to install them: {}; \
             install them (or your system's equivalents) and run `cargo xtask test` again",
            what.join(", ")
        ));
    }
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let apt = |args: &[&str]| {
        let mut cmd = if root { Command::new("apt-get") } else { Command::new("sudo") };
        if !root {
            cmd.arg("apt-get");
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    sh::run(apt(&["update", "-qq"]))?;
    let mut install = apt(&["install", "-y", "-qq"]);
    install.args(missing.iter().map(|p| p.name));
    sh::run(install)
}

fn any_exists(files: &[&str]) -> bool {
    files.iter().any(|file| Path::new(file).exists())
}

/// Debian installs libclang as /usr/lib/llvm-<version>/lib/libclang.so.
fn libclang() -> bool {
    std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("llvm-") && e.path().join("lib/libclang.so").exists())
}

/// Any registered Vulkan driver will do: a GPU's own, or Mesa's.
fn vulkan_driver() -> bool {
    ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .any(|mut entries| entries.next().is_some())
}
