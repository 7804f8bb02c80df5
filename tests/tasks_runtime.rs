//! The runtime: building one, running inside it, scopes and options, the
//! global runtime's settings, idleness and memory.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{SHORT, within};
use dirk::prelude::*;

#[task]
fn which_thread() -> Option<usize> {
    dirk::current_thread()
}

#[task]
fn noop(i: u64) -> u64 {
    i
}

#[test]
fn a_runtime_has_the_threads_it_was_built_with() {
    within(SHORT, || {
        for n in [1, 3] {
            let rt = Runtime::builder().threads(n).build().unwrap();
            assert_eq!(rt.threads(), n);
            let seen: HashSet<usize> = rt.run(|| {
                (0..n).map(|t| spawn!(scope = Scope::thread(t), which_thread()).fetch().unwrap().unwrap()).collect()
            });
            assert_eq!(seen, (0..n).collect::<HashSet<_>>());
        }
    });
}

#[test]
fn bad_thread_counts_are_config_errors() {
    for n in [0, 100_000] {
        match Runtime::builder().threads(n).build() {
            Err(Error::Config(message)) => assert!(message.contains(&n.to_string()), "{message}"),
            other => panic!("expected a Config error, got {other:?}"),
        }
    }
}

#[test]
fn run_returns_the_value_and_resumes_panics() {
    within(SHORT, || {
        let rt = Runtime::builder().threads(2).build().unwrap();
        let local = String::from("borrowed");
        assert_eq!(rt.run(|| local.len()), 8, "run may borrow from the caller");
        assert!(rt.run(dirk::current_thread).is_some());
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.run(|| panic!("inside run"))));
        let payload = caught.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"inside run"));
        assert_eq!(rt.run(|| 7), 7, "the runtime survives a panicking closure");
    });
}

#[test]
fn spawns_inside_run_and_enter_go_to_that_runtime() {
    within(SHORT, || {
        let rt = Runtime::builder().threads(3).build().unwrap();
        let from_run = rt.run(|| spawn!(scope = Scope::thread(2), which_thread()).fetch().unwrap());
        assert_eq!(from_run, Some(2));
        let from_enter = rt.enter(|| spawn!(scope = Scope::thread(2), which_thread()).fetch().unwrap());
        assert_eq!(from_enter, Some(2), "a three-thread runtime, not the global one");
        assert_eq!(dirk::current_thread(), None);
    });
}

#[test]
fn with_options_applies_to_nested_spawns_and_spawn_options_win() {
    within(SHORT, || {
        let rt = Runtime::builder().threads(2).build().unwrap();
        rt.run(|| {
            dirk::with_options(Options::new().scope(Scope::thread(1)).name("region"), || {
                let outer = dirk::spawn(|| {
                    let inner = spawn!(which_thread());
                    (dirk::current_thread(), inner.fetch().unwrap(), inner.name().to_owned())
                });
                assert_eq!(outer.fetch().unwrap(), (Some(1), Some(1), "region".to_owned()));
                let overridden = spawn!(scope = Scope::thread(0), name = "mine", which_thread());
                assert_eq!(overridden.fetch().unwrap(), Some(0));
                assert_eq!(overridden.name(), "mine");
                dirk::with_options(Options::new().scope(Scope::thread(0)), || {
                    let t = spawn!(which_thread());
                    assert_eq!(t.fetch().unwrap(), Some(0));
                    assert_eq!(t.name(), "region", "inner options keep outer fields they do not set");
                });
            });
            assert_eq!(spawn!(which_thread()).name(), "which_thread", "options end with the region");
        });
    });
}

#[test]
fn unscoped_tasks_spread_over_the_threads() {
    within(SHORT, || {
        let rt = Runtime::builder().threads(2).build().unwrap();
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let s = seen.clone();
        rt.run(move || {
            dirk::sync(|| {
                for _ in 0..200 {
                    let s = s.clone();
                    dirk::spawn(move || {
                        let start = std::time::Instant::now();
                        while start.elapsed() < Duration::from_millis(1) {
                            std::hint::spin_loop(); // busy, so no spare thread is involved
                        }
                        s.lock().unwrap().insert(dirk::current_thread().unwrap());
                    });
                }
            })
            .unwrap();
        });
        assert_eq!(*seen.lock().unwrap(), HashSet::from([0, 1]));
    });
}

