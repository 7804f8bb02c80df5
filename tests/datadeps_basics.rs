//! `datadeps!` end to end: what the block returns, when it returns, how
//! failures come out, and the kinds of places and arguments it takes.

#![forbid(unsafe_code)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{SHORT, within};
use dirk::datadeps::{MatMut, MatRef, Matrix};
use dirk::prelude::*;

fn sort_in_place(xs: &mut [i32]) {
    xs.sort();
}

fn copy_into(to: &mut [i32], from: &[i32]) {
    to.copy_from_slice(from);
}

fn fill(xs: &mut [i64], value: i64) {
    xs.fill(value);
}

fn sum(xs: &[i64]) -> i64 {
    xs.iter().sum()
}

/// Runs `f` inside a fresh runtime of each size, from a thread outside it.
fn on_each_runtime(f: impl Fn() + Send + Sync + Copy + 'static) {
    for threads in [1, 2, 4] {
        within(SHORT, move || {
            let rt = Runtime::builder().threads(threads).build().unwrap();
            rt.enter(f);
        });
    }
}

#[test]
fn the_quickstart_sorts_then_copies() {
    on_each_runtime(|| {
        let mut x = vec![4, 5, 6, 7, 1, 2, 3, 9, 8];
        let mut c = vec![0; 9];
        datadeps! {
            sort_in_place(InOut(x));
            copy_into(Out(c), In(x));
        }
        .unwrap();
        assert_eq!(c, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    });
}

#[test]
fn the_block_returns_its_value() {
    on_each_runtime(|| {
        let mut v = vec![0i64; 4];
        let value = datadeps! {
            fill(Out(v), 3);
            "done"
        };
        assert_eq!(value, Ok("done"));
        let total = datadeps! {
            sum(In(v))
        };
        assert_eq!(total.unwrap().fetch().unwrap(), 12, "a task call's value is its handle");
    });
}

#[test]
fn every_task_has_ended_when_the_block_returns() {
    on_each_runtime(|| {
        let ended = AtomicUsize::new(0);
        let mut parts = vec![vec![0u8; 16]; 8];
        fn slow(part: &mut [u8], ended: &AtomicUsize) {
            std::thread::sleep(Duration::from_millis(5));
            part.fill(1);
            ended.fetch_add(1, Ordering::SeqCst);
        }
        datadeps! {
            for i in 0..8 {
                slow(Out(parts[i]), &ended);
            }
        }
        .unwrap();
        assert_eq!(ended.load(Ordering::SeqCst), 8);
        assert!(parts.iter().all(|p| p.iter().all(|&b| b == 1)));
    });
}

#[test]
fn every_task_is_freed_with_the_block_whether_its_handle_was_taken_or_not() {
    on_each_runtime(|| {
        // A task's value lives as long as its cell: once the block has
        // returned, no cell may be left behind (each call statement below
        // makes no handle; its references are the tracker's).
        let token = Arc::new(());
        fn keep(x: &mut u64, token: Arc<()>) -> Arc<()> {
            *x += 1;
            token
        }
        let mut v = vec![0u64; 64];
        let kept = datadeps! {
            for i in 0..64 {
                keep(InOut(v[i]), Arc::clone(&token));
                keep(InOut(v[(i * 7) % 64]), Arc::clone(&token));
            }
            let t = keep(InOut(v[3]), Arc::clone(&token));
            keep(InOut(v[3]), Arc::clone(&token));
            t
        }
        .unwrap();
        assert_eq!(v.iter().sum::<u64>(), 130);
        assert_eq!(v[3], 4);
        assert_eq!(Arc::strong_count(&token), 2, "only the value of the task whose handle was returned is alive");
        assert!(Arc::ptr_eq(&kept.fetch().unwrap(), &token));
        drop(kept);
        assert_eq!(Arc::strong_count(&token), 1, "every task was freed");
    });
}

#[test]
fn a_panic_in_a_task_is_returned_as_an_error() {
    on_each_runtime(|| {
        fn boom(_: &mut i32) {
            panic!("the tile was singular");
        }
        fn add_one(x: &mut i32) {
            *x += 1;
        }
        let (mut a, mut b) = (0, 0);
        let result = datadeps! {
            boom(InOut(a));
            add_one(InOut(a));   // after the failure: does not run
            add_one(InOut(b));   // independent: runs
        };
        let err = result.unwrap_err();
        assert!(
            matches!(&err, Error::Panicked { name, message, .. } if name == "boom" && message == "the tile was singular")
        );
        assert_eq!((a, b), (0, 1));
    });
}

#[test]
fn a_spawned_task_result_is_copied_into_an_out_place() {
    on_each_runtime(|| {
        fn make(n: usize) -> Vec<i32> {
            (0..n as i32).rev().collect()
        }
        let mut a = vec![0; 5];
        datadeps! {
            let made = spawn!(make(5));
            copy_into(Out(a), made);
        }
        .unwrap();
        assert_eq!(a, [4, 3, 2, 1, 0]);
    });
}

#[test]
fn fields_elements_strings_and_matrices_are_places() {
    on_each_runtime(|| {
        struct Stats {
            count: u64,
            total: u64,
            names: Vec<String>,
        }
        fn bump(x: &mut u64, by: &u64) {
            *x += *by;
        }
        fn shout(s: &mut str) {
            s.make_ascii_uppercase();
        }
        fn trace(t: MatRef<'_, f64>) -> f64 {
            (0..t.rows()).map(|i| t[(i, i)]).sum()
        }
        fn double(mut t: MatMut<'_, f64>) {
            for i in 0..t.rows() {
                t.row_mut(i).iter_mut().for_each(|x| *x *= 2.0);
            }
        }
        let mut s = Stats { count: 1, total: 10, names: vec!["ada".into(), "grace".into()] };
        let mut m = Matrix::from_fn(3, 3, |i, j| (i * 3 + j) as f64);
        let tr = datadeps! {
            bump(InOut(s.count), In(s.total));
            bump(InOut(s.total), In(s.count));    // reads what the call before wrote: runs after it
            shout(InOut(s.names[1]));
            double(InOut(m[(1.., 1..)]));
            trace(In(m[(1..3, 1..3)]))
        }
        .unwrap();
        assert_eq!((s.count, s.total), (11, 21));
        assert_eq!(s.names, ["ada", "GRACE"]);
        assert_eq!(tr.fetch().unwrap(), 8.0 * 2.0 + 4.0 * 2.0);
        assert_eq!(m[(0, 0)], 0.0);
    });
}

#[test]
fn references_and_self_are_looked_through() {
    struct Grid {
        cells: Vec<i64>,
    }
    impl Grid {
        fn halves(&mut self) -> i64 {
            let n = self.cells.len() / 2;
            datadeps! {
                fill(Out(self.cells[..n]), 1);
                fill(Out(self.cells[n..]), 2);
                sum(In(self.cells))
            }
            .unwrap()
            .fetch()
            .unwrap()
        }
    }
    fn through(v: &mut Vec<i64>) -> i64 {
        datadeps! {
            fill(Out(v[1..]), 5);
            sum(In(v))
        }
        .unwrap()
        .fetch()
        .unwrap()
    }
    on_each_runtime(|| {
        let mut g = Grid { cells: vec![0; 6] };
        assert_eq!(g.halves(), 9);
        let mut v = vec![0i64; 4];
        assert_eq!(through(&mut v), 15);
    });
}

#[test]
fn an_index_out_of_range_fails_its_task() {
    on_each_runtime(|| {
        fn set(x: &mut i64) {
            *x = 1;
        }
        let mut v = vec![0i64; 3];
        let i = 5;
        let err = datadeps! {
            set(Out(v[i]));
        }
        .unwrap_err();
        match err {
            Error::Panicked { message, .. } => {
                assert_eq!(message, "`Out(v[i])` of `set`: index out of bounds: the len is 3 but the index is 5")
            }
            other => panic!("expected Panicked, got {other:?}"),
        }
    });
}

#[test]
fn overlapping_places_of_one_call_are_refused_at_run_time() {
    on_each_runtime(|| {
        fn both(a: &mut [i64], b: &[i64]) {
            a[0] = b[0];
        }
        let mut v = vec![1i64; 8];
        let (i, j) = (2, 4);
        let err = datadeps! {
            both(InOut(v[i..6]), In(v[j..8]));
        }
        .unwrap_err();
        assert!(err.to_string().contains("`InOut(v[i..6])` and `In(v[j..8])` of `both` overlap in memory"), "{err}");
        let (i, j) = (0, 4);
        datadeps! {
            both(InOut(v[i..4]), In(v[j..8]));
        }
        .unwrap();
    });
}

#[test]
fn the_block_works_inside_a_task_and_on_one_thread() {
    within(SHORT, || {
        let rt = Runtime::builder().threads(1).build().unwrap();
        let total = rt.run(|| {
            let t = dirk::spawn(|| {
                let mut v = vec![0i64; 100];
                datadeps! {
                    for k in 0..10 {
                        fill(Out(v[k * 10..(k + 1) * 10]), k as i64);
                    }
                    sum(In(v))
                }
                .unwrap()
                .fetch()
                .unwrap()
            });
            t.fetch().unwrap()
        });
        assert_eq!(total, 450);
    });
}

#[test]
fn tasks_spawned_inside_are_waited_for_too() {
    on_each_runtime(|| {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut x = 0;
        fn set(x: &mut i32) {
            *x = 1;
        }
        datadeps! {
            set(InOut(x));
            let seen = Arc::clone(&seen);
            dirk::spawn(move || {
                std::thread::sleep(Duration::from_millis(5));
                seen.lock().unwrap().push(1);
            });
        }
        .unwrap();
        assert_eq!(*seen.lock().unwrap(), [1]);
        assert_eq!(x, 1);
    });
}

#[test]
fn a_panic_in_the_block_itself_is_resumed_after_its_tasks() {
    within(SHORT, || {
        let ended = AtomicUsize::new(0);
        let mut x = 0;
        fn slow(x: &mut i32, ended: &AtomicUsize) {
            std::thread::sleep(Duration::from_millis(20));
            *x = 1;
            ended.fetch_add(1, Ordering::SeqCst);
        }
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            datadeps! {
                slow(InOut(x), &ended);
                panic!("the block itself failed");
            }
        }));
        assert!(caught.is_err());
        assert_eq!(ended.load(Ordering::SeqCst), 1, "the task ended before the panic left the block");
        assert_eq!(x, 1);
    });
}

#[test]
fn task_calls_may_sit_in_closures_and_branches() {
    on_each_runtime(|| {
        let mut v = vec![0i64; 8];
        let n = v.len();
        let total = datadeps! {
            (0..4).for_each(|k| {
                fill(Out(v[2 * k..2 * k + 2]), k as i64);
            });
            if n > 100 {
                fill(Out(v), -1);
            }
            sum(In(v))
        };
        assert_eq!(total.unwrap().fetch().unwrap(), 2 * (1 + 2 + 3));
    });
}
