//! The order of datadeps tasks, from Dagger's datadeps suite. Orders are
//! read from a log of start and end events that the tasks record, never
//! from timing; "unordered" is shown by a rendezvous that needs the tasks to
//! run at the same time (it fails after a timeout if they were ordered).
//!
//! Every case runs twice: as written (ordered by the macro's compile-time
//! plan when its places are literal) and inside `if true { .. }`, which
//! makes the block ordered at run time by the trackers.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use common::{SHORT, within};
use dirk::datadeps::{MatMut, Matrix};
use dirk::prelude::*;

/// Start and end events of the tasks of one block, in the order they happened.
#[derive(Default)]
struct Log(Mutex<Vec<(u32, bool)>>);

impl Log {
    fn run<R>(&self, id: u32, f: impl FnOnce() -> R) -> R {
        self.0.lock().unwrap().push((id, true));
        // Long enough that a missing order would show as overlapping events.
        std::thread::sleep(Duration::from_millis(2));
        let r = f();
        self.0.lock().unwrap().push((id, false));
        r
    }

    fn at(&self, id: u32, start: bool) -> usize {
        let events = self.0.lock().unwrap();
        events.iter().position(|&e| e == (id, start)).unwrap_or_else(|| panic!("task {id} did not run"))
    }

    /// Whether task `a` ended before task `b` started.
    fn before(&self, a: u32, b: u32) -> bool {
        self.at(a, false) < self.at(b, true)
    }
}

/// A meeting point for `parties` tasks that must run at the same time.
struct Rendezvous {
    parties: usize,
    arrived: Mutex<usize>,
    all_here: Condvar,
    met: AtomicUsize,
}

impl Rendezvous {
    fn new(parties: usize) -> Self {
        Rendezvous { parties, arrived: Mutex::new(0), all_here: Condvar::new(), met: AtomicUsize::new(0) }
    }

