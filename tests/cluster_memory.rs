//! Worker processes when shared memory is short: a small /dev/shm (Docker
//! gives containers 64 MiB) never kills a process with SIGBUS. Values that
//! find no room in shared memory go through the socket, and what needs
//! shared memory and cannot have it fails with `Error::Transport` saying so.
//!
//! The test runs itself again in a mount namespace of its own whose
//! /dev/shm is an 8 MiB tmpfs (`unshare -m`, as root).

mod common;

use std::process::Command;
use std::time::Duration;

use common::within;
use dirk::prelude::*;

const LONG: Duration = Duration::from_secs(120);

/// Set in the run inside the namespace.
const INSIDE: &str = "DIRK_TEST_SMALL_SHM";

#[task]
fn total(xs: &[f64]) -> f64 {
    xs.iter().sum()
}

#[task]
fn make(n: usize) -> Vec<f64> {
    vec![0.5; n]
}

#[task]
fn double(x: u64) -> u64 {
    2 * x
}

#[dirk::test]
fn a_small_dev_shm_sends_values_through_the_socket_and_never_faults() {
    if std::env::var_os(INSIDE).is_none() {
        return run_inside_a_small_dev_shm("a_small_dev_shm_sends_values_through_the_socket_and_never_faults");
    }
    let rt = Runtime::builder().threads(1).workers(1).build().unwrap();
    within(LONG, move || {
        rt.run(|| {
            // 4 MiB fits in what the tmpfs has; 40 MiB does not, and goes
            // through the socket (before, its first page fault past the
            // tmpfs's size killed the process with SIGBUS). Both ways: to
            // the worker, and its result back.
            for n in [512 << 10, 5 << 20, 512 << 10] {
                let xs = vec![0.5; n];
                let sum = spawn!(scope = Scope::worker(1), total(xs)).fetch().unwrap();
                assert_eq!(sum, n as f64 / 2.0, "{n} elements to the worker");
                // And back: the worker's ring to process 0.
                let back = spawn!(scope = Scope::worker(1), make(n)).fetch().unwrap();
                assert_eq!(back.len(), n);
            }
            // A stage on the worker needs rings of its own, which do not fit.
            let mut i = 0u64;
            let out = streaming! {
                let x = { i += 1; (i <= 10).then_some(i) }?;
                #[dirk(scope = Scope::worker(1))] let y = double(x);
                y
            };
            let err = out.wait().unwrap_err();
            assert!(
                matches!(&err, Error::Transport(m) if m.contains("shared memory is short")),
                "a stage without rings fails with a transport error: {err}"
            );
        });
    });
}

/// Runs test `name` again, as a child process in a new mount namespace with
/// an 8 MiB /dev/shm, and checks that it passed.
fn run_inside_a_small_dev_shm(name: &'static str) {
    within(LONG, move || {
        let exe = std::env::current_exe().unwrap();
        let script = format!(
            "mount -t tmpfs -o size=8m tmpfs /dev/shm && exec '{}' --exact {name} --nocapture --test-threads=1",
            exe.display()
        );
        let out = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .env(INSIDE, "1")
            .output()
            .expect("unshare runs (util-linux)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "the run with an 8 MiB /dev/shm failed ({}):\n{stdout}\n{stderr}", out.status);
        assert!(stdout.contains("1 passed"), "{stdout}\n{stderr}");
        assert!(stderr.contains("shared memory is short"), "the fall-back to the socket is reported:\n{stderr}");
    });
}
