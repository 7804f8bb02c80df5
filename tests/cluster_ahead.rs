//! Calls sent ahead: a task scoped to one worker goes there when it is
//! spawned, waits there for its inputs, and takes values made on other
//! workers from those workers directly (large ones through process 0). Results, failures, cancellation and a lost
//! worker behave as for calls sent once their inputs are complete.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::within;
use dirk::prelude::*;

const LONG: Duration = Duration::from_secs(60);

#[task]
fn seed(ms: u64, x: u64) -> Vec<u64> {
    std::thread::sleep(Duration::from_millis(ms));
    vec![x]
}

#[task]
fn inc(prev: &[u64]) -> Vec<u64> {
    vec![prev[0] + 1]
}

/// One step of two interleaved sequences: `own` and `other` of the step
/// before; `len` elements (large ones stay on their worker until needed).
#[task]
fn step(own: &[u64], other: &[u64], len: usize) -> Vec<u64> {
    let x = own[0].wrapping_mul(31).wrapping_add(other[0]).wrapping_add(dirk::current_worker() as u64 * 1000);
    vec![x; len]
}

#[task]
fn slow(prev: &[u64], ms: u64) -> Vec<u64> {
    std::thread::sleep(Duration::from_millis(ms));
    vec![prev[0] + 1]
}

#[task]
fn fragile(prev: &[u64], fail_at: u64) -> Vec<u64> {
    assert!(prev[0] != fail_at, "step {fail_at} fails");
    vec![prev[0] + 1]
}

#[dirk::test]
fn a_chain_scoped_to_one_worker_is_sent_there_when_spawned() {
    let rt = Runtime::builder().threads(1).workers(2).worker_threads(1).build().unwrap();
    within(LONG, move || {
        rt.run(|| {
            let first = spawn!(scope = Scope::worker(1), seed(300, 7));
            let before = dirk::socket_bytes();
            let mut chain = vec![first];
            for _ in 0..50 {
                let prev = chain.last().unwrap();
                let next = spawn!(scope = Scope::worker(1), inc(prev));
                chain.push(next);
            }
            let sent = dirk::socket_bytes() - before;
            // Every call went out at once, before the first input exists.
            assert!(!chain[0].is_ready(), "the seed sleeps");
            assert!(sent >= 50 * 64, "only {sent} bytes sent for 50 calls");
            for (i, t) in chain.iter().enumerate() {
                assert_eq!(t.fetch().unwrap(), vec![7 + i as u64]);
            }
        });
    });
}

/// A seed that starts once the file `gate` exists: the test opens the gate
/// when every call is spawned, so that every call is sent ahead however
/// slow the spawning is next to the workers.
#[task]
fn gated_seed(gate: String, x: u64) -> Vec<u64> {
    while !std::path::Path::new(&gate).exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    vec![x]
}

/// Two sequences, one per worker, each step reading both of the step
/// before: every step crosses workers. The seeds wait until every step is
/// spawned.
fn interleaved(rt: &Runtime, steps: usize, len: usize) -> (Vec<u64>, Vec<u64>) {
    static GATES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = GATES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let gate = std::env::temp_dir().join(format!("dirk-test-gate-{}-{n}", std::process::id()));
    let path = gate.to_string_lossy().into_owned();
    let out = rt.run(|| {
        let (mut a, mut b) = (
            spawn!(scope = Scope::worker(1), gated_seed(path.clone(), 1)),
            spawn!(scope = Scope::worker(2), gated_seed(path.clone(), 2)),
        );
        for _ in 0..steps {
            let a2 = spawn!(scope = Scope::worker(1), step(&a, &b, len));
            let b2 = spawn!(scope = Scope::worker(2), step(&b, &a, len));
            (a, b) = (a2, b2);
        }
        std::fs::write(&gate, b"open").unwrap();
        (a.fetch().unwrap(), b.fetch().unwrap())
    });
    let _ = std::fs::remove_file(&gate);
    out
}

