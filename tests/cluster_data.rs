//! Values between processes: read in place on arrival, kept where they were
//! made until needed, and tasks sent to their data (the notebook's
//! experiments, `seeds/003`).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::within;
use dirk::prelude::*;
use rkyv::Archived;

const LONG: Duration = Duration::from_secs(90);

/// 100 MB of doubles.
const BIG: usize = 12_500_000;

#[task]
fn where_is(xs: &[f64]) -> (usize, usize, usize, usize, f64) {
    let received = dirk::received_bytes(0).expect("a remote call's argument arrived in some buffer");
    (dirk::current_worker(), xs.as_ptr() as usize, received.start, received.end, xs[xs.len() - 1])
}

#[task]
fn where_is_archived(xs: &Archived<Vec<f64>>) -> (usize, bool, f64) {
    let received = dirk::received_bytes(0).unwrap_or(0..0);
    let at = xs.as_slice().as_ptr() as usize;
    (dirk::current_worker(), received.contains(&at), xs.as_slice().iter().map(|x| x.to_native()).sum())
}

#[task]
fn fails_on(xs: &[f64]) -> f64 {
    panic!("read {}", xs.len())
}

#[task]
fn make(n: usize, seed: u64) -> Vec<f64> {
    (0..n).map(|i| ((i as u64 * 31 + seed) % 1000) as f64).collect()
}

#[dirk::test]
fn a_remote_task_reads_a_100_mb_vector_in_place() {
    let rt = Runtime::builder().threads(2).workers(2).build().unwrap();
    within(LONG, move || {
        rt.run(|| {
            let v: Vec<f64> = (0..BIG).map(|i| i as f64).collect();
            let (worker, ptr, start, end, last) = spawn!(scope = Scope::worker(1), where_is(v)).fetch().unwrap();
            assert_eq!(worker, 1);
            assert_eq!(last, (BIG - 1) as f64);
            assert!(start <= ptr && ptr + BIG * 8 <= end, "{ptr:#x} lies in {start:#x}..{end:#x}");

            // Made on worker 1, read on worker 2: it travels between them
            // and is read in place there too.
            let made = spawn!(scope = Scope::worker(1), make(BIG, 3));
            let (worker, ptr, start, end, last) = spawn!(scope = Scope::worker(2), where_is(&made)).fetch().unwrap();
            assert_eq!(worker, 2);
            assert_eq!(last, ((((BIG - 1) as u64) * 31 + 3) % 1000) as f64);
            assert!(start <= ptr && ptr + BIG * 8 <= end);

            // Read on worker 1, where it was made: not moved at all.
            let (worker, ptr, start, end, _) = spawn!(scope = Scope::worker(1), where_is(&made)).fetch().unwrap();
            assert_eq!(worker, 1);
            assert!(start <= ptr && ptr + BIG * 8 <= end, "{ptr:#x} in {start:#x}..{end:#x} ({})", end - start);

            // Read by a task here: in place too, where worker 1 wrote it.
            let (worker, ptr, start, end, last) = spawn!(scope = Scope::worker(0), where_is(&made)).fetch().unwrap();
            assert_eq!(worker, 0);
            assert_eq!(last, ((((BIG - 1) as u64) * 31 + 3) % 1000) as f64);
            assert!(start <= ptr && ptr + BIG * 8 <= end, "{ptr:#x} in {start:#x}..{end:#x} ({})", end - start);
            // A panic there fails the task, and the bytes it held go back.
            let error = spawn!(scope = Scope::worker(0), fails_on(&made)).fetch().unwrap_err();
            assert!(matches!(&error, dirk::Error::Panicked { message, .. } if message == "read 12500000"), "{error}");
            let (worker, ..) = spawn!(scope = Scope::worker(0), where_is(&made)).fetch().unwrap();
            assert_eq!(worker, 0);

            // And brought here whole when the program asks for it.
            let here = made.fetch().unwrap();
            assert_eq!(here.len(), BIG);
            assert_eq!(here[..4], [3.0, 34.0, 65.0, 96.0]);
        });
    });
}

