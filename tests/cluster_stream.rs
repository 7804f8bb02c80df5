//! Streaming across processes: `streaming!` stages scoped to worker
//! processes, their elements through the shared-memory rings, and how such
//! a region ends (cancel, teardown, `max_evals`, `?`, panics, lost
//! workers, scopes that cannot be met).
//!
//! As in the other cluster tests, each runtime is built on the test's own
//! thread (the workers run this binary again and must find the test), and
//! the rest is bounded with `within`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::within;
use dirk::prelude::*;

const LONG: Duration = Duration::from_secs(60);

/// Runs `f` in a runtime of 2 threads and `workers` worker processes,
/// bounded by [`LONG`]. The runtime is built here, on the test's own
/// thread: the workers run this binary again and must find the test.
fn on_workers(workers: usize, f: impl FnOnce() + Send + 'static) {
    let rt = Runtime::builder().threads(2).workers(workers).build().unwrap();
    within(LONG, move || rt.run(f));
}

#[task]
fn tagged_double(x: u64) -> (u64, u64) {
    (x * 2, dirk::current_worker() as u64)
}

#[task]
fn add_offset(x: u64, offset: u64) -> u64 {
    x + offset
}

#[task]
fn where_am_i(x: u64) -> (u64, u64) {
    (x, dirk::current_worker() as u64)
}

#[task]
fn sum_block(xs: &[f64]) -> (f64, u64, u64) {
    // The element is read in place from the ring: its bytes lie inside what arrived.
    let arrived = dirk::received_bytes(0).expect("a remote call knows its argument's bytes");
    let inside = arrived.contains(&(xs.as_ptr() as usize)) as u64;
    (xs.iter().sum(), xs.len() as u64, inside)
}

#[task]
fn scale_block(xs: &[f64], k: f64) -> Vec<f64> {
    xs.iter().map(|x| x * k).collect()
}

#[task]
fn picky(x: u64) -> Option<u64> {
    (x != 50).then_some(x)
}

#[task]
fn fragile(x: u64) -> u64 {
    if x == 7 {
        panic!("seven is not allowed on worker {}", dirk::current_worker());
    }
    x
}

#[task]
fn slow_echo(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(5));
    x
}

fn not_a_task(x: u64) -> u64 {
    x
}

fn counting(n: u64) -> impl FnMut() -> Option<u64> {
    let mut i = 0;
    move || {
        i += 1;
        (i <= n).then_some(i)
    }
}

#[dirk::test]
fn a_stage_on_worker_1_streams_100k_elements_in_order() {
    on_workers(1, || {
        const N: u64 = 100_000;
        let mut next = counting(N);
        let out = streaming! {
            let x = next()?;
            #[dirk(scope = Scope::worker(1))]
            let y = tagged_double(x);
            y
        };
        let mut count = 0u64;
        let mut checksum = 0u64;
        for (k, (v, worker)) in out.iter().enumerate() {
            assert_eq!(v, 2 * (k as u64 + 1), "element {k} in order");
            assert_eq!(worker, 1, "the stage ran on worker 1");
            checksum = checksum.wrapping_add(v);
            count += 1;
        }
        out.wait().unwrap();
        assert_eq!(count, N);
        assert_eq!(checksum, N * (N + 1));
        let stats = out.stats();
        assert_eq!(stats.stages[1].elements, N, "{stats:?}");
    });
}

#[dirk::test]
fn constants_go_once_and_a_chain_crosses_two_workers() {
    on_workers(2, || {
        let offset = 1000u64;
        let mut next = counting(500);
        let out = streaming! {
            let x = next()?;
            #[dirk(scope = Scope::worker(1))]
            let y = add_offset(x, offset);
            #[dirk(scope = Scope::worker(2))]
            let z = where_am_i(y);
            z
        };
        let got: Vec<(u64, u64)> = out.iter().collect();
        out.wait().unwrap();
        assert_eq!(got, (1..=500).map(|x| (x + 1000, 2)).collect::<Vec<_>>());
    });
}

#[dirk::test]
fn megabyte_elements_travel_through_the_ring_not_the_socket() {
    on_workers(1, || {
        const N: usize = 64;
        const LEN: usize = 1 << 17; // 1 MiB of f64
        let mut i = 0;
        let before = dirk::socket_bytes();
        let out = streaming! {
            let block = {
                i += 1;
                (i <= N).then(|| vec![i as f64; LEN])
            }?;
            #[dirk(scope = Scope::worker(1))]
            let s = sum_block(&block);
            s
        };
        let got: Vec<(f64, u64, u64)> = out.iter().collect();
        out.wait().unwrap();
        let moved = dirk::socket_bytes() - before;
        assert_eq!(got.len(), N);
        for (k, (sum, len, inside)) in got.into_iter().enumerate() {
            assert_eq!(sum, ((k + 1) * LEN) as f64);
            assert_eq!(len, LEN as u64);
            assert_eq!(inside, 1, "element {k} was read in place");
        }
        // The counter is the process's (other tests' clusters share it):
        // far less than one element's worth means the elements did not go there.
        assert!(moved < 1 << 20, "{moved} bytes on the socket for 64 MiB of elements");
    });
}

