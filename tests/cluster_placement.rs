//! Data placement across processes: `dirk::mutable` pins a value (and the
//! tasks using it) to one worker; `dirk::shard` gives each worker its own
//! part.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::within;
use dirk::prelude::*;
use dirk::{Mutable, Shard};

const LONG: Duration = Duration::from_secs(60);

#[task]
fn new_log() -> Vec<u32> {
    Vec::new()
}

#[task]
fn push(log: &Mutable<Vec<u32>>, x: u32) -> (usize, usize) {
    (
        dirk::current_worker(),
        log.with(|v| {
            v.push(x);
            v.len()
        }),
    )
}

#[task]
fn read_log(log: &Mutable<Vec<u32>>) -> Vec<u32> {
    log.with(|v| v.clone())
}

#[task]
fn zero() -> u64 {
    0
}

#[task]
fn count(hits: &Shard<u64>) -> (usize, u64) {
    std::thread::sleep(Duration::from_millis(20));
    (
        dirk::current_worker(),
        hits.with(|n| {
            *n += 1;
            *n
        }),
    )
}

#[dirk::test]
fn a_mutable_on_a_worker_stays_there_and_its_tasks_follow_it() {
    let rt = Runtime::builder().threads(2).workers(2).build().unwrap();
    within(LONG, move || {
        rt.run(|| {
            let log = dirk::mutable_on(Scope::worker(2), new_log).unwrap();
            assert_eq!(log.worker(), 2);
            for x in 0..6 {
                // Unscoped: placed where the value lives; one value, never copied.
                let (worker, len) = spawn!(push(log.clone(), x)).fetch().unwrap();
                assert_eq!((worker, len), (2, x as usize + 1));
            }
            assert_eq!(spawn!(read_log(log.clone())).fetch().unwrap(), [0, 1, 2, 3, 4, 5]);
            let err = spawn!(scope = Scope::worker(1), push(log.clone(), 9)).fetch().unwrap_err();
            assert!(matches!(&err, Error::Scope(e) if e.reason.contains("lives on worker 2")), "{err}");

            // Made here by a closure: pinned here.
            let local = dirk::mutable(|| vec![7u32]);
            assert_eq!(spawn!(push(local.clone(), 8)).fetch().unwrap(), (0, 2));
            assert_eq!(local.with(|v| v.clone()), [7, 8]);

            // Only a #[task] with no arguments can make a value on another worker.
            let err = dirk::mutable_on(Scope::worker(1), || vec![1u32]).unwrap_err();
            assert!(matches!(&err, Error::Scope(e) if e.reason.contains("is not a #[task]")), "{err}");
            let err = dirk::mutable_on(Scope::workers([1, 2]), new_log).unwrap_err();
            assert!(matches!(&err, Error::Scope(e) if e.reason.contains("exactly one worker")), "{err}");
        });
    });
}

/// Each worker's own numbers in 0..20 (seeded by the worker's id).
#[task]
fn numbers() -> Vec<u32> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (dirk::current_worker() as u64 + 1);
    (0..10_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 20) as u32
        })
        .collect()
}

#[task]
fn zero_bins() -> Vec<u64> {
    vec![0; 20]
}

#[task]
fn hist(bins: &Shard<Vec<u64>>, numbers: &Shard<Vec<u32>>) -> usize {
    let counted = numbers.with(|ns| {
        bins.with(|b| {
            for &n in ns.iter() {
                b[n as usize] += 1;
            }
        });
        ns.len()
    });
    assert_eq!(counted, 10_000);
    dirk::current_worker()
}

#[task]
fn copy_bins(part: &Mutable<Vec<u64>>) -> (usize, Vec<u64>) {
    (dirk::current_worker(), part.with(|b| b.clone()))
}

#[task]
fn copy_numbers(part: &Mutable<Vec<u32>>) -> Vec<u32> {
    part.with(|v| v.clone())
}

/// Dagger's histogram over `@shard`s: bins per worker, filled from that
/// worker's numbers, then one copy per part gathered and summed here.
#[dirk::test]
fn the_parts_of_a_shard_are_gathered_one_task_per_worker() {
    let rt = Runtime::builder().threads(2).workers(2).build().unwrap();
    within(LONG, move || {
        rt.run(|| {
            let numbers = dirk::shard(numbers);
            let bins = dirk::shard(zero_bins);
            let ran: Vec<usize> = (0..3)
                .map(|w| spawn!(scope = Scope::worker(w), hist(bins.clone(), numbers.clone())))
                .map(|t| t.fetch().unwrap())
                .collect();
            assert_eq!(ran, [0, 1, 2]);

            let parts = bins.parts();
            assert_eq!(parts.iter().map(Mutable::worker).collect::<Vec<_>>(), [0, 1, 2]);
            let copies = dirk::join_all(parts.into_iter().map(|p| spawn!(copy_bins(p)))).take().unwrap();
            assert_eq!(
                copies.iter().map(|(w, _)| *w).collect::<Vec<_>>(),
                [0, 1, 2],
                "each copy ran where its part lives"
            );
            let total: Vec<u64> = (0..20).map(|i| copies.iter().map(|(_, b)| b[i]).sum()).collect();

            let all = dirk::join_all(numbers.parts().into_iter().map(|p| spawn!(copy_numbers(p)))).take().unwrap();
            assert_ne!(all[1], all[2], "every worker made its own numbers");
            let mut expected = vec![0u64; 20];
            for n in all.iter().flatten() {
                expected[*n as usize] += 1;
            }
            assert_eq!(total, expected);
            assert_eq!(total.iter().sum::<u64>(), 30_000);

            // A shard made by a closure has one part, here.
            let local = dirk::shard(|| vec![1u64; 20]);
            let parts = local.parts();
            assert_eq!(parts.iter().map(Mutable::worker).collect::<Vec<_>>(), [0]);
        });
    });
}

#[dirk::test]
fn a_shard_gives_each_worker_its_own_part() {
    let rt = Runtime::builder().threads(2).workers(2).build().unwrap();
    within(LONG, move || {
        rt.run(|| {
            let hits = dirk::shard(zero);
            let tasks: Vec<_> = (0..30).map(|_| spawn!(count(hits.clone()))).collect();
            let mut seen: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
            for t in &tasks {
                let (worker, n) = t.fetch().unwrap();
                seen.entry(worker).or_default().push(n);
            }
            assert!(seen.len() >= 2, "the tasks spread: {seen:?}");
            for (worker, mut counts) in seen {
                counts.sort();
                let expected: Vec<u64> = (1..=counts.len() as u64).collect();
                assert_eq!(counts, expected, "worker {worker} counted with its own part");
            }

            // A shard made by a closure exists only here, so its tasks run here.
            let local = dirk::shard(|| 100u64);
            for i in 1..=4 {
                assert_eq!(spawn!(count(local.clone())).fetch().unwrap(), (0, 100 + i));
            }
        });
    });
}
