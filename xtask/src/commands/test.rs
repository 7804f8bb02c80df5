//! `cargo xtask test`: the README's test command, and what CI runs.
//!
//! 1. Install what a fresh machine lacks: rustfmt, clippy, cargo-nextest,
//!    OpenMPI and libclang (for the `mpi` feature's bindings),
//!    and a Vulkan driver for the GPU tests (Mesa's, which runs kernels on
//!    the CPU where there is no GPU).
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
pub(crate) const FEATURES: &[&str] = &[
    "mpi", // worker ranks under mpirun (issue 5); needs OpenMPI, installed by `setup`
    "gpu", // GPU processors through CubeCL (issue 6); needs a Vulkan driver, installed by `setup`
];

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
    vulkan_driver()?;
    install_mpi()
}

/// OpenMPI (`mpirun` and the library the `mpi` feature links) and libclang
/// (which generates the bindings), from Debian's packages when missing.
fn install_mpi() -> Result<(), String> {
    let mpirun = Command::new("mpirun").arg("--version").output().is_ok_and(|o| o.status.success());
    let headers = std::path::Path::new("/usr/include/x86_64-linux-gnu/openmpi").exists()
        || std::path::Path::new("/usr/lib/x86_64-linux-gnu/openmpi/include").exists();
    let libclang = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("llvm-") && e.path().join("lib/libclang.so").exists());
    if mpirun && headers && libclang {
        return Ok(());
    }
    let mut update = Command::new("apt-get");
    update.args(["update", "-qq"]);
    sh::run(update)?;
    let mut install = Command::new("apt-get");
    install.args(["install", "-y", "-qq", "openmpi-bin", "libopenmpi-dev", "libclang-dev"]);
    install.env("DEBIAN_FRONTEND", "noninteractive");
    sh::run(install)
}

/// The GPU tests (feature `gpu`) run real kernels through CubeCL's wgpu
/// runtime; without a GPU that needs Mesa's software Vulkan driver
/// (lavapipe). Installed with apt where no Vulkan driver is registered.
fn vulkan_driver() -> Result<(), String> {
    let registered = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .any(|mut entries| entries.next().is_some());
    let loader = std::path::Path::new("/usr/lib/x86_64-linux-gnu/libvulkan.so.1").exists()
        || std::path::Path::new("/usr/lib/aarch64-linux-gnu/libvulkan.so.1").exists();
    if registered && loader {
        return Ok(());
    }
    let has_apt = Command::new("apt-get").arg("--version").output().is_ok_and(|o| o.status.success());
    if !has_apt {
        return Err(
            "the GPU tests need a Vulkan driver: install Mesa's (Debian/Ubuntu: mesa-vulkan-drivers)".to_owned()
        );
    }
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
    let apt = |args: &[&str]| {
        let mut cmd = if root { Command::new("apt-get") } else { Command::new("sudo") };
        if !root {
            cmd.arg("apt-get");
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    sh::run(apt(&["update", "-qq"]))?;
    sh::run(apt(&["install", "-y", "-qq", "mesa-vulkan-drivers", "libvulkan1"]))
}
