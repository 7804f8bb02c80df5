//! Task graphs from Dagger's test suite: values flow along dependencies and
//! results come out right, on one thread and on several.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{SHORT, within};
use dirk::prelude::*;

#[task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[task]
fn mul(a: i64, b: i64) -> i64 {
    a * b
}

#[task]
fn sum(xs: &[i64]) -> i64 {
    xs.iter().sum()
}

#[task]
fn shout(s: &str) -> String {
    s.to_uppercase()
}

#[task]
fn inc(x: i64) -> i64 {
    x + 1
}

#[task]
fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let a = spawn!(fib(n - 1));
    let b = spawn!(fib(n - 2));
    a.fetch().unwrap() + b.fetch().unwrap()
}

/// Runs `f` on a fresh runtime of each size: one thread, then several.
fn on_each_runtime(f: impl Fn() + Send + Sync + Copy + 'static) {
    for threads in [1, 2, 4] {
        within(SHORT, move || {
            let rt = Runtime::builder().threads(threads).build().unwrap();
            rt.run(f);
        });
    }
}

#[test]
fn four_plus_four_times_a_sum() {
    on_each_runtime(|| {
        let a = spawn!(add(2, 2));
        let b = spawn!(sum(vec![2, 1, 2]));
        let c = spawn!(mul(a, b));
        assert_eq!(c.fetch().unwrap(), 20);
    });
}

#[test]
fn diamond() {
    on_each_runtime(|| {
        let a = spawn!(inc(6));
        let b = spawn!(inc(&a));
        let c = spawn!(mul(&a, 2));
        let d = spawn!(add(&b, &c));
        assert_eq!((a.fetch().unwrap(), b.fetch().unwrap(), c.fetch().unwrap()), (7, 8, 14));
        assert_eq!(d.fetch().unwrap(), 22);
    });
}

#[test]
fn four_way_fan_in() {
    #[task]
    fn add4(a: i64, b: i64, c: i64, d: i64) -> i64 {
        a + b + c + d
    }
    on_each_runtime(|| {
        let parts: Vec<Task<i64>> = (1..=4).map(|i| spawn!(add(i, 0))).collect();
        let total = spawn!(add4(&parts[0], &parts[1], &parts[2], &parts[3]));
        assert_eq!(total.fetch().unwrap(), 10);
    });
}

#[test]
fn sixty_four_concurrent_diamonds() {
    on_each_runtime(|| {
        let sinks: Vec<Task<i64>> = (0..64)
            .map(|i| {
                let top = spawn!(add(i, 0));
                let left = spawn!(add(&top, 1));
                let right = spawn!(mul(&top, 2));
                spawn!(add(left, right))
            })
            .collect();
        for (i, t) in sinks.iter().enumerate() {
            assert_eq!(t.fetch().unwrap(), 3 * i as i64 + 1);
        }
    });
}

#[test]
fn chains_with_unreferenced_intermediates() {
    on_each_runtime(|| {
        for len in [100, 500] {
            let mut t = spawn!(add(0, 0));
            for _ in 0..len {
                t = spawn!(inc(t)); // the previous handle is dropped here
            }
            assert_eq!(t.fetch().unwrap(), len);
        }
    });
}

#[test]
fn reduction_tree_of_a_thousand_leaves() {
    on_each_runtime(|| {
        let mut level: Vec<Task<i64>> = (1..=1000).map(|i| spawn!(add(i, 0))).collect();
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|pair| match pair {
                    [a, b] => spawn!(add(a, b)),
                    [a] => spawn!(add(a, 0)),
                    _ => unreachable!(),
                })
                .collect();
        }
        assert_eq!(level[0].fetch().unwrap(), 500_500);
    });
}

#[test]
fn wide_fan_out() {
    on_each_runtime(|| {
        let root = spawn!(add(20, 22));
        let leaves: Vec<Task<i64>> = (0..2000).map(|i| spawn!(add(&root, i))).collect();
        for (i, t) in leaves.iter().enumerate() {
            assert_eq!(t.fetch().unwrap(), 42 + i as i64);
        }
    });
}

#[test]
fn recursive_fib_on_one_thread() {
    within(SHORT, || {
        let rt = Runtime::builder().threads(1).build().unwrap();
        assert_eq!(rt.run(|| spawn!(fib(25)).fetch().unwrap()), 75025);
    });
}