#[dirk::test]
fn an_archived_parameter_is_read_without_deserializing() {
    let rt = Runtime::builder().threads(2).workers(1).build().unwrap();
    within(LONG, move || {
        rt.run(|| {
            let v: Vec<f64> = (0..1_000_000).map(|i| (i % 10) as f64).collect();
            let (worker, in_place, sum) =
                spawn!(scope = Scope::worker(1), where_is_archived(v.clone())).fetch().unwrap();
            assert_eq!((worker, in_place, sum), (1, true, 4_500_000.0));
            // The same task runs here too, on an archive made for the call.
            let (worker, _, sum) = spawn!(scope = Scope::worker(0), where_is_archived(v)).fetch().unwrap();
            assert_eq!((worker, sum), (0, 4_500_000.0));
        });
    });
}

#[task]
fn where_am_i_data(a: &[f64]) -> (usize, f64) {
    (dirk::current_worker(), a.iter().sum())
}

#[task]
fn where_am_i_data_split(a: &[f64], b: &[f64]) -> (usize, f64) {
    (dirk::current_worker(), a.iter().sum::<f64>() + b.iter().sum::<f64>())
}

/// 8 MiB of doubles, as in the notebook (`rand(1024, 1024)`).
const ARRAY: usize = 1 << 20;

#[dirk::test]
fn tasks_go_to_their_data() {
    let rt = Runtime::builder().threads(2).workers(3).build().unwrap();
    within(LONG, move || {
        rt.run(|| {
            let a = spawn!(scope = Scope::worker(2), make(ARRAY, 1));
            a.wait().unwrap();
            let expected: f64 = make(ARRAY, 1).iter().sum();
            for _ in 0..5 {
                let (worker, sum) = spawn!(where_am_i_data(&a)).fetch().unwrap();
                assert_eq!(worker, 2, "the array lives on worker 2");
                assert_eq!(sum, expected);
            }
        });
    });
}

#[dirk::test]
fn tasks_reading_data_on_two_workers_spread_over_both() {
    let rt = Runtime::builder().threads(2).workers(3).build().unwrap();
    within(LONG, move || {
        rt.run(|| {
            let a = spawn!(scope = Scope::worker(2), make(ARRAY, 1));
            let b = spawn!(scope = Scope::worker(3), make(ARRAY, 2));
            a.wait().unwrap();
            b.wait().unwrap();
            let expected: f64 = make(ARRAY, 1).iter().sum::<f64>() + make(ARRAY, 2).iter().sum::<f64>();
            let mut count: BTreeMap<usize, usize> = BTreeMap::new();
            for _ in 0..10 {
                let (worker, sum) = spawn!(where_am_i_data_split(&a, &b)).fetch().unwrap();
                assert_eq!(sum, expected);
                *count.entry(worker).or_default() += 1;
            }
            assert_eq!(count.keys().copied().collect::<Vec<_>>(), [2, 3], "{count:?}");
        });
    });
}

#[task]
fn busy(ms: u64) -> usize {
    std::thread::sleep(Duration::from_millis(ms));
    dirk::current_worker()
}

#[task]
fn small_read(a: &[f64], ms: u64) -> usize {
    std::thread::sleep(Duration::from_millis(ms));
    a.len()
}

#[task]
fn worker_of(a: &[f64], ms: u64) -> usize {
    std::thread::sleep(Duration::from_millis(ms));
    let _ = a.len();
    dirk::current_worker()
}

#[dirk::test]
fn small_data_moves_to_an_idle_worker_when_its_own_is_busy() {
    let rt = Runtime::builder().threads(1).workers(2).build().unwrap();
    within(LONG, move || {
        rt.run(|| {
            let small = spawn!(scope = Scope::worker(1), make(1000, 1));
            small.wait().unwrap();
            // Teach the model that `worker_of` takes about 200 ms.
            for _ in 0..2 {
                assert_eq!(spawn!(scope = Scope::worker(1), worker_of(&small, 200)).fetch().unwrap(), 1);
            }
            // Worker 1 (one thread) is now busy for a while; 8 KB move in
            // microseconds, so the next reads go elsewhere.
            let hold = spawn!(scope = Scope::worker(1), busy(1500));
            std::thread::sleep(Duration::from_millis(100));
            let elsewhere = spawn!(scope = Scope::workers([1, 2]), worker_of(&small, 200)).fetch().unwrap();
            assert_eq!(elsewhere, 2, "worker 1 is busy; the value moved to idle worker 2");
            assert_eq!(hold.fetch().unwrap(), 1);
            assert_eq!(spawn!(small_read(&small, 0)).fetch().unwrap(), 1000);
        });
    });
}

