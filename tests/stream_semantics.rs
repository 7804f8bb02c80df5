//! How a streaming region runs and ends: sources and `?`, `finish_stream`,
//! `max_evals`, teardown on and off, cancel, failures, constants, the tail
//! nobody reads, dropping the handle, statistics. Each test runs on a
//! one-thread runtime and on one with a thread per core.

#[macro_use]
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dirk::prelude::*;

fn counter() -> Arc<AtomicU64> {
    Arc::new(AtomicU64::new(0))
}

fn sum0() -> i64 {
    0
}

fn sum1(a: i64) -> i64 {
    a
}

fn sum2(a: i64, b: i64) -> i64 {
    a + b
}

fn push(log: &Mutex<Vec<i64>>, v: i64) {
    log.lock().unwrap().push(v);
}

fn parse(line: &str) -> Result<u32, std::num::ParseIntError> {
    line.parse()
}

fn fragile(x: u32) -> u32 {
    if x == 3 {
        panic!("three is not allowed");
    }
    x
}

/// Waits (polling) until `cond` holds; fails after ten seconds.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

on_each_runtime! {
    fn an_infinite_sleeping_stage_does_not_finish_and_is_cancelled_cleanly() {
        let ticks = counter();
        let t = ticks.clone();
        let out = streaming! {
            let x = { t.fetch_add(1, Ordering::Relaxed); dirk::sleep(Duration::from_secs(3600)) };
            x
        };
        assert!(out.wait_timeout(Duration::from_millis(200)).is_none(), "an infinite stage does not finish");
        assert!(!out.is_finished());
        let start = Instant::now();
        out.cancel();
        assert_eq!(out.wait_timeout(Duration::from_secs(5)), Some(Ok(())));
        assert!(start.elapsed() < Duration::from_secs(1), "the sleep ended at once: {:?}", start.elapsed());
        assert!(out.is_finished());
        assert_eq!(ticks.load(Ordering::Relaxed), 1);
    }

    fn finish_stream_ends_after_delivering_its_value() {
        let mut n = 0u32;
        let out = streaming! {
            let x = { n += 1; n };
            let y = { if x == 4 { dirk::finish_stream(); } x * 10 };
            y
        };
        assert_eq!(out.iter().collect::<Vec<_>>(), [10, 20, 30, 40]);
        assert_eq!(out.wait(), Ok(()));
        assert!(out.is_finished(), "the source stopped once its consumer ended");
    }

    fn an_unfused_source_runs_ahead_by_at_most_its_ring() {
        // The buffer option cuts the chain: the source runs ahead of its
        // reader, into a ring of 16, and what it made past the reader's
        // end is dropped.
        let made = counter();
        let seen = made.clone();
        let out = streaming! {
            #[dirk(buffer = 16)] let x = seen.fetch_add(1, Ordering::Relaxed) + 1;
            let y = { if x == 153 { dirk::finish_stream(); } x };
            y
        };
        assert_eq!(out.iter().count(), 153);
        out.wait().unwrap();
        let made = made.load(Ordering::Relaxed);
        assert!((153..=153 + 16 + 1).contains(&made), "the source made {made}: the ring bounds how far it runs ahead");
    }

    fn a_question_mark_on_none_ends_the_stream() {
        let lines = vec!["1", "2", "3"];
        let mut it = lines.into_iter();
        let out = streaming! {
            let line = it.next()?;
            let n = parse(line).unwrap_or(0);
            n
        };
        assert_eq!(out.iter().collect::<Vec<_>>(), [1, 2, 3]);
        out.wait().unwrap();
    }

    fn accumulators_record_their_constant_inputs() {
        let (log0, log1, log2) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
        let (l0, l1, l2) = (log0.clone(), log1.clone(), log2.clone());
        let (a, b) = (42i64, 43i64);
        let s0 = streaming! { #![dirk(max_evals = 10)] let acc = sum0(); push(&l0, acc); };
        let s1 = streaming! { #![dirk(max_evals = 10)] let acc = sum1(a); push(&l1, acc); };
        let s2 = streaming! { #![dirk(max_evals = 10)] let acc = sum2(a, b); push(&l2, acc); };
        for s in [&s0, &s1, &s2] {
            s.wait().unwrap();
        }
        assert_eq!(*log0.lock().unwrap(), [0; 10]);
        assert_eq!(*log1.lock().unwrap(), [42; 10]);
        assert_eq!(*log2.lock().unwrap(), [85; 10]);
    }

    fn teardown_ends_an_infinite_producer_after_its_capped_consumer() {
        for buffered in [false, true] {
            let produced = counter();
            let p = produced.clone();
            let start = Instant::now();
            let out = if buffered {
                streaming! {
                    #[dirk(buffer = 4)] let x = { p.fetch_add(1, Ordering::Relaxed); dirk::sleep(Duration::from_millis(1)); 1u32 };
                    #[dirk(max_evals = 10)] let a = x + 1;
                    a
                }
            } else {
                streaming! {
                    let x = { p.fetch_add(1, Ordering::Relaxed); dirk::sleep(Duration::from_millis(1)); 1u32 };
                    #[dirk(max_evals = 10)] let a = x + 1;
                    a
                }
            };
            assert_eq!(out.iter().collect::<Vec<_>>(), [2; 10]);
            out.wait().unwrap();
            assert!(start.elapsed() < Duration::from_secs(1), "took {:?}", start.elapsed());
            let n = produced.load(Ordering::Relaxed);
            assert!((10..=16).contains(&n), "the producer stopped soon after: {n} (buffered: {buffered})");
        }
    }

    fn without_teardown_the_producer_runs_until_cancelled() {
        let produced = counter();
        let consumed = Arc::new(Mutex::new(Vec::new()));
        let (p, c) = (produced.clone(), consumed.clone());
        let out = streaming! {
            #![dirk(teardown = false)]
            let x = { p.fetch_add(1, Ordering::Relaxed); dirk::sleep(Duration::from_millis(1)); 1i64 };
            #[dirk(max_evals = 10)] let a = push(&c, x);
        };
        eventually("the consumer took 10 values", || consumed.lock().unwrap().len() == 10);
        let before = produced.load(Ordering::Relaxed);
        eventually("the producer kept running", || produced.load(Ordering::Relaxed) > before + 5);
        assert!(!out.is_finished());
        out.cancel();
        assert_eq!(out.wait(), Ok(()));
        let after = produced.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(produced.load(Ordering::Relaxed), after, "nothing runs after the region finished");
        assert_eq!(consumed.lock().unwrap().len(), 10);
    }

    fn a_panicking_stage_fails_the_region_naming_it() {
        let mut n = 0u32;
        let out = streaming! {
            let x = { n += 1; n };
            let checked = fragile(x);
            checked
        };
        let got: Vec<u32> = out.iter().collect();
        assert_eq!(got, [1, 2]);
        match out.wait() {
            Err(Error::Panicked { name, message, .. }) => {
                assert_eq!(name, "checked");
                assert_eq!(message, "three is not allowed");
            }
            other => panic!("expected Panicked, got {other:?}"),
        }
    }

    fn an_err_behind_a_question_mark_fails_the_region() {
        let lines = vec!["1", "x", "3"];
        let mut it = lines.into_iter();
        let out = streaming! {
            let line = it.next()?;
            let n = parse(line)?;
            n
        };
        let got: Vec<u32> = out.iter().collect();
        assert_eq!(got, [1]);
        let err = out.wait().unwrap_err();
        assert!(matches!(&err, Error::Failed { name, .. } if name == "n"), "{err:?}");
        assert!(err.to_string().contains("`n` failed: invalid digit"), "{err}");
    }

    fn constants_are_captured_once() {
        let shared = Arc::new(vec![1u64, 2, 3]);
        let mine = shared.clone();
        let out = streaming! {
            #![dirk(max_evals = 50)]
            let x = mine.iter().sum::<u64>();
            x
        };
        // One copy moved into the region (or none left: the region may
        // already have run its 50 elements and dropped it), never one per element.
        assert!(Arc::strong_count(&shared) <= 2, "moved into the region once, not cloned per element");
        assert_eq!(out.iter().collect::<Vec<_>>(), [6; 50]);
        assert!(Arc::strong_count(&shared) <= 2, "moved into the region once, not cloned per element");
        out.wait().unwrap();
        drop(out);
        assert_eq!(Arc::strong_count(&shared), 1, "the region dropped its copy");
    }

    fn tail_elements_nobody_reads_do_not_stall_the_region() {
        let mut n = 0u64;
        let out = streaming! {
            #[dirk(buffer = 2)] let x = { n += 1; (n <= 10_000).then_some(n) }?;
            x
        };
        assert_eq!(out.wait(), Ok(()));
        assert_eq!(out.stats().stage("x").unwrap().elements, 10_000);
    }

    fn dropping_the_handle_cancels_and_waits() {
        let produced = counter();
        let stopped = Arc::new(AtomicBool::new(false));
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let (p, flag) = (produced.clone(), Flag(stopped.clone()));
        let out = streaming! {
            let x = { let _keep = &flag; p.fetch_add(1, Ordering::Relaxed); dirk::sleep(Duration::from_millis(1)) };
            x
        };
        eventually("the source ran", || produced.load(Ordering::Relaxed) > 3);
        drop(out);
        assert!(stopped.load(Ordering::SeqCst), "the stages were dropped before `drop` returned");
        let n = produced.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(produced.load(Ordering::Relaxed), n);
    }

    fn a_scope_nobody_satisfies_fails_the_region() {
        let out = streaming! {
            #[dirk(scope = Scope::thread(999))] let x = 1u8;
            x
        };
        assert!(matches!(out.wait(), Err(Error::Scope(e)) if e.name == "x" && e.scope == "Scope::thread(999)"));
    }

    fn a_computed_zero_buffer_is_a_config_error() {
        let size = 0usize;
        let out = streaming! {
            #[dirk(buffer = size)] let x = 1u8;
            let y = x + 1;
            y
        };
        match out.wait() {
            Err(Error::Config(m)) => assert!(m.contains("`x` has `buffer = 0`"), "{m}"),
            other => panic!("expected Config, got {other:?}"),
        }
        assert_eq!(out.iter().count(), 0);
    }

    fn stages_on_chosen_threads() {
        let last = dirk::Runtime::builder().threads(1).build().map(|_| 0).unwrap();
        let mut n = 0u32;
        let out = streaming! {
            #![dirk(max_evals = 100)]
            #[dirk(scope = Scope::thread(0))] let x = { n += 1; (n, dirk::current_thread()) };
            #[dirk(scope = Scope::thread(last))] let y = (x.0, x.1, dirk::current_thread());
            y
        };
        let got: Vec<_> = out.iter().collect();
        out.wait().unwrap();
        assert_eq!(got.len(), 100);
        assert!(got.iter().all(|&(_, a, b)| a == Some(0) && b == Some(last)));
        assert!(got.iter().enumerate().all(|(i, &(k, _, _))| k == i as u32 + 1));
    }

    fn stats_count_elements_per_stage() {
        let mut n = 0u64;
        let out = streaming! {
            #![dirk(max_evals = 1000)]
            let x = { n += 1; n };
            #[dirk(name = "square")] let y = x * x;
            y
        };
        let total: u64 = out.iter().sum();
        out.wait().unwrap();
        assert_eq!(total, (1..=1000u64).map(|k| k * k).sum::<u64>());
        let stats = out.stats();
        assert_eq!(stats.stages.len(), 2);
        assert_eq!(stats.stage("x").unwrap().elements, 1000);
        assert_eq!(stats.stage("square").unwrap().elements, 1000);
        assert_eq!(stats.stage("square").unwrap().allocations, None, "not asked for");
        assert!(stats.to_string().contains("square"));
    }
}

#[test]
fn a_region_whose_runtime_shut_down_ends_with_cancelled() {
    common::within(common::SHORT, || {
        let rt = Runtime::builder().threads(2).build().unwrap();
        let out = rt.enter(|| {
            streaming! {
                let x = 1u32;
                x
            }
        });
        assert_eq!(out.next_timeout(Duration::from_secs(5)), Ok(Some(1)));
        drop(rt);
        let err = out.wait().unwrap_err();
        assert!(err.is_cancelled(), "{err:?}");
        assert!(out.is_finished());
    });
}

#[test]
fn a_parked_region_uses_no_cpu() {
    common::within(common::SHORT, || {
        let rt = Runtime::builder().threads(2).thread_name("idle-stream").build().unwrap();
        let out = rt.enter(|| {
            // The tail fills up and nobody reads it: every node parks.
            streaming! {
                let x = 7u64;
                #[dirk(buffer = 4)] let y = x + 1;
                y
            }
        });
        std::thread::sleep(Duration::from_millis(300)); // nodes park, searchers give up
        let (threads, before) = common::threads_cpu_time("idle-stream");
        assert_eq!(threads, 2);
        std::thread::sleep(Duration::from_secs(1));
        let used = common::threads_cpu_time("idle-stream").1 - before;
        assert!(used <= Duration::from_millis(30), "a parked region used {used:?} of CPU in 1 s");
        assert!(!out.is_finished());
        assert_eq!(out.next_timeout(Duration::from_secs(1)), Ok(Some(8)), "it still runs when read");
        out.cancel();
        assert_eq!(out.wait(), Ok(()));
    });
}

/// A region that cannot start (a scope no thread satisfies, known only at
/// run time) waited for inside a task of a one-thread runtime: the wait
/// must let the region's nodes run to their end on that thread, not look
/// at the closed tail again and again.
#[test]
fn a_region_that_fails_to_start_ends_when_waited_for_on_a_runtime_of_one_thread() {
    common::within(Duration::from_secs(10), || {
        let rt = Runtime::builder().threads(1).build().unwrap();
        let err = rt.run(|| {
            let mut m = 0u64;
            let nowhere = Scope::thread(5);
            let out = streaming! {
                let x = { m += 1; (m < 4).then_some(m) }?;
                #[dirk(scope = nowhere)] let y = sum1(x as i64);
                y
            };
            out.wait().unwrap_err()
        });
        assert!(matches!(&err, Error::Scope(e) if e.reason.contains("there is no thread 5")), "{err}");
    });
}
