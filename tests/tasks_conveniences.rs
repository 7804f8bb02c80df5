//! What a task user expects besides `spawn!` and `fetch`: taking a result
//! without a copy, joining many tasks, and passing a list of tasks where a
//! function takes a list of values (API.md, "Conveniences every task user
//! expects").

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{SHORT, within};
use dirk::prelude::*;

/// A big value that counts its copies and remembers where its buffer was
/// made, so a test can tell a move from a clone.
#[derive(Debug, PartialEq)]
struct Big {
    bytes: Vec<u8>,
}

static CLONES: AtomicUsize = AtomicUsize::new(0);
/// Tests that count clones take this lock, so they do not count each other's.
static COUNTING: Mutex<()> = Mutex::new(());

impl Clone for Big {
    fn clone(&self) -> Self {
        CLONES.fetch_add(1, Ordering::SeqCst);
        Big { bytes: self.bytes.clone() }
    }
}

fn counting() -> std::sync::MutexGuard<'static, ()> {
    let guard = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    CLONES.store(0, Ordering::SeqCst);
    guard
}

static MADE_AT: AtomicUsize = AtomicUsize::new(0);

#[task]
fn big(n: usize) -> Big {
    let bytes = vec![7u8; n];
    MADE_AT.store(bytes.as_ptr() as usize, Ordering::SeqCst);
    Big { bytes }
}

#[task]
fn boom(x: u64) -> u64 {
    panic!("boom {x}")
}

#[task]
fn square(x: u64) -> u64 {
    x * x
}

#[task]
fn slice_sum(xs: &[u64]) -> u64 {
    xs.iter().sum()
}

