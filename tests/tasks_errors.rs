//! Failures: a panicking task fails its dependents with `Upstream` naming
//! the root, never touches independent tasks, never hangs a fetch; scopes
//! nothing satisfies fail at once; cancellation ends waits promptly.

mod common;

use std::time::{Duration, Instant};

use common::{SHORT, within};
use dirk::prelude::*;

#[task]
fn boom(x: i64) -> i64 {
    if x >= 0 {
        panic!("boom at {x}");
    }
    x
}

#[task]
fn inc(x: i64) -> i64 {
    x + 1
}

#[task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn runtime(threads: usize) -> Runtime {
    Runtime::builder().threads(threads).build().unwrap()
}

#[test]
fn a_failure_travels_down_a_chain_and_names_its_root() {
    within(SHORT, || {
        runtime(2).run(|| {
            let root = spawn!(boom(3));
            let mut t = spawn!(inc(&root));
            for _ in 0..50 {
                t = spawn!(inc(t));
            }
            let err = t.fetch().unwrap_err();
            let Error::Upstream { task, name, cause } = &err else { panic!("expected Upstream, got {err:?}") };
            assert_eq!((*task, name.as_ref()), (t.id(), "inc"));
            assert!(matches!(&**cause, Error::Panicked { task, message, .. } if *task == root.id() && message == "boom at 3"));
            assert_eq!(err.root().task(), Some(root.id()));
            let text = err.to_string();
            assert!(text.contains(&format!("input task {} failed", root.id())), "{text}");
            assert!(text.contains("`boom` panicked: boom at 3"), "{text}");
            match root.fetch().unwrap_err() {
                Error::Panicked { name, .. } => assert_eq!(name, "boom"),
                other => panic!("expected Panicked, got {other:?}"),
            }
        });
    });
}

#[test]
fn several_dependents_fail_and_independent_tasks_do_not() {
    within(SHORT, || {
        runtime(2).run(|| {
            let bad = spawn!(boom(1));
            let good = spawn!(inc(1));
            let dependents: Vec<_> = (0..5).map(|i| spawn!(add(&bad, i))).collect();
            let mixed = spawn!(add(&good, &bad));
            let independent: Vec<_> = (0..5).map(|i| spawn!(add(&good, i))).collect();
            for d in dependents.iter().chain([&mixed]) {
                assert!(matches!(d.fetch(), Err(Error::Upstream { .. })));
                assert_eq!(d.fetch().unwrap_err().root().task(), Some(bad.id()));
            }
            for (i, t) in independent.iter().enumerate() {
                assert_eq!(t.fetch().unwrap(), 2 + i as i64);
            }
        });
    });
}

#[test]
fn in_a_diamond_where_only_the_sink_panics_the_others_succeed() {
    #[task]
    fn sink(a: i64, b: i64) -> i64 {
        panic!("sink refuses {a} and {b}")
    }
    within(SHORT, || {
        runtime(2).run(|| {
            let top = spawn!(inc(0));
            let left = spawn!(inc(&top));
            let right = spawn!(add(&top, 10));
            let bottom = spawn!(sink(&left, &right));
            assert_eq!((top.fetch().unwrap(), left.fetch().unwrap(), right.fetch().unwrap()), (1, 2, 11));
            assert!(
                matches!(bottom.fetch(), Err(Error::Panicked { message, .. }) if message == "sink refuses 2 and 11")
            );
        });
    });
}

#[test]
fn a_panic_does_not_take_the_runtime_down() {
    within(SHORT, || {
        let rt = runtime(1);
        rt.run(|| {
            for i in 0..100 {
                assert!(spawn!(boom(i)).fetch().is_err());
            }
            assert_eq!(spawn!(inc(41)).fetch().unwrap(), 42);
        });
    });
}

#[test]
fn sync_returns_the_first_error_in_spawn_order() {
    #[task]
    fn fail_after(ms: u64, tag: &'static str) {
        dirk::sleep(Duration::from_millis(ms));
        panic!("{tag}");
    }
    within(SHORT, || {
        runtime(2).run(|| {
            let err = dirk::sync(|| {
                spawn!(inc(1));
                spawn!(fail_after(60, "first spawned, fails last"));
                spawn!(fail_after(0, "second spawned, fails first"));
                spawn!(inc(2));
            })
            .unwrap_err();
            assert!(
                matches!(err, Error::Panicked { ref message, .. } if message == "first spawned, fails last"),
                "{err}"
            );
            assert_eq!(dirk::sync(|| spawn!(inc(1)).fetch().unwrap()).unwrap(), 2);
        });
    });
}

#[test]
fn a_panic_inside_the_sync_closure_resumes_after_its_tasks_end() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static DONE: AtomicBool = AtomicBool::new(false);
    within(SHORT, || {
        let outcome = std::panic::catch_unwind(|| {
            dirk::sync(|| {
                dirk::spawn(|| {
                    dirk::sleep(Duration::from_millis(50));
                    DONE.store(true, Ordering::SeqCst);
                });
                panic!("the closure fails");
            })
        });
        assert!(outcome.is_err());
        assert!(DONE.load(Ordering::SeqCst), "sync waited for the task before resuming the panic");
    });
}

