//! The files a cluster makes: its sockets live in a directory of the run's
//! own, which only its user can enter, named so that nobody can guess it,
//! and gone on every way the program ends: dropping the runtime, a panic,
//! SIGINT or SIGTERM, and (at the next start) a SIGKILL.
//!
//! The exits are tested on this test binary run again as a child program
//! (`DIRK_TEST_PROGRAM` says how it ends), which prints its run directory.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::within;
use dirk::prelude::*;

const LONG: Duration = Duration::from_secs(60);
const PROGRAM: &str = "DIRK_TEST_PROGRAM";

#[task]
fn worker_id() -> usize {
    dirk::current_worker()
}

/// This process's run directories.
fn run_dirs(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("dirk-run-{pid}-");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[dirk::test]
fn the_sockets_live_in_a_private_directory_that_the_runtime_removes() {
    let rt = Runtime::builder().threads(1).workers(2).build().unwrap();
    within(LONG, move || {
        let dirs = run_dirs(std::process::id());
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        let dir = dirs[0].clone();
        assert_eq!(mode(&dir), 0o700, "only its user enters the directory");
        // SAFETY: `geteuid` has no preconditions.
        assert_eq!(std::fs::metadata(&dir).unwrap().uid(), unsafe { libc::geteuid() });
        // The name ends in 16 random hex digits.
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let random = name.rsplit('-').next().unwrap();
        assert!(random.len() == 16 && random.chars().all(|c| c.is_ascii_hexdigit()), "{name}");
        assert_eq!(rt.cluster_address().map(Path::new), Some(dir.join("p0.sock").as_path()));
        let mut files: Vec<String> =
            std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        files.sort();
        assert_eq!(files, ["p0-w1.sock", "p0-w2.sock", "p0.sock"]);
        for f in &files {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
        assert_eq!(rt.run(|| spawn!(scope = Scope::worker(2), worker_id()).fetch()).unwrap(), 2);
        drop(rt);
        assert!(!dir.exists(), "dropping the runtime removes {}", dir.display());
    });
}

/// Runs this test binary again as a program that starts a cluster and ends
/// as `how` says; returns its run directory (printed by the child) and the
/// child, still running until `how` ends it.
fn start_program(how: &str) -> (PathBuf, std::process::Child) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", "program", "--nocapture", "--test-threads=1"])
        .env(PROGRAM, how)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let dir = loop {
        let line = lines.next().expect("the program prints its run directory").unwrap();
        // libtest prints `test program ... ` before the test's own output.
        if let Some((_, dir)) = line.split_once("RUN DIR ") {
            break PathBuf::from(dir.trim());
        }
    };
    // Keep reading so that the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (dir, child)
}

/// The child program (inert unless `DIRK_TEST_PROGRAM` is set).
#[dirk::test]
fn program() {
    let Ok(how) = std::env::var(PROGRAM) else { return };
    let rt = Runtime::builder().threads(1).workers(1).build().unwrap();
    let dir = Path::new(rt.cluster_address().unwrap()).parent().unwrap().to_owned();
    println!("RUN DIR {}", dir.display());
    assert_eq!(rt.run(|| spawn!(scope = Scope::worker(1), worker_id()).fetch()).unwrap(), 1);
    match how.as_str() {
        "panic" => panic!("the program panics with its cluster running"),
        "exit" => std::process::exit(3),
        _ => std::thread::sleep(Duration::from_secs(60)), // until a signal ends it
    }
}

fn wait_gone(dir: &Path) {
    let start = Instant::now();
    while dir.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn every_way_out_removes_the_directory() {
    within(LONG, || {
        for how in ["panic", "exit", "SIGINT", "SIGTERM"] {
            let (dir, mut child) = start_program(how);
            assert!(dir.is_dir(), "{how}: {}", dir.display());
            if let Some(signal) = how.strip_prefix("SIG") {
                let status = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status();
                assert!(status.unwrap().success());
            }
            let status = child.wait().unwrap();
            assert!(!status.success(), "{how}: the program ended with {status}");
            wait_gone(&dir);
            assert!(!dir.exists(), "{how}: {} is left behind", dir.display());
        }
    });
}

#[dirk::test]
fn a_killed_program_leaves_its_directory_to_the_next_start() {
    let (dir, mut child) = start_program("SIGKILL");
    let status = Command::new("kill").args(["-9", &child.id().to_string()]).status();
    assert!(status.unwrap().success());
    child.wait().unwrap();
    assert!(dir.is_dir(), "nothing runs in a process killed outright");
    // The next cluster this user starts removes it (its process is gone).
    let rt = Runtime::builder().threads(1).workers(1).build().unwrap();
    within(LONG, move || {
        assert!(!dir.exists(), "{} is left behind", dir.display());
        drop(rt);
    });
}