fn interleaved_serially(steps: usize, len: usize) -> (Vec<u64>, Vec<u64>) {
    let (mut a, mut b) = (1u64, 2u64);
    for _ in 0..steps {
        (a, b) = (
            a.wrapping_mul(31).wrapping_add(b).wrapping_add(1000),
            b.wrapping_mul(31).wrapping_add(a).wrapping_add(2000),
        );
    }
    (vec![a; len], vec![b; len])
}

#[dirk::test]
fn values_made_on_other_workers_reach_calls_sent_ahead() {
    let rt = Runtime::builder().threads(1).workers(2).worker_threads(1).build().unwrap();
    within(LONG, move || {
        // Small values go from worker to worker; 80 KiB ones stay on their
        // worker and are pulled to process 0, then given on.
        for len in [1, 10 << 10] {
            assert_eq!(interleaved(&rt, 40, len), interleaved_serially(40, len), "elements of {len}");
        }
    });
}

#[dirk::test]
fn small_values_go_from_worker_to_worker_without_passing_through_process_0() {
    let rt = Runtime::builder().threads(1).workers(2).worker_threads(1).build().unwrap();
    within(LONG, move || {
        let (steps, len) = (20, 2048);
        let before = dirk::socket_bytes();
        assert_eq!(interleaved(&rt, steps, len), interleaved_serially(steps, len));
        let moved = dirk::socket_bytes() - before;
        // Each 16 KiB value comes to process 0 once, with its `Done`; given
        // on from there, it would also go out again.
        let values = 2 * steps as u64 * (len as u64 * 8);
        assert!(moved >= values, "{moved} bytes through process 0 for {values} bytes of values");
        assert!(moved < values + values / 2, "{moved} bytes through process 0 for {values} bytes of values");
    });
}

#[dirk::test]
fn a_value_for_a_worker_that_cannot_be_reached_directly_goes_through_process_0() {
    let rt = Runtime::builder().threads(1).workers(2).worker_threads(1).build().unwrap();
    within(LONG, move || {
        // Worker 2 goes on, but nobody can open a link to it any more: its
        // socket beside process 0's is gone.
        let prefix = format!("dirk-run-{}-", std::process::id());
        let removed: Vec<_> = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path().join("p0-w2.sock"))
            .filter(|p| p.exists())
            .inspect(|p| std::fs::remove_file(p).unwrap())
            .collect();
        assert_eq!(removed.len(), 1, "worker 2 listens beside process 0");
        let (steps, len) = (10, 2048);
        let before = dirk::socket_bytes();
        assert_eq!(interleaved(&rt, steps, len), interleaved_serially(steps, len));
        let moved = dirk::socket_bytes() - before;
        // Every value comes to process 0 with its `Done`; those worker 1
        // made for worker 2 (all but the last step's) come again (`Relay`)
        // and leave it (`Give`): 1.9 times the values' bytes in all, where
        // values given directly pass once.
        let values = 2 * steps as u64 * (len as u64 * 8);
        assert!(moved >= values * 18 / 10, "{moved} bytes through process 0 for {values} bytes of values");
    });
}

#[dirk::test]
fn the_answer_to_a_short_call_is_not_held_up_by_a_long_one_after_it() {
    let rt = Runtime::builder().threads(1).workers(1).worker_threads(1).build().unwrap();
    within(LONG, move || {
        rt.run(|| {
            // `quick` runs briefly and readies `long`, which its worker runs
            // next: its answer may wait to go out with a later one, but not
            // for the 3 s that `long` takes.
            let first = spawn!(scope = Scope::worker(1), seed(200, 1));
            let quick = spawn!(scope = Scope::worker(1), inc(&first));
            let long = spawn!(scope = Scope::worker(1), slow(&quick, 3000));
            let start = Instant::now();
            assert_eq!(quick.fetch().unwrap(), vec![2]);
            let took = start.elapsed();
            assert!(!long.is_ready(), "the long call still runs");
            assert!(took < Duration::from_millis(1500), "the answer took {took:?}");
            assert_eq!(long.fetch().unwrap(), vec![3]);
        });
    });
}