#[dirk::test]
fn large_results_come_back_through_the_ring() {
    on_workers(1, || {
        let mut i = 0;
        let out = streaming! {
            let block = {
                i += 1;
                (i <= 20).then(|| vec![i as f64; 1 << 17])
            }?;
            #[dirk(scope = Scope::worker(1))]
            let scaled = scale_block(&block, 0.5);
            let total = scaled.iter().sum::<f64>();
            total
        };
        let got: Vec<f64> = out.iter().collect();
        out.wait().unwrap();
        assert_eq!(got, (1..=20).map(|i| i as f64 * 0.5 * (1 << 17) as f64).collect::<Vec<_>>());
    });
}

#[dirk::test]
fn question_mark_and_max_evals_end_a_remote_stage_as_a_local_one() {
    on_workers(1, || {
        let mut next = counting(1000);
        let out = streaming! {
            let x = next()?;
            #[dirk(scope = Scope::worker(1))]
            let y = picky(x)?;
            y
        };
        assert_eq!(out.iter().collect::<Vec<_>>(), (1..50).collect::<Vec<_>>());
        out.wait().unwrap();

        let mut next = counting(1000);
        let out = streaming! {
            let x = next()?;
            #[dirk(scope = Scope::worker(1), max_evals = 10)]
            let y = tagged_double(x);
            y
        };
        let got: Vec<u64> = out.iter().map(|(v, _)| v).collect();
        assert_eq!(got, (1..=10).map(|x| 2 * x).collect::<Vec<_>>());
        out.wait().unwrap();
    });
}

#[dirk::test]
fn a_panic_on_the_worker_names_the_stage() {
    on_workers(1, || {
        let mut next = counting(100);
        let out = streaming! {
            let x = next()?;
            #[dirk(scope = Scope::worker(1))]
            let y = fragile(x);
            y
        };
        let got: Vec<u64> = out.iter().collect();
        assert_eq!(got, (1..7).collect::<Vec<_>>(), "the values before the panic arrive");
        let err = out.wait().unwrap_err();
        match &err {
            Error::Panicked { name, message, .. } => {
                assert_eq!(name.as_ref(), "y");
                assert_eq!(message, "seven is not allowed on worker 1");
            }
            other => panic!("expected a panic, got {other}"),
        }
    });
}

#[dirk::test]
fn cancel_and_teardown_stop_the_remote_stage() {
    on_workers(1, || {
        // An endless source; cancel after some elements.
        let mut i = 0u64;
        let out = streaming! {
            let x = { i += 1; i };
            #[dirk(scope = Scope::worker(1))]
            let y = slow_echo(x);
            y
        };
        let first: Vec<u64> = out.iter().take(5).collect();
        assert_eq!(first, [1, 2, 3, 4, 5]);
        let asked = Instant::now();
        out.cancel();
        assert!(out.wait().is_ok(), "a cancelled region ends without an error");
        assert!(asked.elapsed() < Duration::from_secs(2));

        // Teardown: the consumer ends, so the remote stage and the source stop.
        let mut i = 0u64;
        let out = streaming! {
            let x = { i += 1; i };
            #[dirk(scope = Scope::worker(1))]
            let y = slow_echo(x);
            #[dirk(max_evals = 3)]
            let z = y + 1;
            z
        };
        assert_eq!(out.iter().collect::<Vec<_>>(), [2, 3, 4]);
        out.wait().unwrap();

        // The worker serves the next region after both.
        let mut next = counting(3);
        let out = streaming! {
            let x = next()?;
            #[dirk(scope = Scope::worker(1))]
            let y = where_am_i(x);
            y
        };
        assert_eq!(out.iter().collect::<Vec<_>>(), [(1, 1), (2, 1), (3, 1)]);
        out.wait().unwrap();
    });
}

#[dirk::test]
fn a_stage_that_cannot_go_to_a_worker_is_a_scope_error() {
    on_workers(1, || {
        // A scope known only at run time: not a literal, so no compile error.
        let there = Scope::worker(std::hint::black_box(1));
        let mut next = counting(3);
        let s = there.clone();
        let out = streaming! {
            let x = next()?;
            #[dirk(scope = s)]
            let y = not_a_task(x);
            y
        };
        let err = out.wait().unwrap_err();
        let Error::Scope(e) = &err else { panic!("expected a scope error, got {err}") };
        assert_eq!(e.name.as_ref(), "y");
        assert!(e.reason.contains("`not_a_task` is not a #[task]"), "{}", e.reason);

        let mut next = counting(3);
        let out = streaming! {
            let x = next()?;
            #[dirk(scope = there)]
            let y = x + 1;
            y
        };
        let err = out.wait().unwrap_err();
        assert!(matches!(&err, Error::Scope(e) if e.reason.contains("run only #[task] functions")), "{err}");
    });
}

#[dirk::test]
fn a_worker_dying_mid_stream_ends_the_region_with_worker_lost() {
    let rt = Runtime::builder().threads(2).workers(1).build().unwrap();
    let pid = rt.worker_pids()[0];
    within(LONG, move || {
        rt.run(|| {
            let mut i = 0u64;
            let out = streaming! {
                let x = { i += 1; i };
                #[dirk(scope = Scope::worker(1))]
                let y = slow_echo(x);
                y
            };
            let mut it = out.iter();
            assert_eq!(it.next(), Some(1));
            let status = Command::new("kill").args(["-9", &pid.to_string()]).status().expect("kill runs");
            assert!(status.success());
            let killed = Instant::now();
            for _ in it {}
            let err = out.wait().unwrap_err();
            assert!(killed.elapsed() < Duration::from_secs(2), "noticed after {:?}", killed.elapsed());
            assert!(matches!(err, Error::WorkerLost { worker: 1, .. }), "{err}");
        })
    });
}
