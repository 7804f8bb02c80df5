//! Streaming graph shapes (Dagger's streaming suite): chains, fan-out,
//! fan-in, diamond, hourglass, element types, `max_evals`, buffer sizes,
//! delay loops, and a million elements through fan-out and fan-in. Each
//! runs on a one-thread runtime and on one with a thread per core.

#[macro_use]
mod common;

use std::sync::{Arc, Mutex};

use dirk::prelude::*;

/// A deterministic source of numbers in [0, 1).
struct Rand(u64);

impl Rand {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

type Log<T> = Arc<Mutex<Vec<T>>>;

fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::new()))
}

fn record<T: Clone>(log: &Log<T>, v: &T) {
    log.lock().unwrap().push(v.clone());
}

fn taken<T: Clone>(log: &Log<T>) -> Vec<T> {
    log.lock().unwrap().clone()
}

fn in_range(values: &[f64], lo: f64, hi: f64) -> bool {
    values.iter().all(|v| (lo..=hi).contains(v))
}

#[derive(Clone, Debug, PartialEq)]
struct Reading {
    sensor: u32,
    value: f64,
    tag: String,
}

on_each_runtime! {
    fn x_to_a() {
        let (mut rng, a) = (Rand(7), log::<f64>());
        let a2 = a.clone();
        let out = streaming! {
            #![dirk(max_evals = 10)]
            let x = rng.next();
            record(&a2, &x);
        };
        out.wait().unwrap();
        let got = taken(&a);
        assert_eq!(got.len(), 10);
        assert!(in_range(&got, 0.0, 1.0), "{got:?}");
    }

    fn chain() {
        let (mut rng, a) = (Rand(11), log::<f64>());
        let a2 = a.clone();
        let out = streaming! {
            #![dirk(max_evals = 10)]
            let x = rng.next();
            let y = x + 1.0;
            record(&a2, &y);
        };
        out.wait().unwrap();
        let got = taken(&a);
        assert_eq!(got.len(), 10);
        assert!(in_range(&got, 1.0, 2.0), "{got:?}");
    }

    fn fan_out() {
        let (mut rng, a, b) = (Rand(13), log::<f64>(), log::<f64>());
        let (a2, b2) = (a.clone(), b.clone());
        let out = streaming! {
            #![dirk(max_evals = 10)]
            let x = rng.next();
            let y = x + 1.0;
            record(&a2, &x);
            record(&b2, &y);
        };
        out.wait().unwrap();
        let (xs, ys) = (taken(&a), taken(&b));
        assert_eq!((xs.len(), ys.len()), (10, 10));
        assert!(in_range(&xs, 0.0, 1.0) && in_range(&ys, 1.0, 2.0));
        for (x, y) in xs.iter().zip(&ys) {
            assert_eq!(x + 1.0, *y, "both branches saw the same element");
        }
    }

    fn fan_in() {
        let (mut r1, mut r2, a) = (Rand(17), Rand(19), log::<f64>());
        let a2 = a.clone();
        let out = streaming! {
            #![dirk(max_evals = 10)]
            let x = r1.next();
            let y = r2.next();
            record(&a2, &(x + y));
        };
        out.wait().unwrap();
        let got = taken(&a);
        assert_eq!(got.len(), 10);
        assert!(in_range(&got, 0.0, 2.0), "{got:?}");
    }

    fn fan_in_then_chain() {
        let (mut r1, mut r2) = (Rand(23), Rand(29));
        let out = streaming! {
            #![dirk(max_evals = 10)]
            let x = r1.next();
            let y = r2.next();
            let z = x + y;
            z
        };
        let got: Vec<f64> = out.iter().collect();
        out.wait().unwrap();
        assert_eq!(got.len(), 10);
        assert!(in_range(&got, 0.0, 2.0), "{got:?}");
    }

    fn diamond() {
        let mut rng = Rand(31);
        let out = streaming! {
            #![dirk(max_evals = 10)]
            let x = rng.next();
            let a = x + 1.0;
            let b = x + 2.0;
            a + b
        };
        let got: Vec<f64> = out.iter().collect();
        out.wait().unwrap();
        assert_eq!(got.len(), 10);
        assert!(in_range(&got, 3.0, 5.0), "{got:?}");
    }

    fn hourglass() {
        let (mut r1, mut r2, a, b) = (Rand(37), Rand(41), log::<f64>(), log::<f64>());
        let (a2, b2) = (a.clone(), b.clone());
        let out = streaming! {
            #![dirk(max_evals = 10)]
            let x = r1.next();
            let y = r2.next();
            let z = x + y;
            record(&a2, &z);
            record(&b2, &z);
        };
        out.wait().unwrap();
        let (za, zb) = (taken(&a), taken(&b));
        assert_eq!(za.len(), 10);
        assert_eq!(za, zb, "both consumers of z saw the same elements");
        assert!(in_range(&za, 0.0, 2.0));
    }

    fn element_types() {
        let mut n = 0i32;
        let out = streaming! {
            #![dirk(max_evals = 5)]
            let i = { n += 1; n };
            let f = f64::from(i) / 2.0;
            let s = format!("#{i}");
            let v = vec![f; i as usize];
            let r = Reading { sensor: i as u32, value: f, tag: s.clone() };
            (i, s, v, r)
        };
        let got: Vec<_> = out.iter().collect();
        out.wait().unwrap();
        assert_eq!(got.len(), 5);
        for (k, (i, s, v, r)) in got.into_iter().enumerate() {
            let i_want = k as i32 + 1;
            assert_eq!(i, i_want);
            assert_eq!(s, format!("#{i_want}"));
            assert_eq!(v, vec![f64::from(i_want) / 2.0; i_want as usize]);
            assert_eq!(r, Reading { sensor: i_want as u32, value: f64::from(i_want) / 2.0, tag: s });
        }
    }

    fn max_evals_counts_exactly() {
        for cap in [1u64, 100] {
            let mut n = 0u64;
            let out = streaming! {
                #![dirk(max_evals = cap)]
                let x = { n += 1; n };
                x
            };
            let got: Vec<u64> = out.iter().collect();
            out.wait().unwrap();
            assert_eq!(got, (1..=cap).collect::<Vec<_>>());
            let stats = out.stats();
            assert_eq!(stats.stage("x").unwrap().elements, cap);
        }
    }

    fn buffer_sizes_do_not_change_results() {
        fn run(buffer: usize) -> Vec<(u64, u64)> {
            let mut n = 0u64;
            let out = streaming! {
                #![dirk(max_evals = 500)]
                #[dirk(buffer = buffer)] let x = { n += 1; n };
                #[dirk(buffer = buffer)] let a = x * 3;
                #[dirk(buffer = buffer)] let b = x ^ 0x55;
                #[dirk(buffer = buffer)] let s = a + delay(s, 0);
                (s, b)
            };
            let got = out.iter().collect();
            out.wait().unwrap();
            got
        }
        let reference = run(1);
        assert_eq!(reference.len(), 500);
        assert_eq!(reference[499].0, 3 * 500 * 501 / 2);
        for buffer in [2, 64, 1024] {
            assert_eq!(run(buffer), reference, "buffer = {buffer}");
        }
    }

    fn delay_loop_computes_a_running_sum() {
        let mut n = 0i64;
        let out = streaming! {
            #![dirk(max_evals = 20)]
            let x = { n += 1; n };
            let sum = x + delay(sum, 0);
            sum
        };
        let got: Vec<i64> = out.iter().collect();
        out.wait().unwrap();
        let want: Vec<i64> = (1..=20).map(|k| k * (k + 1) / 2).collect();
        assert_eq!(got, want);
    }

    fn a_cycle_through_two_stages_with_delay() {
        // a(k) = b(k-1) + 1, b(k) = 2 a(k): 1, 3, 7, 15, ...
        let out = streaming! {
            #![dirk(max_evals = 8)]
            let a = delay(b, 0u64) + 1;
            #[dirk(buffer = 1)] let b = 2 * a;
            a
        };
        let got: Vec<u64> = out.iter().collect();
        out.wait().unwrap();
        assert_eq!(got, [1, 3, 7, 15, 31, 63, 127, 255]);
    }

    fn a_million_elements_through_fan_out_and_fan_in() {
        const N: u64 = 1_000_000;
        let mut n = 0u64;
        let out = streaming! {
            let x = { n += 1; (n <= N).then_some(n) }?;
            let a = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let b = x;
            (a, b)
        };
        let (mut count, mut checksum) = (0u64, 0u64);
        for (a, b) in &out {
            assert_eq!(a, b.wrapping_mul(0x9E37_79B9_7F4A_7C15), "a and b of one element travel together");
            count += 1;
            checksum = checksum.wrapping_add(a ^ b.rotate_left(17));
        }
        out.wait().unwrap();
        let want = (1..=N).fold(0u64, |c, x| c.wrapping_add(x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ x.rotate_left(17)));
        assert_eq!(count, N, "no element lost or duplicated");
        assert_eq!(checksum, want);
    }
}

#[test]
fn a_whole_pipeline_runs_inside_a_task_on_one_thread() {
    common::within(common::SHORT, || {
        let rt = Runtime::builder().threads(1).build().unwrap();
        let got: Vec<u64> = rt.run(|| {
            let mut n = 0u64;
            let out = streaming! {
                let x = { n += 1; (n <= 3000).then_some(n) }?;
                #[dirk(buffer = 2)] let y = x * 2;
                let z = y + 1;
                z
            };
            let got = out.iter().collect();
            out.wait().unwrap();
            got
        });
        assert_eq!(got, (1..=3000).map(|x| 2 * x + 1).collect::<Vec<_>>());
    });
}
