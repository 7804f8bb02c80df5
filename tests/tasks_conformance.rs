//! One suite of task semantics, run on every backend a task can run on:
//! one thread, several threads, worker processes, and (with the `gpu`
//! feature) a GPU processor's runner thread. Each backend is a runtime and
//! the scope its tasks are spawned with; [`conformance!`] instantiates every
//! case of [`suite`] for it, as cubecl's `testgen_all!` does for its
//! runtimes, so a semantics that holds on threads and not on processes
//! fails by name.
//!
//! The cases: results come back (also through dependencies and fan-in, which
//! does not yet cross to another process: that backend checks the error), a
//! failure reaches its dependents and nothing else, `sync` waits for every
//! task spawned inside, a cancelled task fails its dependents, a task's own
//! spawns run and are waited for, and a task runs where its scope says.

mod common;

use std::time::Duration;

use common::within;
use dirk::prelude::*;

/// Generous: worker processes start, and a GPU device opens, in the bound.
const LIMIT: Duration = Duration::from_secs(60);

#[task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[task]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[task]
fn fails_above(limit: u64, x: u64) -> u64 {
    assert!(x <= limit, "{x} is above {limit}");
    x
}

#[task]
fn slow(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Spawns `n` children where this task runs and fetches them all.
#[task]
fn parent(n: u64) -> u64 {
    let children: Vec<Task<u64>> = (0..n).map(|i| spawn!(add(i, 1))).collect();
    children.iter().map(|c| c.fetch().unwrap()).sum()
}

/// Which process and which thread ran the task.
#[task]
fn whereabouts() -> (usize, String) {
    (dirk::current_worker(), std::thread::current().name().unwrap_or_default().to_owned())
}

/// The cases, each taking the scope its backend's tasks are spawned with.
mod suite {
    use super::*;

    pub(crate) fn results_come_back(scope: &Scope) {
        let a = spawn!(scope = scope.clone(), add(1, 2));
        let b = spawn!(scope = scope.clone(), add(&a, 10));
        assert_eq!((a.fetch().unwrap(), b.fetch().unwrap()), (3, 13));
        let parts: Vec<Task<u64>> = (0..10).map(|i| spawn!(scope = scope.clone(), add(i, i))).collect();
        let summed = spawn!(scope = scope.clone(), total(parts)).fetch();
        if scope.worker_ids().is_some_and(|ws| !ws.contains(&0)) {
            // Not yet: a list of handles (fan-in) does not cross to another
            // process, and the spawn says so.
            assert!(
                matches!(&summed, Err(Error::Scope(e)) if e.reason.contains("runs on another worker")),
                "{summed:?}"
            );
        } else {
            assert_eq!(summed.unwrap(), 90);
        }
    }

    pub(crate) fn a_failure_reaches_its_dependents_only(scope: &Scope) {
        let failed = spawn!(scope = scope.clone(), fails_above(1, 5));
        let dependent = spawn!(scope = scope.clone(), add(&failed, 1));
        let independent = spawn!(scope = scope.clone(), add(2, 2));
        match failed.fetch() {
            Err(Error::Panicked { task, message, .. }) => {
                assert_eq!(task, failed.id());
                assert_eq!(message, "5 is above 1");
            }
            other => panic!("expected the panic of `fails_above`, got {other:?}"),
        }
        let err = dependent.fetch().unwrap_err();
        assert!(matches!(&err, Error::Upstream { task, .. } if *task == dependent.id()), "{err}");
        assert!(err.to_string().contains("`fails_above` panicked"), "{err}");
        assert_eq!(independent.fetch().unwrap(), 4);
    }

    pub(crate) fn sync_waits_for_every_task_spawned_inside(scope: &Scope) {
        let (n, tasks) = dirk::sync(|| {
            let tasks: Vec<Task<u64>> = (0..8).map(|i| spawn!(scope = scope.clone(), slow(i))).collect();
            (8, tasks)
        })
        .unwrap();
        assert_eq!(n, 8);
        assert!(tasks.iter().all(Task::is_ready), "every task ended before sync returned");
        let failed = dirk::sync(|| {
            spawn!(scope = scope.clone(), add(1, 1));
            spawn!(scope = scope.clone(), fails_above(0, 3));
        });
        assert!(matches!(failed, Err(Error::Panicked { ref message, .. }) if message == "3 is above 0"), "{failed:?}");
    }

    pub(crate) fn a_cancelled_task_fails_its_dependents(scope: &Scope) {
        let gate = spawn!(scope = scope.clone(), slow(300));
        let cancelled = spawn!(scope = scope.clone(), add(&gate, 1));
        let after = spawn!(scope = scope.clone(), add(&cancelled, 1));
        cancelled.cancel();
        assert!(matches!(cancelled.fetch(), Err(Error::Cancelled { task }) if task == cancelled.id()));
        let err = after.fetch().unwrap_err();
        assert!(matches!(err, Error::Upstream { .. }) && err.is_cancelled(), "{err}");
        assert_eq!(gate.fetch().unwrap(), 300, "cancelling a dependent leaves its input alone");
    }

    pub(crate) fn a_tasks_own_spawns_run_and_are_waited_for(scope: &Scope) {
        let nested = spawn!(scope = scope.clone(), parent(5));
        assert_eq!(nested.fetch().unwrap(), 15);
        let twice = spawn!(scope = scope.clone(), add(&nested, &nested));
        assert_eq!(twice.fetch().unwrap(), 30);
    }

    pub(crate) fn a_task_runs_where_its_scope_says(scope: &Scope) {
        let (worker, thread) = spawn!(scope = scope.clone(), whereabouts()).fetch().unwrap();
        match (scope.worker_ids(), scope.gpu_id(), scope.thread_id()) {
            (Some(&[w]), None, _) => assert_eq!(worker, w),
            (None, Some(g), None) => assert_eq!(thread, format!("dirk-gpu-{g}")),
            (None, None, Some(t)) => assert!(thread.ends_with(&format!("-{t}")), "{thread}"),
            (None, None, None) => assert_eq!(worker, 0),
            other => panic!("the suite has no backend scoped as {other:?}"),
        }
        // A scope nothing satisfies fails the task at once, naming it.
        let nowhere = spawn!(scope = Scope::thread(1000), add(1, 1));
        assert!(
            matches!(nowhere.fetch(), Err(Error::Scope(ref e)) if e.task == nowhere.id() && e.reason.contains("thread 1000")),
            "{:?}",
            nowhere.fetch()
        );
    }
}

/// Instantiates every case of [`suite`] for one backend: `#[$test]` is the
/// test attribute (`dirk::test` where worker processes run this binary
/// again), `$runtime` builds the runtime on the test's thread, `$scope` is
/// where its tasks are spawned.
macro_rules! conformance {
    ($backend:ident, #[$test:meta], runtime = $runtime:expr, scope = $scope:expr) => {
        mod $backend {
            use super::*;

            conformance!(@cases #[$test], $runtime, $scope,
                results_come_back,
                a_failure_reaches_its_dependents_only,
                sync_waits_for_every_task_spawned_inside,
                a_cancelled_task_fails_its_dependents,
                a_tasks_own_spawns_run_and_are_waited_for,
                a_task_runs_where_its_scope_says,
            );
        }
    };
    (@cases #[$test:meta], $runtime:expr, $scope:expr, $($case:ident),* $(,)?) => {
        $(
            #[$test]
            fn $case() {
                let rt: Runtime = $runtime;
                let scope: Scope = $scope;
                within(LIMIT, move || rt.run(move || suite::$case(&scope)));
            }
        )*
    };
}

conformance!(one_thread, #[test], runtime = Runtime::builder().threads(1).build().unwrap(), scope = Scope::any());

conformance!(threads, #[test], runtime = Runtime::builder().threads(4).build().unwrap(), scope = Scope::thread(3));

conformance!(
    worker_processes,
    #[dirk::test],
    runtime = Runtime::builder().threads(1).workers(2).worker_threads(2).build().unwrap(),
    scope = Scope::worker(2).into()
);

#[cfg(feature = "gpu")]
conformance!(gpu_processor, #[test], runtime = Runtime::builder().threads(2).build().unwrap(), scope = Scope::gpu(0));