    fn meet(&self) {
        let mut arrived = self.arrived.lock().unwrap();
        *arrived += 1;
        self.all_here.notify_all();
        let (_arrived, timeout) =
            self.all_here.wait_timeout_while(arrived, Duration::from_secs(3), |n| *n < self.parties).unwrap();
        if !timeout.timed_out() {
            self.met.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn all_met(&self) -> bool {
        self.met.load(Ordering::SeqCst) == self.parties
    }
}

fn read(x: &[f64], log: &Log, id: u32, meet: Option<&Rendezvous>) {
    log.run(id, || {
        std::hint::black_box(x.iter().sum::<f64>());
        if let Some(r) = meet {
            r.meet();
        }
    });
}

fn read_twice(x: &[f64], y: &[f64], log: &Log, id: u32, meet: Option<&Rendezvous>) {
    assert_eq!(x.as_ptr(), y.as_ptr());
    read(x, log, id, meet);
}

fn write(x: &mut [f64], log: &Log, id: u32) {
    log.run(id, || x.iter_mut().for_each(|v| *v += 1.0));
}

/// Runs `f` on a runtime with `threads` threads, from a thread outside it.
fn on(threads: usize, f: impl FnOnce() + Send + 'static) {
    within(SHORT, move || {
        let rt = Runtime::builder().threads(threads).build().unwrap();
        rt.enter(f);
    });
}

#[test]
fn reads_of_the_same_data_run_in_parallel() {
    for dynamic in [false, true] {
        on(2, move || {
            let x = vec![1.0; 64];
            let (log, meet) = (Log::default(), Rendezvous::new(2));
            if dynamic {
                datadeps! {
                    if true {
                        read(In(x), &log, 0, Some(&meet));
                        read(In(x), &log, 1, Some(&meet));
                    }
                }
                .unwrap();
            } else {
                datadeps! {
                    read(In(x), &log, 0, Some(&meet));
                    read(In(x), &log, 1, Some(&meet));
                }
                .unwrap();
            }
            assert!(meet.all_met(), "the two readers were ordered (dynamic: {dynamic})");
        });
    }
}

#[test]
fn a_write_waits_for_earlier_reads_and_writes_and_reads_wait_for_it() {
    for dynamic in [false, true] {
        on(4, move || {
            let mut x = vec![0.0; 64];
            let log = Log::default();
            if dynamic {
                datadeps! {
                    if true {
                        read(In(x), &log, 0, None);
                        write(InOut(x), &log, 1);
                        write(InOut(x), &log, 2);
                        read(In(x), &log, 3, None);
                    }
                }
                .unwrap();
            } else {
                datadeps! {
                    read(In(x), &log, 0, None);
                    write(InOut(x), &log, 1);
                    write(InOut(x), &log, 2);
                    read(In(x), &log, 3, None);
                }
                .unwrap();
            }
            assert!(log.before(0, 1), "read → write");
            assert!(log.before(1, 2), "write → write");
            assert!(log.before(2, 3), "write → read");
            assert!(x.iter().all(|&v| v == 2.0));
        });
    }
}

#[test]
fn the_same_argument_twice_in_one_call_is_ordered_like_one() {
    for dynamic in [false, true] {
        on(4, move || {
            let mut x = vec![0.0; 64];
            let (log, first, last) = (Log::default(), Rendezvous::new(2), Rendezvous::new(2));
            if dynamic {
                datadeps! {
                    if true {
                        read_twice(In(x), In(x), &log, 0, Some(&first));
                        read_twice(In(x), In(x), &log, 1, Some(&first));
                        write(InOut(x), &log, 2);
                        read_twice(In(x), In(x), &log, 3, Some(&last));
                        read_twice(In(x), In(x), &log, 4, Some(&last));
                    }
                }
                .unwrap();
            } else {
                datadeps! {
                    read_twice(In(x), In(x), &log, 0, Some(&first));
                    read_twice(In(x), In(x), &log, 1, Some(&first));
                    write(InOut(x), &log, 2);
                    read_twice(In(x), In(x), &log, 3, Some(&last));
                    read_twice(In(x), In(x), &log, 4, Some(&last));
                }
                .unwrap();
            }
            assert!(first.all_met() && last.all_met(), "readers of one place run together (dynamic: {dynamic})");
            for r in [0, 1] {
                assert!(log.before(r, 2));
            }
            for r in [3, 4] {
                assert!(log.before(2, r));
            }
        });
    }
}

fn touch(mut tile: MatMut<'_, f64>, log: &Log, id: u32, meet: Option<&Rendezvous>) {
    log.run(id, || {
        tile.fill(id as f64);
        if let Some(r) = meet {
            r.meet();
        }
    });
}

#[test]
fn quadrants_then_the_middle_then_quadrants() {
    // B is the whole 4×4 matrix; the quadrants are disjoint; the middle
    // 2:3×2:3 tile (rows and columns 1..3) overlaps all four.
    let check = |log: &Log, first: &Rendezvous, second: &Rendezvous| {
        for q in 1..=4 {
            assert!(log.before(0, q), "B → quadrant {q}");
            assert!(log.before(q, 5), "quadrant {q} → middle");
            assert!(log.before(5, q + 5), "middle → quadrant {q}");
        }
        assert!(first.all_met() && second.all_met(), "the quadrants ran at the same time");
    };
    on(4, move || {
        let mut m = Matrix::filled(4, 4, 0.0);
        let (log, first, second) = (Log::default(), Rendezvous::new(4), Rendezvous::new(4));
        datadeps! {
            touch(InOut(m[(.., ..)]), &log, 0, None);
            touch(InOut(m[(0..2, 0..2)]), &log, 1, Some(&first));
            touch(InOut(m[(0..2, 2..4)]), &log, 2, Some(&first));
            touch(InOut(m[(2..4, 0..2)]), &log, 3, Some(&first));
            touch(InOut(m[(2..4, 2..4)]), &log, 4, Some(&first));
            touch(InOut(m[(1..3, 1..3)]), &log, 5, None);
            touch(InOut(m[(0..2, 0..2)]), &log, 6, Some(&second));
            touch(InOut(m[(0..2, 2..4)]), &log, 7, Some(&second));
            touch(InOut(m[(2..4, 0..2)]), &log, 8, Some(&second));
            touch(InOut(m[(2..4, 2..4)]), &log, 9, Some(&second));
        }
        .unwrap();
        check(&log, &first, &second);
        assert_eq!(m[(1, 1)], 6.0);
        assert_eq!(m[(2, 2)], 9.0);
    });
    on(4, move || {
        let mut m = Matrix::filled(4, 4, 0.0);
        let (log, first, second) = (Log::default(), Rendezvous::new(4), Rendezvous::new(4));
        let quadrants = [(0..2, 0..2), (0..2, 2..4), (2..4, 0..2), (2..4, 2..4)];
        datadeps! {
            touch(InOut(m[(0..4, 0..4)]), &log, 0, None);
            for (q, (r, c)) in quadrants.iter().cloned().enumerate() {
                touch(InOut(m[(r, c)]), &log, q as u32 + 1, Some(&first));
            }
            let mid = 1..3;
            touch(InOut(m[(mid.clone(), mid)]), &log, 5, None);
            for (q, (r, c)) in quadrants.iter().cloned().enumerate() {
                touch(InOut(m[(r, c)]), &log, q as u32 + 6, Some(&second));
            }
        }
        .unwrap();
        check(&log, &first, &second);
    });
}

#[test]
fn rows_and_columns_alias_exactly_when_they_intersect() {
    on(2, || {
        let mut m = Matrix::filled(4, 4, 0.0);
        // Part of row i (columns c) and part of column j (rows r).
        let rows = [(0, 0..4), (1, 0..2), (2, 2..4)];
        let cols = [(0..4, 1), (0..2, 3), (2..4, 0)];
        for (i, c) in rows.iter().cloned() {
            for (r, j) in cols.iter().cloned() {
                let intersect = r.contains(&i) && c.contains(&j);
                let (log, meet) = (Log::default(), Rendezvous::new(2));
                let meet = (!intersect).then_some(&meet);
                datadeps! {
                    touch(InOut(m[(i, c.clone())]), &log, 0, meet);
                    touch(InOut(m[(r.clone(), j)]), &log, 1, meet);
                }
                .unwrap();
                match meet {
                    Some(meet) => assert!(meet.all_met(), "row {i} {c:?} and column {j} {r:?} were ordered"),
                    None => assert!(log.before(0, 1), "row {i} {c:?} and column {j} {r:?} were not ordered"),
                }
            }
        }
    });
    // The same, with literal indexes ordered at compile time.
    on(2, || {
        let mut m = Matrix::filled(4, 4, 0.0);
        let (log, meet) = (Log::default(), Rendezvous::new(2));
        datadeps! {
            touch(InOut(m[(1, 0..2)]), &log, 0, None);
            touch(InOut(m[(0..4, 1)]), &log, 1, None);
            touch(InOut(m[(0, 2..4)]), &log, 2, Some(&meet));
            touch(InOut(m[(2..4, 3)]), &log, 3, Some(&meet));
        }
        .unwrap();
        assert!(log.before(0, 1));
        assert!(meet.all_met());
    });
}

#[test]
fn two_overlapping_halves_each_set_to_one_give_all_ones() {
    fn ones(x: &mut [i32], log: &Log, id: u32) {
        log.run(id, || x.fill(1));
    }
    for dynamic in [false, true] {
        on(2, move || {
            let mut v = vec![0; 10];
            let log = Log::default();
            if dynamic {
                let (a, b) = (6, 4);
                datadeps! {
                    ones(Out(v[..a]), &log, 0);
                    ones(Out(v[b..]), &log, 1);
                }
                .unwrap();
            } else {
                datadeps! {
                    ones(Out(v[..6]), &log, 0);
                    ones(Out(v[4..]), &log, 1);
                }
                .unwrap();
            }
            assert_eq!(v, [1; 10]);
            assert!(log.before(0, 1), "the halves overlap in 4..6");
        });
    }
}

#[test]
fn sums_through_shared_vectors_follow_program_order() {
    fn add_into(to: &mut [f64], from: &[f64]) {
        std::thread::sleep(Duration::from_millis(1));
        to.iter_mut().zip(from).for_each(|(t, f)| *t += f);
    }
    fn copy(to: &mut [f64], from: &[f64]) {
        to.copy_from_slice(from);
    }
    for dynamic in [false, true] {
        on(4, move || {
            let n = 100;
            let a0: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let b0: Vec<f64> = (0..n).map(|i| (i * i % 7) as f64).collect();
            let c0: Vec<f64> = (0..n).map(|i| 1.0 / (i + 1) as f64).collect();
            let (a, mut b, mut c, mut d) = (a0.clone(), b0.clone(), c0.clone(), vec![0.0; n]);
            if dynamic {
                datadeps! {
                    if true {
                        add_into(InOut(b), In(a));
                        add_into(InOut(c), In(a));
                        add_into(InOut(c), In(b));
                        copy(Out(d), In(c));
                    }
                }
                .unwrap();
            } else {
                datadeps! {
                    add_into(InOut(b), In(a));
                    add_into(InOut(c), In(a));
                    add_into(InOut(c), In(b));
                    copy(Out(d), In(c));
                }
                .unwrap();
            }
            for i in 0..n {
                let expected = (a0[i] + b0[i]) + (a0[i] + c0[i]);
                assert!((c[i] - expected).abs() < 1e-12, "C[{i}] = {} not {expected}", c[i]);
                assert_eq!(d[i], c[i]);
            }
        });
    }
}
