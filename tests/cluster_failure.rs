//! Failures between processes: a worker killed mid-task, a connection
//! without the cluster's secret, a worker with no process 0.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::within;
use dirk::prelude::*;

const LONG: Duration = Duration::from_secs(60);

#[task]
fn nap(ms: u64) -> usize {
    std::thread::sleep(Duration::from_millis(ms));
    dirk::current_worker()
}

#[task]
fn make(n: usize) -> Vec<f64> {
    vec![1.5; n]
}

#[task]
fn total(xs: &[f64]) -> f64 {
    xs.iter().sum()
}

fn kill(pid: u32) {
    signal("-9", pid);
}

fn signal(signal: &str, pid: u32) {
    let status = Command::new("kill").args([signal, &pid.to_string()]).status().expect("kill runs");
    assert!(status.success());
}

#[dirk::test]
fn a_killed_worker_fails_its_tasks_and_retried_tasks_run_elsewhere() {
    let rt = Runtime::builder().threads(1).workers(2).build().unwrap();
    let pids = rt.worker_pids();
    within(LONG, move || {
        rt.run(|| {
            // A value kept on worker 1 (large, so it stays there).
            let kept = spawn!(scope = Scope::worker(1), make(1 << 20));
            kept.wait().unwrap();
            // Worker 2 is busy, so the task that may retry starts on worker 1.
            let busy = spawn!(scope = Scope::worker(2), nap(400));
            let retried = spawn!(scope = Scope::workers([1, 2]), retries = 1, nap(3000));
            let lost = spawn!(scope = Scope::worker(1), nap(10_000));
            std::thread::sleep(Duration::from_millis(200));
            kill(pids[0]);
            let killed = Instant::now();

            let err = lost.wait().unwrap_err();
            assert!(killed.elapsed() < Duration::from_secs(2), "noticed after {:?}", killed.elapsed());
            assert!(matches!(err, Error::WorkerLost { worker: 1, task } if task == lost.id()), "{err}");
            assert_eq!(err.to_string(), format!("task {} failed: worker 1 was lost", lost.id()));

            assert_eq!(retried.fetch().unwrap(), 2, "re-run on worker 2");
            assert_eq!(busy.fetch().unwrap(), 2);

            // What worker 1 kept is gone with it; tasks that need it fail.
            let err = spawn!(total(&kept)).fetch().unwrap_err();
            assert!(matches!(err.root(), Error::WorkerLost { worker: 1, .. }), "{err}");
            assert!(matches!(kept.fetch().unwrap_err(), Error::WorkerLost { worker: 1, .. }));
            let err = spawn!(scope = Scope::worker(0), total(&kept)).fetch().unwrap_err();
            assert!(matches!(err.root(), Error::WorkerLost { worker: 1, .. }), "{err}");
            // Scoped to the lost worker only: fails at once.
            let err = spawn!(scope = Scope::worker(1), nap(0)).fetch().unwrap_err();
            assert!(matches!(err, Error::WorkerLost { worker: 1, .. }), "{err}");

            // The rest of the cluster goes on.
            assert_eq!(spawn!(scope = Scope::worker(2), nap(0)).fetch().unwrap(), 2);
            assert_eq!(spawn!(total(make(10))).fetch().unwrap(), 15.0);
        });
    });
}

#[dirk::test]
fn a_worker_that_stops_answering_is_lost_after_the_timeout() {
    let timeout = Duration::from_millis(800);
    let rt = Runtime::builder().threads(1).workers(2).worker_timeout(timeout).build().unwrap();
    let pids = rt.worker_pids();
    within(LONG, move || {
        rt.run(|| {
            // Idle for several timeouts, but answering: nobody is lost.
            std::thread::sleep(timeout * 3);
            assert_eq!(spawn!(scope = Scope::worker(1), nap(0)).fetch().unwrap(), 1);
            // Its only thread busy for longer than the timeout: its I/O
            // thread answers all the same.
            let busy = 2 * timeout.as_millis() as u64;
            assert_eq!(spawn!(scope = Scope::worker(1), nap(busy)).fetch().unwrap(), 1);

            let hung = spawn!(scope = Scope::worker(1), nap(60_000));
            std::thread::sleep(Duration::from_millis(100));
            signal("-STOP", pids[0]);
            let stopped = Instant::now();
            let err = hung.wait().unwrap_err();
            let took = stopped.elapsed();
            assert!(matches!(err, Error::WorkerLost { worker: 1, task } if task == hung.id()), "{err}");
            assert!(took >= timeout / 2 && took < timeout * 4, "lost {took:?} after it stopped");

            // The rest of the cluster goes on; the lost worker gets nothing more.
            assert_eq!(spawn!(scope = Scope::worker(2), nap(0)).fetch().unwrap(), 2);
            let err = spawn!(scope = Scope::worker(1), nap(0)).fetch().unwrap_err();
            assert!(matches!(err, Error::WorkerLost { worker: 1, .. }), "{err}");
        });
    });
}

/// Starts this test binary as worker 1 of a cluster at `address` with
/// `secret`, running `test`, and returns its exit code and error output.
fn start_worker(test: &str, address: &str, secret: &str) -> (Option<i32>, String) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", test, "--nocapture", "--quiet"])
        .env("DIRK_WORKER", "1")
        .env("DIRK_CONNECT", address)
        .env("DIRK_SECRET", secret)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the worker did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status.code(), err)
}

#[dirk::test]
fn a_connection_without_the_secret_is_refused() {
    let rt = Runtime::builder().threads(1).workers(1).build().unwrap();
    let address = rt.cluster_address().unwrap().to_owned();
    within(LONG, move || {
        let (code, err) = start_worker(
            "a_connection_without_the_secret_is_refused",
            &address,
            "00000000000000000000000000000000000000000000000000000000000000aa",
        );
        assert_eq!(code, Some(3), "{err}");
        assert!(err.contains("process 0 at") && err.contains("refused this worker"), "{err}");
        // The cluster is unharmed.
        assert_eq!(rt.run(|| spawn!(scope = Scope::worker(1), nap(0)).fetch()).unwrap(), 1);
    });
}

#[dirk::test]
fn a_worker_with_no_process_0_exits_with_a_clear_message() {
    within(LONG, || {
        let (code, err) = start_worker(
            "a_worker_with_no_process_0_exits_with_a_clear_message",
            "/nonexistent/dirk-no-such.sock",
            &"ab".repeat(32),
        );
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("dirk worker 1: could not reach process 0 at /nonexistent/dirk-no-such.sock"), "{err}");
        assert!(err.contains("Runtime::builder().workers(k)"), "{err}");
    });
}

#[test]
fn a_runtime_without_a_dirk_entry_cannot_start_workers() {
    match Runtime::builder().threads(1).workers(1).build() {
        Err(Error::Config(m)) => assert!(m.contains("#[dirk::test]"), "{m}"),
        other => panic!("expected a Config error, got {other:?}"),
    }
}

#[dirk::test]
fn dropping_the_runtime_stops_its_workers_and_cancels_what_ran_there() {
    let rt = Runtime::builder().threads(1).workers(1).build().unwrap();
    let pid = rt.worker_pids()[0];
    within(LONG, move || {
        let slow = rt.run(|| spawn!(scope = Scope::worker(1), nap(30_000)));
        std::thread::sleep(Duration::from_millis(200));
        let start = Instant::now();
        drop(rt);
        assert!(slow.wait().unwrap_err().is_cancelled());
        assert!(start.elapsed() < Duration::from_secs(5), "stopping took {:?}", start.elapsed());
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "worker {pid} is gone");
    });
}