#[test]
fn a_cancelled_long_sleep_ends_within_a_second_and_frees_its_thread() {
    within(SHORT, || {
        let rt = runtime(1);
        rt.enter(|| {
            let sleeper = dirk::spawn(|| dirk::sleep(Duration::from_secs(100)));
            std::thread::sleep(Duration::from_millis(50)); // let it start sleeping
            let start = Instant::now();
            sleeper.cancel();
            let err = sleeper.wait().unwrap_err();
            assert!(matches!(err, Error::Cancelled { task } if task == sleeper.id()));
            // The one worker thread is free again: a new task runs promptly.
            assert_eq!(spawn!(inc(1)).wait_timeout(Duration::from_secs(1)).expect("the thread was freed"), Ok(()));
            assert!(start.elapsed() < Duration::from_secs(1), "took {:?}", start.elapsed());
        });
    });
}

#[test]
fn cancelling_a_queued_task_fails_it_and_its_dependents() {
    within(SHORT, || {
        let rt = runtime(1);
        rt.enter(|| {
            // Occupy the only thread so the next tasks stay queued.
            let blocker = dirk::spawn(|| dirk::sleep(Duration::from_secs(100)));
            let queued = spawn!(inc(1));
            let dependent = spawn!(inc(&queued));
            let unrelated = spawn!(inc(5));
            queued.cancel();
            assert!(matches!(queued.fetch(), Err(Error::Cancelled { task }) if task == queued.id()));
            let err = dependent.fetch().unwrap_err();
            assert!(matches!(err, Error::Upstream { .. }) && err.is_cancelled(), "{err}");
            assert_eq!(err.root().task(), Some(queued.id()));
            blocker.cancel();
            assert_eq!(unrelated.fetch().unwrap(), 6);
            queued.cancel(); // cancelling a finished task does nothing
            assert!(queued.fetch().unwrap_err().is_cancelled());
        });
    });
}

#[test]
fn cancelling_a_finished_task_keeps_its_result() {
    within(SHORT, || {
        let t = spawn!(inc(1));
        assert_eq!(t.fetch().unwrap(), 2);
        t.cancel();
        assert_eq!(t.fetch().unwrap(), 2);
    });
}

#[test]
fn a_running_body_sees_its_cancellation() {
    within(SHORT, || {
        let rt = runtime(1);
        rt.enter(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            let t = dirk::spawn(move || {
                while !dirk::cancelled() {
                    std::hint::spin_loop();
                }
                tx.send("saw it").unwrap();
            });
            std::thread::sleep(Duration::from_millis(20));
            t.cancel();
            assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok("saw it"));
        });
    });
}

#[test]
fn a_scope_naming_a_missing_thread_fails_with_a_scope_error() {
    within(SHORT, || {
        runtime(2).run(|| {
            let t = spawn!(scope = Scope::thread(7), inc(1));
            let err = t.fetch().unwrap_err();
            let Error::Scope(e) = &err else { panic!("expected Scope, got {err:?}") };
            assert_eq!(e.task, t.id());
            assert_eq!(e.scope, "Scope::thread(7)");
            assert_eq!(e.reason, "there is no thread 7: worker 0 has threads 0..=1");
            assert!(err.to_string().contains("no processor satisfies Scope::thread(7)"));
            let dependent = spawn!(inc(&t));
            assert!(matches!(dependent.fetch(), Err(Error::Upstream { .. })));
            // A GPU index no machine has (with the `gpu` feature, GPU 0 may exist).
            for scope in [Scope::from(Scope::worker(3)), Scope::gpu(1 << 20)] {
                assert!(matches!(spawn!(scope = scope, inc(1)).fetch(), Err(Error::Scope(_))));
            }
        });
    });
}

#[test]
fn a_failure_at_the_head_of_a_long_waiting_chain_does_not_overflow() {
    within(Duration::from_secs(60), || {
        let rt = runtime(1);
        rt.enter(|| {
            #[task]
            fn boom_after(_gate: &bool) -> i64 {
                panic!("late")
            }
            let gate = dirk::spawn(|| dirk::sleep(Duration::from_millis(200)));
            let head = spawn!(boom_after(&gate));
            let mut t = spawn!(inc(&head));
            for _ in 0..300_000 {
                t = spawn!(inc(t));
            }
            assert!(t.fetch().unwrap_err().root().task() == Some(head.id()));
        });
    });
}

#[test]
fn errors_are_std_errors_with_sources() {
    use std::error::Error as _;
    within(SHORT, || {
        let a = spawn!(boom(0));
        let b = spawn!(inc(a));
        let err = b.fetch().unwrap_err();
        let source = err.source().expect("an upstream error has a source");
        assert!(source.to_string().contains("panicked: boom at 0"));
    });
}
