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
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Process 0 gives the secret on stdin.
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), format!("{secret}\n").as_bytes()).unwrap();
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

/// The global runtime asked by `DIRK_WORKERS` for workers it cannot start
/// (this plain `#[test]` is no dirk entry): every task fails with
/// `Error::Config` giving the reason; nothing panics. Run as a child with
/// the variable set (inert without it).
#[test]
fn global_workers_that_cannot_start_fail_tasks_with_a_config_error() {
    if std::env::var_os("DIRK_WORKERS").is_none() {
        let exe = std::env::current_exe().unwrap();
        let out = Command::new(exe)
            .args(["--exact", "global_workers_that_cannot_start_fail_tasks_with_a_config_error", "--nocapture"])
            .env("DIRK_WORKERS", "2")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    for _ in 0..2 {
        let err = spawn!(nap(0)).fetch().unwrap_err();
        let Error::Config(m) = &err else { panic!("expected a Config error, got {err}") };
        assert!(m.contains("could not start the 2 workers DIRK_WORKERS asks for"), "{m}");
        assert!(m.contains("#[dirk::main]"), "the reason says what to do: {m}");
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

#[task]
fn spin(us: u64) -> usize {
    let start = Instant::now();
    while start.elapsed() < Duration::from_micros(us) {
        std::hint::spin_loop();
    }
    dirk::current_worker()
}

/// Whether `err` is the loss of a worker, directly or through an input.
fn is_loss(err: &Error) -> bool {
    matches!(err.root(), Error::WorkerLost { .. })
}

/// Losing a worker races with sending calls to it and with pulling values
/// it keeps: every call and every fetch registered around the loss must
/// end, with a value or with `Error::WorkerLost`, never wait for ever.
/// Each round starts a cluster, puts calls and fetches in flight on both
/// workers, kills worker 1 at a moment that varies from round to round,
/// and waits for everything with a deadline.
#[dirk::test]
fn calls_and_fetches_in_flight_when_a_worker_dies_all_end() {
    let rounds: u32 = std::env::var("DIRK_LOSS_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let mut outcomes = [0u32; 2]; // values, losses
    for round in 0..rounds {
        // Workers start from the test's own thread; the round runs, with
        // its deadline, on another.
        let rt = Runtime::builder().threads(1).workers(2).build().unwrap();
        outcomes = within(LONG, move || {
            let mut outcomes = outcomes;
            let pids = rt.worker_pids();
            // Kill after 0 to ~2 ms, spread over the rounds.
            let delay = Duration::from_micros(u64::from(round * 7919 % 2000));
            let killer = std::thread::spawn(move || {
                std::thread::sleep(delay);
                kill(pids[0]);
            });
            let tasks = rt.run(|| {
                let mut tasks: Vec<Task<f64>> = Vec::new();
                for i in 0..40u64 {
                    // A value kept on a worker (large: it stays there) and
                    // a task on the other worker or here that needs it.
                    let w = 1 + (i % 2) as usize;
                    let kept = spawn!(scope = Scope::worker(w), make(20_000));
                    let elsewhere = 3 - w;
                    tasks.push(spawn!(scope = Scope::worker(elsewhere), total(&kept)));
                    tasks.push(spawn!(total(&kept)));
                    // Unscoped calls, placed by the cost model.
                    let _ = spawn!(spin(50));
                    // A fetch of the kept value here: a pull from its worker.
                    if i % 4 == 0 {
                        let here = kept.fetch().map(|v| v.iter().sum::<f64>());
                        match here {
                            Ok(v) => assert_eq!(v, 30_000.0),
                            Err(e) => assert!(is_loss(&e), "round {round}: {e}"),
                        }
                    }
                    tasks.push(spawn!(scope = Scope::worker(w), total(kept)));
                    // Calls with a large argument to worker 1: archiving
                    // it takes a while, in which the loss may land.
                    let big = vec![0.75; 40_000];
                    tasks.push(spawn!(scope = Scope::worker(1), total(big)));
                }
                tasks
            });
            killer.join().unwrap();
            for t in &tasks {
                match t.wait_timeout(Duration::from_secs(30)) {
                    None => panic!("round {round}: task {} `{}` never ended after worker 1 died", t.id(), t.name()),
                    Some(Ok(())) => {
                        assert_eq!(t.fetch().unwrap(), 30_000.0);
                        outcomes[0] += 1;
                    }
                    Some(Err(e)) => {
                        assert!(is_loss(&e), "round {round}: task {} failed otherwise: {e}", t.id());
                        outcomes[1] += 1;
                    }
                }
            }
            drop(rt);
            outcomes
        });
    }
    // The deaths landed at different moments: some calls got through.
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "values and losses: {outcomes:?}");
}

/// Whether this process, or a process it starts, can see the cluster
/// secret in its environment.
#[task]
fn secret_in_sight() -> (bool, bool) {
    let here = std::env::vars_os().any(|(k, _)| k.to_string_lossy().contains("SECRET"));
    let child = Command::new("env").output().expect("env runs");
    let there = String::from_utf8_lossy(&child.stdout).contains("SECRET");
    (here, there)
}

#[dirk::test]
fn the_secret_is_in_no_worker_environment() {
    let rt = Runtime::builder().threads(1).workers(1).build().unwrap();
    let pids = rt.worker_pids();
    within(LONG, move || {
        let seen = rt.run(|| spawn!(scope = Scope::worker(1), secret_in_sight()).fetch()).unwrap();
        assert_eq!(seen, (false, false), "(the worker, a process its task started)");
        let environ = std::fs::read(format!("/proc/{}/environ", pids[0])).unwrap();
        assert!(!String::from_utf8_lossy(&environ).contains("SECRET"), "the worker's /proc environ");
    });
}

/// Runs until cancelled, then leaves a mark in `dir` so the test sees it
/// stopped.
#[task]
fn until_cancelled(dir: String) -> u64 {
    let mut rounds = 0;
    while !dirk::cancelled() {
        dirk::sleep(Duration::from_millis(5));
        rounds += 1;
    }
    std::fs::write(std::path::Path::new(&dir).join("stopped"), rounds.to_string()).unwrap();
    rounds
}

#[dirk::test]
fn cancelling_a_task_running_on_a_worker_stops_its_body_there() {
    let dir = std::env::temp_dir().join(format!("dirk-cancel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rt = Runtime::builder().threads(2).workers(1).build().unwrap();
    let d = dir.clone();
    within(LONG, move || {
        rt.run(|| {
            let t = spawn!(scope = Scope::worker(1), until_cancelled(d.to_string_lossy().into_owned()));
            // Let it start there.
            std::thread::sleep(Duration::from_millis(200));
            assert!(!d.join("stopped").exists(), "it runs until cancelled");
            t.cancel();
            assert!(matches!(t.fetch(), Err(Error::Cancelled { .. })));
            // The flag crossed the wire: the body on worker 1 stops.
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while !d.join("stopped").exists() {
                assert!(std::time::Instant::now() < deadline, "the body on the worker never saw the cancel");
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Notes a run in `dir`, then takes its worker down.
#[task]
fn crash_the_worker(dir: String) -> u64 {
    use std::io::Write;
    let mut log =
        std::fs::OpenOptions::new().create(true).append(true).open(std::path::Path::new(&dir).join("runs")).unwrap();
    writeln!(log, "{}", dirk::current_worker()).unwrap();
    drop(log);
    std::process::abort()
}

#[dirk::test]
fn a_task_that_crashes_its_worker_is_retried_at_most_its_retries() {
    let dir = std::env::temp_dir().join(format!("dirk-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rt = Runtime::builder().threads(1).workers(3).build().unwrap();
    let d = dir.clone();
    within(LONG, move || {
        rt.run(|| {
            let path = d.to_string_lossy().into_owned();
            let t = spawn!(scope = Scope::workers([1, 2, 3]), retries = 1, crash_the_worker(path));
            let err = t.fetch().unwrap_err();
            assert!(matches!(err, Error::WorkerLost { .. }), "{err}");
            let runs = std::fs::read_to_string(d.join("runs")).unwrap();
            let workers: Vec<&str> = runs.lines().collect();
            assert_eq!(workers.len(), 2, "one run and one retry, on two workers: {workers:?}");
            assert_ne!(workers[0], workers[1]);
            // The worker it did not reach still runs tasks.
            let survivors: Vec<usize> = (1..=3).filter(|w| !workers.contains(&w.to_string().as_str())).collect();
            assert_eq!(survivors.len(), 1);
            assert_eq!(spawn!(scope = Scope::worker(survivors[0]), nap(0)).fetch().unwrap(), survivors[0]);
        })
    });
    let _ = std::fs::remove_dir_all(&dir);
}