#[task]
fn total(xs: &[f64]) -> f64 {
    xs.iter().sum()
}

#[dirk::test]
fn a_trace_shows_remote_runs_and_the_bytes_moved() {
    let rt = Runtime::builder().threads(2).workers(2).build().unwrap();
    within(LONG, move || {
        rt.run(|| {
            let (sum, trace) = dirk::trace::record(|| {
                let sent: Vec<f64> = vec![1.0; 1 << 16];
                let made = spawn!(scope = Scope::worker(1), make(1 << 16, 0));
                let there = spawn!(scope = Scope::worker(2), total(&made));
                let here = spawn!(scope = Scope::worker(2), total(sent));
                there.fetch().unwrap() + here.fetch().unwrap() + made.fetch().unwrap()[1]
            });
            assert_eq!(sum, ((0..1u64 << 16).map(|i| (i * 31 % 1000) as f64).sum::<f64>()) + 65536.0 + 31.0);
            let runs: Vec<(&str, usize)> = trace.tasks().iter().map(|r| (r.name, r.worker)).collect();
            assert!(runs.contains(&("make", 1)), "{runs:?}");
            assert_eq!(runs.iter().filter(|r| **r == ("total", 2)).count(), 2, "{runs:?}");
            let moved: Vec<(u64, usize, usize)> = trace.transfers().iter().map(|t| (t.bytes, t.from, t.to)).collect();
            // The argument sent from here to worker 2, the value made on
            // worker 1 read on worker 2, and that value brought here.
            let big = |from, to| moved.iter().any(|&(b, f, t)| b >= 8 << 16 && (f, t) == (from, to));
            assert!(big(0, 2) && big(1, 2) && big(1, 0), "{moved:?}");
        });
    });
}

#[dirk::test]
fn a_trace_shows_a_run_here_on_values_read_in_place_under_its_own_task() {
    let rt = Runtime::builder().threads(2).workers(1).build().unwrap();
    within(LONG, move || {
        rt.run(|| {
            let ((sum, ran, failed), trace) = dirk::trace::record(|| {
                // Larger than a frame: tasks here read it in place, where
                // worker 1 keeps it.
                let made = spawn!(scope = Scope::worker(1), make(1 << 17, 0));
                let ran = spawn!(scope = Scope::worker(0), total(&made));
                let failed = spawn!(scope = Scope::worker(0), fails_on(&made));
                assert!(failed.wait().is_err());
                (ran.fetch().unwrap(), ran.id(), failed.id())
            });
            assert_eq!(sum, (0..1u64 << 17).map(|i| (i * 31 % 1000) as f64).sum::<f64>());
            let runs: Vec<_> = trace.tasks().iter().filter(|r| r.name == "total" || r.name == "fails_on").collect();
            let shown: Vec<_> = runs.iter().map(|r| (r.task, r.name, r.worker, r.failed)).collect();
            assert_eq!(runs.len(), 2, "one run each, under the task's own id: {shown:?}");
            let run_of = |id| runs.iter().find(|r| r.task == id);
            let ran = run_of(ran).unwrap_or_else(|| panic!("the run of `total` is its task's: {shown:?}"));
            assert_eq!((ran.name, ran.worker, ran.failed), ("total", 0, false));
            assert!(ran.spawned.is_some_and(|s| s <= ran.start) && ran.start <= ran.end);
            let failed = run_of(failed).unwrap_or_else(|| panic!("the run of `fails_on` is its task's: {shown:?}"));
            assert_eq!((failed.name, failed.worker, failed.failed), ("fails_on", 0, true));
        });
    });
}