#[test]
fn blocking_tasks_overlap_through_spare_threads_which_then_retire() {
    within(SHORT, || {
        let rt = Runtime::builder().threads(1).thread_name("spare-probe").build().unwrap();
        // Ten tasks on one core that each block until all ten are blocked:
        // they finish only if, while one blocks, spares run the others (the
        // test's time limit turns a failure into an error, not a hang).
        let all_blocked = Arc::new(std::sync::Barrier::new(10));
        let threads = rt.run(|| {
            dirk::sync(|| {
                (0..10)
                    .map(|_| {
                        let all_blocked = all_blocked.clone();
                        dirk::spawn(move || {
                            dirk::block_in_place(|| all_blocked.wait());
                            dirk::current_thread().unwrap()
                        })
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap()
        });
        let distinct: HashSet<usize> = threads.iter().map(|t| t.fetch().unwrap()).collect();
        assert!(distinct.len() > 1, "spares ran some of them: {distinct:?}");
        // With nobody blocked, the spares stop working and park: no CPU.
        std::thread::sleep(Duration::from_millis(300));
        let (count, before) = common::threads_cpu_time("spare-probe");
        assert!(count > 1);
        std::thread::sleep(Duration::from_millis(500));
        let used = common::threads_cpu_time("spare-probe").1 - before;
        assert!(used <= Duration::from_millis(30), "parked spares used {used:?}");
    });
}

#[test]
fn spare_threads_exit_after_their_keep_alive_and_start_again_when_needed() {
    within(SHORT, || {
        let rt = Runtime::builder()
            .threads(1)
            .thread_name("keepalive-probe")
            .blocking_keep_alive(Duration::from_millis(100))
            .max_blocking_threads(4)
            .build()
            .unwrap();
        let burst = || {
            rt.run(|| {
                let tasks: Vec<Task<usize>> = (0..8)
                    .map(|i| {
                        dirk::spawn(move || {
                            dirk::block_in_place(|| std::thread::sleep(Duration::from_millis(50)));
                            i
                        })
                    })
                    .collect();
                dirk::join_all(tasks).fetch().unwrap()
            })
        };
        let probe_threads = || common::threads_cpu_time("keepalive-probe").0;
        let wait_for_core_thread_only = || {
            while probe_threads() > 1 {
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        assert_eq!(probe_threads(), 1);
        for round in 0..3 {
            assert_eq!(burst(), (0..8).collect::<Vec<_>>(), "round {round}");
            let during = probe_threads();
            assert!((2..=5).contains(&during), "round {round}: 1 core thread and at most 4 spares, not {during}");
            // Idle spares exit (the test's time limit bounds the wait).
            wait_for_core_thread_only();
        }
    });
}

#[test]
fn a_runtime_without_spares_still_runs_blocking_tasks() {
    within(SHORT, || {
        let rt = Runtime::builder().threads(1).max_blocking_threads(0).build().unwrap();
        let out = rt.run(|| spawn!(noop(dirk::block_in_place(|| 5))).fetch().unwrap());
        assert_eq!(out, 5);
        let slept = rt.run(|| dirk::spawn(|| dirk::sleep(Duration::from_millis(10))).fetch().unwrap());
        assert!(slept);
    });
}

#[test]
fn an_idle_runtime_uses_no_cpu() {
    within(SHORT, || {
        let rt = Runtime::builder().threads(2).thread_name("idle-probe").build().unwrap();
        rt.run(|| {
            dirk::sync(|| {
                for i in 0..10_000 {
                    spawn!(noop(i));
                }
            })
            .unwrap()
        });
        std::thread::sleep(Duration::from_millis(300)); // searchers give up and park
        let (threads, before) = common::threads_cpu_time("idle-probe");
        assert_eq!(threads, 2, "the probe sees the runtime's threads");
        std::thread::sleep(Duration::from_secs(1));
        let used = common::threads_cpu_time("idle-probe").1 - before;
        assert!(used <= Duration::from_millis(30), "idle runtime used {used:?} of CPU in 1 s");
        drop(rt);
    });
}

#[test]
fn spawning_and_dropping_ten_million_tasks_keeps_memory_flat() {
    within(Duration::from_secs(240), || {
        let rt = Runtime::builder().threads(2).build().unwrap();
        // Warm up allocator and queues, then measure.
        rt.enter(|| {
            dirk::sync(|| {
                for i in 0..200_000 {
                    spawn!(noop(i));
                }
            })
            .unwrap()
        });
        let before = common::rss_bytes();
        rt.enter(|| {
            dirk::sync(|| {
                for i in 0..10_000_000u64 {
                    spawn!(noop(i));
                }
            })
            .unwrap()
        });
        let grown = common::rss_bytes().saturating_sub(before);
        assert!(grown < 64 << 20, "resident memory grew by {} MiB", grown >> 20);
    });
}

#[test]
fn dropping_a_runtime_cancels_what_it_never_ran() {
    within(SHORT, || {
        let rt = Runtime::builder().threads(1).build().unwrap();
        let (blocker, queued) = rt.enter(|| {
            let blocker = dirk::spawn(|| dirk::sleep(Duration::from_millis(100)));
            (blocker, spawn!(noop(1)))
        });
        drop(rt);
        assert!(blocker.fetch().unwrap(), "the running sleep finished");
        assert!(queued.fetch().map(|v| v == 1).unwrap_or_else(|e| e.is_cancelled()), "either ran or was cancelled");
    });
}

/// The global runtime reads `DIRK_THREADS` when it starts; a bad value makes
/// every task fail with a `Config` error instead of panicking. The check runs
/// in a child process, where the variable is set before the runtime starts.
#[test]
fn a_bad_dirk_threads_value_fails_tasks_with_a_config_error() {
    if let Ok(value) = std::env::var("DIRK_THREADS") {
        if value == "three" {
            let err = spawn!(noop(1)).fetch().unwrap_err();
            assert!(matches!(err, Error::Config(ref m) if m.contains("DIRK_THREADS=\"three\"")), "{err}");
        } else {
            let threads: usize = value.parse().unwrap();
            let seen = spawn!(scope = Scope::thread(threads - 1), which_thread()).fetch().unwrap();
            assert_eq!(seen, Some(threads - 1));
            assert!(spawn!(scope = Scope::thread(threads), which_thread()).fetch().is_err());
        }
        return;
    }
    for value in ["three", "3"] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "a_bad_dirk_threads_value_fails_tasks_with_a_config_error", "--nocapture"])
            .env("DIRK_THREADS", value)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "child with DIRK_THREADS={value} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