#[dirk::test]
fn a_panic_in_a_chain_sent_ahead_fails_what_follows_on_every_worker() {
    let rt = Runtime::builder().threads(1).workers(2).worker_threads(1).build().unwrap();
    within(LONG, move || {
        rt.run(|| {
            let mut chain = vec![spawn!(scope = Scope::worker(1), seed(100, 0))];
            for _ in 0..10 {
                let next = spawn!(scope = Scope::worker(1), fragile(chain.last().unwrap(), 4));
                chain.push(next);
            }
            // A chain on worker 2 that takes a value from the middle of it.
            let across = spawn!(scope = Scope::worker(2), inc(&chain[7]));
            let after = spawn!(scope = Scope::worker(2), inc(&across));
            let apart = spawn!(scope = Scope::worker(2), inc(&chain[2]));
            for (i, t) in chain.iter().enumerate().take(5) {
                assert_eq!(t.fetch().unwrap(), vec![i as u64]);
            }
            let err = chain[5].wait().unwrap_err();
            assert!(matches!(err, Error::Panicked { ref message, .. } if message == "step 4 fails"), "{err}");
            for t in chain[6..].iter().chain([&across, &after]) {
                let err = t.wait().unwrap_err();
                assert!(matches!(err.root(), Error::Panicked { task, .. } if *task == chain[5].id()), "{err}");
            }
            assert_eq!(apart.fetch().unwrap(), vec![3]);
        });
        // The cluster goes on.
        assert_eq!(interleaved(&rt, 5, 1), interleaved_serially(5, 1));
    });
}

#[dirk::test]
fn a_cancelled_call_sent_ahead_goes_unrun_and_what_follows_fails() {
    let rt = Runtime::builder().threads(1).workers(2).worker_threads(1).build().unwrap();
    within(LONG, move || {
        rt.run(|| {
            let first = spawn!(scope = Scope::worker(1), seed(300, 1));
            let cancelled = spawn!(scope = Scope::worker(1), inc(&first));
            let here = spawn!(scope = Scope::worker(1), inc(&cancelled));
            let there = spawn!(scope = Scope::worker(2), inc(&cancelled));
            let kept = spawn!(scope = Scope::worker(2), inc(&first));
            cancelled.cancel();
            assert!(matches!(cancelled.wait().unwrap_err(), Error::Cancelled { .. }));
            for t in [&here, &there] {
                let err = t.wait().unwrap_err();
                assert!(matches!(err.root(), Error::Cancelled { task } if *task == cancelled.id()), "{err}");
            }
            assert_eq!(first.fetch().unwrap(), vec![1]);
            assert_eq!(kept.fetch().unwrap(), vec![2]);
        });
        assert_eq!(interleaved(&rt, 5, 1), interleaved_serially(5, 1));
    });
}

#[dirk::test]
fn calls_sent_ahead_that_await_a_lost_worker_fail_and_the_rest_go_on() {
    let rt = Runtime::builder().threads(1).workers(2).worker_threads(1).build().unwrap();
    let pids = rt.worker_pids();
    within(LONG, move || {
        rt.run(|| {
            let doomed = spawn!(scope = Scope::worker(1), seed(10_000, 1));
            let waits = spawn!(scope = Scope::worker(2), inc(&doomed));
            let then = spawn!(scope = Scope::worker(2), inc(&waits));
            let free = spawn!(scope = Scope::worker(2), seed(200, 5));
            let follows = spawn!(scope = Scope::worker(2), inc(&free));
            std::thread::sleep(Duration::from_millis(100));
            let status = Command::new("kill").args(["-9", &pids[0].to_string()]).status().unwrap();
            assert!(status.success());
            let killed = Instant::now();
            for t in [&waits, &then] {
                let err = t.wait().unwrap_err();
                assert!(matches!(err.root(), Error::WorkerLost { worker: 1, .. }), "{err}");
            }
            assert!(killed.elapsed() < Duration::from_secs(2), "noticed after {:?}", killed.elapsed());
            assert_eq!(follows.fetch().unwrap(), vec![6]);
            // Worker 2 still takes calls sent ahead.
            let mut last = spawn!(scope = Scope::worker(2), seed(50, 10));
            for _ in 0..10 {
                last = spawn!(scope = Scope::worker(2), inc(&last));
            }
            assert_eq!(last.fetch().unwrap(), vec![20]);
        });
    });
}