#[task]
#[allow(clippy::ptr_arg, reason = "a `&Vec<T>` parameter is what this test passes a list of tasks to")]
fn vec_ref_sum(xs: &Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[task]
fn owned_sum(xs: Vec<u64>) -> u64 {
    xs.into_iter().sum()
}

#[task]
fn refs_sum(xs: Vec<&u64>) -> u64 {
    xs.into_iter().sum()
}

#[task]
fn slice_of_refs_sum(xs: &[&u64]) -> u64 {
    xs.iter().copied().sum()
}

#[task]
fn total_len(parts: &[Big]) -> usize {
    parts.iter().map(|b| b.bytes.len()).sum()
}

fn runtimes() -> Vec<Runtime> {
    [1, 3].iter().map(|&n| Runtime::builder().threads(n).build().unwrap()).collect()
}

#[test]
fn take_moves_the_result_out_of_the_last_handle() {
    within(SHORT, || {
        let _counting = counting();
        for rt in runtimes() {
            rt.run(|| {
                for round in 0..200 {
                    let t = spawn!(big(4096 + round));
                    let value = t.take().unwrap();
                    assert_eq!(value.bytes.len(), 4096 + round);
                    assert_eq!(value.bytes.as_ptr() as usize, MADE_AT.load(Ordering::SeqCst), "round {round}");
                }
            });
            // From outside the pool too (the waiter is not a worker).
            let value = rt.enter(|| spawn!(big(1 << 20)).take().unwrap());
            assert_eq!(value.bytes.as_ptr() as usize, MADE_AT.load(Ordering::SeqCst));
        }
        assert_eq!(CLONES.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn take_clones_while_another_handle_or_a_dependent_needs_the_value() {
    within(SHORT, || {
        let _counting = counting();
        let rt = Runtime::builder().threads(2).build().unwrap();
        rt.run(|| {
            let t = spawn!(big(100));
            let other = t.clone();
            assert_eq!(t.take().unwrap().bytes.len(), 100);
            assert_eq!(CLONES.load(Ordering::SeqCst), 1);
            // The other handle still reads the value.
            assert_eq!(other.fetch().unwrap().bytes.len(), 100);
            assert_eq!(CLONES.load(Ordering::SeqCst), 2);
            assert_eq!(other.take().unwrap().bytes.len(), 100);
            assert_eq!(CLONES.load(Ordering::SeqCst), 2, "the last handle moves");

            // A dependent not yet run holds the value too: its other input
            // is held back until the take is over (by a flag, not a time).
            let release = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let held = release.clone();
            let gate = dirk::spawn(move || {
                while !held.load(Ordering::SeqCst) {
                    dirk::sleep(std::time::Duration::from_millis(1));
                }
                0u8
            });
            let t = spawn!(big(10));
            t.wait().unwrap();
            let reader = spawn!(len_of_after(&t, &gate));
            assert_eq!(t.take().unwrap().bytes.len(), 10);
            release.store(true, Ordering::SeqCst);
            assert_eq!(reader.fetch().unwrap(), 10);
            assert_eq!(CLONES.load(Ordering::SeqCst), 3);
        });
    });
}

#[task]
fn len_of_after(b: &Big, _gate: &u8) -> usize {
    b.bytes.len()
}

#[test]
fn take_and_join_all_pass_failures_on() {
    within(SHORT, || {
        let rt = Runtime::builder().threads(2).build().unwrap();
        rt.run(|| {
            let err = spawn!(boom(3)).take().unwrap_err();
            assert!(matches!(&err, Error::Panicked { message, .. } if message == "boom 3"), "{err}");

            let parts = vec![spawn!(square(2)), spawn!(boom(4)), spawn!(square(5))];
            let err = dirk::join_all(parts).fetch().unwrap_err();
            assert!(matches!(&err, Error::Upstream { name, .. } if name == "join_all"), "{err}");
            assert!(matches!(err.root(), Error::Panicked { message, .. } if message == "boom 4"), "{err}");
        });
    });
}

#[test]
fn join_all_gives_every_result_in_order() {
    within(SHORT, || {
        for rt in runtimes() {
            rt.run(|| {
                let parts: Vec<Task<u64>> = (0..100).map(|i| spawn!(square(i))).collect();
                let all = dirk::join_all(parts);
                assert_eq!(all.name(), "join_all");
                assert_eq!(all.fetch().unwrap(), (0..100).map(|i| i * i).collect::<Vec<u64>>());
                assert_eq!(dirk::join_all(Vec::<Task<u64>>::new()).fetch().unwrap(), Vec::<u64>::new());
                // A joined list is one task: another task can depend on it.
                let joined = dirk::join_all((1..=4).map(|i| spawn!(square(i))));
                assert_eq!(spawn!(slice_sum(&joined)).fetch().unwrap(), 30);
            });
        }
    });
}

#[test]
fn a_list_of_tasks_goes_where_a_list_of_values_goes() {
    within(SHORT, || {
        for rt in runtimes() {
            rt.run(|| {
                let parts = || (1..=10).map(|i| spawn!(square(i))).collect::<Vec<Task<u64>>>();
                let expected = 385;
                assert_eq!(spawn!(slice_sum(parts())).fetch().unwrap(), expected);
                assert_eq!(spawn!(vec_ref_sum(parts())).fetch().unwrap(), expected);
                assert_eq!(spawn!(owned_sum(parts())).fetch().unwrap(), expected);
                assert_eq!(spawn!(refs_sum(parts())).fetch().unwrap(), expected);
                assert_eq!(spawn!(slice_of_refs_sum(parts())).fetch().unwrap(), expected);
                // Borrowed lists, and a slice of handles, depend on the same tasks.
                let kept = parts();
                assert_eq!(spawn!(slice_sum(&kept)).fetch().unwrap(), expected);
                assert_eq!(spawn!(vec_ref_sum(&kept[..])).fetch().unwrap(), expected);
                assert_eq!(kept[9].fetch().unwrap(), 100);
            });
        }
    });
}

#[test]
fn a_slice_parameter_moves_results_it_is_the_last_reader_of() {
    within(SHORT, || {
        let _counting = counting();
        let rt = Runtime::builder().threads(2).build().unwrap();
        rt.run(|| {
            let parts: Vec<Task<Big>> = (0..8).map(|_| spawn!(big(1000))).collect();
            for part in &parts {
                part.wait().unwrap();
            }
            assert_eq!(spawn!(total_len(parts)).fetch().unwrap(), 8000);
            assert_eq!(CLONES.load(Ordering::SeqCst), 0);

            let kept: Vec<Task<Big>> = (0..8).map(|_| spawn!(big(10))).collect();
            assert_eq!(spawn!(total_len(&kept)).fetch().unwrap(), 80);
            assert_eq!(CLONES.load(Ordering::SeqCst), 8, "the handles kept here still read the values");
        });
    });
}