#[test]
fn recursive_fib_on_the_global_runtime() {
    within(SHORT, || assert_eq!(spawn!(fib(20)).fetch().unwrap(), 6765));
}

#[test]
fn a_million_task_chain_does_not_overflow_the_stack() {
    within(Duration::from_secs(120), || {
        let rt = Runtime::builder().threads(2).build().unwrap();
        rt.run(|| {
            let mut t = spawn!(add(0, 0));
            for _ in 0..1_000_000 {
                t = spawn!(inc(t));
            }
            assert_eq!(t.fetch().unwrap(), 1_000_000);
        });
    });
}

use std::time::Duration;

/// A value that counts how often it is cloned and dropped.
#[derive(Debug)]
struct Counted {
    value: i64,
    clones: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, Ordering::SeqCst);
        Counted { value: self.value, clones: self.clones.clone(), drops: self.drops.clone() }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[task]
fn take_counted(c: Counted) -> i64 {
    c.value
}

#[task]
fn borrow_counted(c: &Counted) -> i64 {
    c.value
}

#[test]
fn the_last_consumer_moves_the_result_and_others_borrow_or_clone() {
    within(SHORT, || {
        let rt = Runtime::builder().threads(2).build().unwrap();
        rt.run(|| {
            let clones = Arc::new(AtomicUsize::new(0));
            let drops = Arc::new(AtomicUsize::new(0));
            let (c2, d2) = (clones.clone(), drops.clone());
            let make = dirk::spawn(move || Counted { value: 5, clones: c2, drops: d2 });
            // A borrowing consumer and a by-value consumer that holds the last reference.
            let b = spawn!(borrow_counted(&make));
            assert_eq!(b.fetch().unwrap(), 5);
            drop(b);
            let t = spawn!(take_counted(make));
            assert_eq!(t.fetch().unwrap(), 5);
            assert_eq!(clones.load(Ordering::SeqCst), 0, "the only consumer left takes the value");
            assert_eq!(drops.load(Ordering::SeqCst), 1, "moved, then dropped once by the consumer");

            // While the user still holds a handle, a by-value consumer clones.
            let (c3, d3) = (clones.clone(), drops.clone());
            let kept = dirk::spawn(move || Counted { value: 7, clones: c3, drops: d3 });
            let t = spawn!(take_counted(&kept));
            assert_eq!(t.fetch().unwrap(), 7);
            assert_eq!(clones.load(Ordering::SeqCst), 1);
            assert_eq!(kept.fetch().unwrap().value, 7);
            drop(kept);
        });
    });
}

#[test]
fn results_are_freed_when_nobody_needs_them() {
    within(SHORT, || {
        let drops = Arc::new(AtomicUsize::new(0));
        let rt = Runtime::builder().threads(2).build().unwrap();
        let d = drops.clone();
        rt.run(move || {
            dirk::sync(|| {
                for i in 0..1000 {
                    let (c, d) = (Arc::new(AtomicUsize::new(0)), d.clone());
                    let made = dirk::spawn(move || Counted { value: i, clones: c, drops: d });
                    spawn!(borrow_counted(made)); // both handles dropped at once
                }
            })
            .unwrap();
        });
        // A consumer drops its input reference when it finishes; give the
        // last few completions a moment on other threads.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while drops.load(Ordering::SeqCst) < 1000 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(drops.load(Ordering::SeqCst), 1000);
    });
}

#[test]
fn closures_methods_and_paths_can_be_spawned() {
    within(SHORT, || {
        let doubled = spawn!((|x: i64| x * 2)(21));
        assert_eq!(doubled.fetch().unwrap(), 42);
        let v = vec![3_u8, 4, 5];
        assert_eq!(spawn!(v.len()).fetch().unwrap(), 3);
        let n = spawn!(i64::max(&doubled, 50));
        assert_eq!(n.fetch().unwrap(), 50);
        let s = spawn!(name = "greeting", str::to_uppercase("hi"));
        assert_eq!(s.name(), "greeting");
        assert_eq!(s.fetch().unwrap(), "HI");
        assert_eq!(dirk::spawn(|| "closure").fetch().unwrap(), "closure");
    });
}

