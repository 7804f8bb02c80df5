//! Worker processes: where scoped and unscoped tasks run, and a graph that
//! spans processes computing what one process computes.
//!
//! Every test builds its runtime on the test's own thread (so that the
//! worker processes, which run this test binary again, know which test to
//! run) and bounds the rest with `within`. Dropping the runtime stops the
//! workers.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use common::within;
use dirk::prelude::*;

const LONG: Duration = Duration::from_secs(60);

#[task]
fn who_am_i() -> (usize, Option<usize>) {
    (dirk::current_worker(), dirk::current_thread())
}

#[task]
fn who_am_i_slowly(ms: u64) -> (usize, usize) {
    std::thread::sleep(Duration::from_millis(ms));
    (dirk::current_worker(), dirk::current_thread().expect("tasks run on worker threads"))
}

#[dirk::test]
fn tasks_scoped_to_a_worker_run_on_it() {
    let rt = Runtime::builder().threads(2).workers(3).build().unwrap();
    assert_eq!(rt.processes(), 4);
    within(LONG, move || {
        rt.run(|| {
            for w in 0..4 {
                assert_eq!(spawn!(scope = Scope::worker(w), who_am_i()).fetch().unwrap().0, w);
            }
            assert_eq!(spawn!(scope = Scope::worker(2), who_am_i()).fetch().unwrap().0, 2);
            for w in 0..4 {
                for t in 0..2 {
                    let seen = spawn!(scope = Scope::worker(w).thread(t), who_am_i()).fetch().unwrap();
                    assert_eq!(seen, (w, Some(t)), "Scope::worker({w}).thread({t})");
                }
            }
            let on_1_or_3: BTreeSet<usize> = (0..12)
                .map(|_| spawn!(scope = Scope::workers([1, 3]), who_am_i_slowly(20)))
                .collect::<Vec<_>>()
                .iter()
                .map(|t| t.fetch().unwrap().0)
                .collect();
            assert_eq!(on_1_or_3, BTreeSet::from([1, 3]));
        });
    });
}

#[dirk::test]
fn unscoped_tasks_spread_over_every_worker_and_thread() {
    let rt = Runtime::builder().threads(2).workers(2).build().unwrap();
    within(LONG, move || {
        let seen: HashSet<(usize, usize)> = rt.run(|| {
            let tasks: Vec<_> = (0..20).map(|_| spawn!(who_am_i_slowly(150))).collect();
            tasks.iter().map(|t| t.fetch().unwrap()).collect()
        });
        let all: HashSet<(usize, usize)> = (0..3).flat_map(|w| (0..2).map(move |t| (w, t))).collect();
        assert_eq!(seen, all, "20 tasks of 150 ms on 3 processes of 2 threads");
    });
}

#[dirk::test]
fn scopes_no_worker_satisfies_fail_with_scope_errors() {
    let rt = Runtime::builder().threads(2).workers(1).build().unwrap();
    within(LONG, move || {
        rt.run(|| {
            let far = 5;
            let err = spawn!(scope = Scope::worker(far), who_am_i()).fetch().unwrap_err();
            assert!(matches!(&err, Error::Scope(e) if e.reason.contains("the cluster has workers 0..=1")), "{err}");
            let err = spawn!(scope = Scope::worker(1).thread(2), who_am_i()).fetch().unwrap_err();
            assert!(matches!(&err, Error::Scope(e) if e.reason.contains("no thread 2 on worker 1")), "{err}");
            // A closure cannot go to another worker; a scope that is not a
            // literal is checked when the task is spawned.
            let one = 1;
            let err = spawn!(scope = Scope::worker(one), (|x: i64| x + 1)(1)).fetch().unwrap_err();
            assert!(matches!(&err, Error::Scope(e) if e.reason.contains("only a #[task] function")), "{err}");
            assert_eq!(spawn!(scope = Scope::workers([0, one]), (|x: i64| x + 1)(1)).fetch().unwrap(), 2);
        });
    });
}

#[dirk::test]
fn a_spawn_outside_the_runtime_with_workers_says_which_runtime_got_it() {
    let rt = Runtime::builder().threads(1).workers(1).build().unwrap();
    assert_eq!(rt.processes(), 2);
    within(LONG, move || {
        // Outside `rt.run`: the spawn goes to the global runtime, one process.
        let err = spawn!(scope = Scope::worker(1), who_am_i()).fetch().unwrap_err();
        let Error::Scope(e) = &err else { panic!("{err}") };
        assert!(e.reason.starts_with("there is no worker 1: this runtime runs in one process"), "{err}");
        assert!(e.reason.contains("This spawn went to the global runtime"), "{err}");
        assert!(e.reason.contains("the runtime built with workers (2 processes) is another one"), "{err}");
        assert!(e.reason.contains("`rt.run(|| ..)`"), "{err}");
        // Inside, the same spawn runs on the worker.
        assert_eq!(rt.run(|| spawn!(scope = Scope::worker(1), who_am_i()).fetch().unwrap()).0, 1);
        drop(rt);
        // Once that runtime is gone, the message is the plain one.
        let err = spawn!(scope = Scope::worker(1), who_am_i()).fetch().unwrap_err();
        assert!(matches!(&err, Error::Scope(e) if !e.reason.contains("This spawn went")), "{err}");
    });
}

#[task]
fn leaf(i: u64) -> Vec<f64> {
    (0..1000).map(|k| ((i * 7919 + k) % 1013) as f64 / 7.0).collect()
}

#[task]
fn combine(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x * 0.5 + y * 1.5 + 1.0).collect()
}

#[task]
fn total(xs: &[f64]) -> f64 {
    xs.iter().sum()
}

#[task]
fn label(name: String, value: f64) -> String {
    format!("{name}={value:.3}")
}

/// A reduction tree over 16 leaves, each level's tasks scoped round-robin
/// over `processes` workers.
fn tree(processes: usize) -> (f64, Vec<f64>, String) {
    let scope = |i: usize| Scope::worker(i % processes);
    let mut level: Vec<Task<Vec<f64>>> = (0..16).map(|i| spawn!(scope = scope(i), leaf(i as u64))).collect();
    let mut i = 0;
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| {
                i += 1;
                spawn!(scope = scope(i), combine(&pair[0], &pair[1]))
            })
            .collect();
    }
    let root = level.pop().unwrap();
    let sum = spawn!(scope = scope(1), total(&root));
    let text = spawn!(scope = scope(2), label("sum".to_owned(), &sum));
    (sum.fetch().unwrap(), root.fetch().unwrap(), text.fetch().unwrap())
}

#[dirk::test]
fn a_graph_spanning_three_processes_computes_what_one_process_does() {
    let single = Runtime::builder().threads(2).build().unwrap().run(|| tree(1));
    let rt = Runtime::builder().threads(2).workers(2).build().unwrap();
    within(LONG, move || {
        let spread = rt.run(|| tree(3));
        assert_eq!(spread, single);
        assert!(spread.0 > 0.0);
    });
}