#[test]
fn vec_and_string_results_read_as_slices_and_strs() {
    within(SHORT, || {
        let xs = dirk::spawn(|| vec![1_i64, 2, 3]);
        assert_eq!(spawn!(sum(&xs)).fetch().unwrap(), 6);
        let word = dirk::spawn(|| "dirk".to_owned());
        assert_eq!(spawn!(shout(&word)).fetch().unwrap(), "DIRK");
        assert_eq!(spawn!(shout("plain".to_owned())).fetch().unwrap(), "PLAIN");
    });
}

#[test]
fn a_vec_of_handles_is_a_list_of_dependencies() {
    #[task]
    fn total_of(parts: Vec<&i64>) -> i64 {
        parts.into_iter().sum()
    }
    #[task]
    fn owned_total(parts: Vec<i64>, offset: i64) -> i64 {
        parts.iter().sum::<i64>() + offset
    }
    #[task]
    fn slice_total(parts: &[&i64]) -> i64 {
        parts.iter().copied().sum()
    }
    on_each_runtime(|| {
        let parts: Vec<Task<i64>> = (1..=10).map(|i| spawn!(add(i, 0))).collect();
        assert_eq!(spawn!(total_of(&parts)).fetch().unwrap(), 55);
        assert_eq!(spawn!(owned_total(parts.as_slice(), 1)).fetch().unwrap(), 56);
        assert_eq!(spawn!(slice_total(&parts)).fetch().unwrap(), 55);
        assert_eq!(spawn!(total_of(parts)).fetch().unwrap(), 55);
        let failing = vec![spawn!(add(1, 1)), spawn!(boom_task(1))];
        assert!(matches!(spawn!(total_of(failing)).fetch(), Err(Error::Upstream { .. })));
        assert_eq!(spawn!(total_of(Vec::<Task<i64>>::new())).fetch().unwrap(), 0);
    });
}

#[test]
fn handles_keep_their_order_however_many_there_are() {
    #[task]
    fn digits(parts: &[&i64]) -> i64 {
        parts.iter().fold(0, |acc, x| acc * 10 + **x)
    }
    on_each_runtime(|| {
        // A few handles are kept in the task itself, more in a vector.
        for n in [1, 3, 4, 5, 9] {
            let parts: Vec<Task<i64>> = (1..=n).map(|i| spawn!(add(i, 0))).collect();
            let expected = (1..=n).fold(0, |acc, x| acc * 10 + x);
            assert_eq!(spawn!(digits(&parts)).fetch().unwrap(), expected, "{n} handles by reference");
            assert_eq!(spawn!(digits(parts.as_slice())).fetch().unwrap(), expected, "{n} handles from a slice");
            assert_eq!(spawn!(digits(parts)).fetch().unwrap(), expected, "{n} handles moved");
        }
    });
}

#[task]
fn boom_task(x: i64) -> i64 {
    panic!("no {x}")
}

#[test]
fn a_mutable_argument_is_the_tasks_own() {
    #[task]
    fn push_twice(v: &mut Vec<i32>) -> usize {
        v.push(1);
        v.push(2);
        v.len()
    }
    within(SHORT, || assert_eq!(spawn!(push_twice(vec![0])).fetch().unwrap(), 3));
}

#[test]
fn tasks_have_names_and_growing_ids() {
    within(SHORT, || {
        let a = spawn!(add(1, 1));
        let b = spawn!(add(&a, 1));
        assert_eq!(a.name(), "add");
        assert!(b.id() > a.id());
        assert_eq!(a.clone().id(), a.id());
        b.wait().unwrap();
        assert!(b.is_ready() && a.is_ready());
        assert!(format!("{b:?}").contains("add"));
    });
}

#[test]
fn sync_waits_for_nested_spawns() {
    on_each_runtime(|| {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        COUNT.store(0, Ordering::SeqCst);
        dirk::sync(|| {
            for _ in 0..10 {
                dirk::spawn(|| {
                    for _ in 0..10 {
                        dirk::spawn(|| {
                            dirk::sleep(Duration::from_millis(1));
                            COUNT.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                });
            }
        })
        .unwrap();
        assert_eq!(COUNT.load(Ordering::SeqCst), 100);
    });
}

#[test]
fn tasks_can_be_awaited() {
    within(SHORT, || {
        let t = spawn!(add(40, 2));
        let u = spawn!(add(&t, 1));
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (a, b) = rt.block_on(async { (t.await, u.await) });
        assert_eq!((a.unwrap(), b.unwrap()), (42, 43));
    });
}
