//! Streaming throughput: dirk against a bare rtrb ring and crossbeam-channel,
//! same machine, same run.
//!
//! - `2-stage u64 pipeline`: a source and a sink stage pinned to two worker
//!   threads (`Scope::thread(0)` and `Scope::thread(1)`), so every element
//!   crosses a ring between cores; peers move the same `u64`s between two
//!   threads through an rtrb SPSC ring and a crossbeam bounded channel of
//!   the same capacity, one element at a time, spinning when full or empty.
//! - `fused 20-stage map chain`: a source, 20 map stages and a sink, which
//!   the macro fuses into one loop; the peer is the same 20 maps written as
//!   one hand-made loop (the floor for any fusion). Reported per element and
//!   per stage.
//!
//! - `throughput vs element size`: the 2-stage pipeline again with arrays
//!   of 8 to 4096 bytes as elements, as a curve (MB/s against bytes) for
//!   each system.
//!
//! Each case reports ns/element and elements/s, and declares issue 3's
//! targets (`cargo xtask bench` lists whether they are met).

#[path = "harness/mod.rs"]
mod harness;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dirk::prelude::*;
use harness::{Sample, ns_per, pick, report, sample, target, target_ratio, time};

const CAPACITY: usize = 1024;

/// Millions of elements per second from nanoseconds per `per` units, with
/// `units` units per element.
fn rate(ns: Sample, units: f64) -> Sample {
    let m = |v: f64| 1e3 / (v * units);
    Sample { median: m(ns.median), min: m(ns.max), max: m(ns.min) }
}

fn report_both(case: &str, system: &str, ns: Sample, unit: &str, units: f64) {
    report("stream", case, system, ns, unit, true);
    report("stream", &format!("{case}, rate"), system, rate(ns, units), "M elements/s", false);
}

fn dirk_pipeline(rt: &Runtime, n: u64) -> Duration {
    rt.enter(|| {
        let last = Arc::new(AtomicU64::new(0));
        let seen = last.clone();
        let mut next = 0u64;
        let mut sum = 0u64;
        let d = time(|| {
            let out = streaming! {
                #[dirk(scope = Scope::thread(0), buffer = CAPACITY)]
                let x = { next += 1; (next <= n).then_some(next) }?;
                #[dirk(scope = Scope::thread(1))]
                let total = { sum = sum.wrapping_add(x); seen.store(sum, Ordering::Relaxed) };
            };
            out.wait().expect("the pipeline runs");
        });
        assert_eq!(last.load(Ordering::Relaxed), n * (n + 1) / 2);
        d
    })
}

fn rtrb_pipeline(n: u64) -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAPACITY);
    time(|| {
        let producer = std::thread::spawn(move || {
            for i in 1..=n {
                let mut v = i;
                loop {
                    match tx.push(v) {
                        Ok(()) => break,
                        Err(rtrb::PushError::Full(back)) => {
                            v = back;
                            std::hint::spin_loop();
                        }
                    }
                }
            }
        });
        let mut sum = 0u64;
        let mut got = 0;
        while got < n {
            match rx.pop() {
                Ok(v) => {
                    sum = sum.wrapping_add(v);
                    got += 1;
                }
                Err(_) => std::hint::spin_loop(),
            }
        }
        producer.join().unwrap();
        assert_eq!(black_box(sum), n * (n + 1) / 2);
    })
}

fn crossbeam_pipeline(n: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(CAPACITY);
    time(|| {
        let producer = std::thread::spawn(move || {
            for i in 1..=n {
                tx.send(i).unwrap();
            }
        });
        let sum = rx.iter().fold(0u64, u64::wrapping_add);
        producer.join().unwrap();
        assert_eq!(black_box(sum), n * (n + 1) / 2);
    })
}

/// An element of `N` bytes whose first word carries the sequence number.
#[derive(Clone, Copy)]
struct Block<const N: usize>([u8; N]);

impl<const N: usize> Block<N> {
    fn new(i: u64) -> Self {
        let mut b = [0u8; N];
        b[..8].copy_from_slice(&i.to_le_bytes());
        Block(b)
    }

    fn seq(&self) -> u64 {
        u64::from_le_bytes(self.0[..8].try_into().expect("eight bytes"))
    }
}

fn dirk_blocks<const N: usize>(rt: &Runtime, n: u64) -> Duration {
    rt.enter(|| {
        let last = Arc::new(AtomicU64::new(0));
        let seen = last.clone();
        let mut next = 0u64;
        let mut sum = 0u64;
        let d = time(|| {
            let out = streaming! {
                #[dirk(scope = Scope::thread(0))]
                let x = { next += 1; (next <= n).then(|| Block::<N>::new(next)) }?;
                #[dirk(scope = Scope::thread(1))]
                let total = { sum = sum.wrapping_add(x.seq()); seen.store(sum, Ordering::Relaxed) };
            };
            out.wait().expect("the pipeline runs");
        });
        assert_eq!(last.load(Ordering::Relaxed), n * (n + 1) / 2);
        d
    })
}

fn rtrb_blocks<const N: usize>(n: u64) -> Duration {
    let capacity = (64 << 10) / N.max(8);
    let (mut tx, mut rx) = rtrb::RingBuffer::<Block<N>>::new(capacity.clamp(4, CAPACITY));
    time(|| {
        let producer = std::thread::spawn(move || {
            for i in 1..=n {
                let mut v = Block::<N>::new(i);
                loop {
                    match tx.push(v) {
                        Ok(()) => break,
                        Err(rtrb::PushError::Full(back)) => {
                            v = back;
                            std::hint::spin_loop();
                        }
                    }
                }
            }
        });
        let (mut sum, mut got) = (0u64, 0);
        while got < n {
            match rx.pop() {
                Ok(v) => {
                    sum = sum.wrapping_add(v.seq());
                    got += 1;
                }
                Err(_) => std::hint::spin_loop(),
            }
        }
        producer.join().unwrap();
        assert_eq!(black_box(sum), n * (n + 1) / 2);
    })
}

fn crossbeam_blocks<const N: usize>(n: u64) -> Duration {
    let capacity = (64 << 10) / N.max(8);
    let (tx, rx) = crossbeam_channel::bounded::<Block<N>>(capacity.clamp(4, CAPACITY));
    time(|| {
        let producer = std::thread::spawn(move || {
            for i in 1..=n {
                tx.send(Block::<N>::new(i)).unwrap();
            }
        });
        let sum = rx.iter().fold(0u64, |s, b| s.wrapping_add(b.seq()));
        producer.join().unwrap();
        assert_eq!(black_box(sum), n * (n + 1) / 2);
    })
}

/// One point per system of the throughput curve for `N`-byte elements.
fn element_size<const N: usize>(rt: &Runtime, runs: usize) {
    let n = pick(64 << 20, 8 << 20) as u64 / N as u64;
    let systems: [(&str, &dyn Fn() -> Duration); 3] = [
        ("dirk", &|| dirk_blocks::<N>(rt, n)),
        ("rtrb SPSC ring", &|| rtrb_blocks::<N>(n)),
        ("crossbeam-channel bounded", &|| crossbeam_blocks::<N>(n)),
    ];
    for (system, run) in systems {
        let s = sample(runs, || ns_per(run(), n as usize));
        let mb_per_s = N as f64 * 1e3 / s.median;
        println!(
            "@curve {{\"plot\":\"stream throughput vs element size (MB/s, bytes)\",\"system\":{system:?},\"x\":{N},\"y\":{mb_per_s}}}"
        );
        eprintln!("  stream       {N:>5}-byte elements                        {system:<26} {mb_per_s:>9.0} MB/s");
    }
}

#[inline(always)]
fn step(x: u64, k: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(7) ^ k
}

fn dirk_chain(rt: &Runtime, n: u64) -> (Duration, u64) {
    rt.enter(|| {
        let last = Arc::new(AtomicU64::new(0));
        let seen = last.clone();
        let mut next = 0u64;
        let d = time(|| {
            let out = streaming! {
                let x = { next += 1; (next <= n).then_some(next) }?;
                let s1 = step(x, 1);
                let s2 = step(s1, 2);
                let s3 = step(s2, 3);
                let s4 = step(s3, 4);
                let s5 = step(s4, 5);
                let s6 = step(s5, 6);
                let s7 = step(s6, 7);
                let s8 = step(s7, 8);
                let s9 = step(s8, 9);
                let s10 = step(s9, 10);
                let s11 = step(s10, 11);
                let s12 = step(s11, 12);
                let s13 = step(s12, 13);
                let s14 = step(s13, 14);
                let s15 = step(s14, 15);
                let s16 = step(s15, 16);
                let s17 = step(s16, 17);
                let s18 = step(s17, 18);
                let s19 = step(s18, 19);
                let s20 = step(s19, 20);
                seen.fetch_xor(s20, Ordering::Relaxed);
            };
            out.wait().expect("the chain runs");
        });
        (d, last.load(Ordering::Relaxed))
    })
}

fn hand_chain(n: u64) -> (Duration, u64) {
    let mut acc = 0u64;
    let d = time(|| {
        for x in 1..=black_box(n) {
            let mut v = x;
            for k in 1..=20 {
                v = step(v, k);
            }
            acc ^= v;
        }
    });
    (d, black_box(acc))
}

fn main() {
    let runs = pick(7, 3);
    let rt = Runtime::builder().threads(2).build().expect("dirk runtime");
    eprintln!("stream: 2 threads, median of {runs} runs");

    let n = pick(10_000_000u64, 1_000_000);
    let case = format!("2-stage u64 pipeline, {}M elements", n / 1_000_000);
    let s = sample(runs, || ns_per(dirk_pipeline(&rt, n), n as usize));
    report_both(&case, "dirk", s, "ns/element", 1.0);
    let s = sample(runs, || ns_per(rtrb_pipeline(n), n as usize));
    report_both(&case, "rtrb SPSC ring", s, "ns/element", 1.0);
    let s = sample(runs, || ns_per(crossbeam_pipeline(n), n as usize));
    report_both(&case, "crossbeam-channel bounded", s, "ns/element", 1.0);
    target(
        "stream",
        &case,
        "dirk",
        10.0,
        "a 2-stage u64 pipeline across two threads at most 10 ns per element (issue 3)",
    );
    target_ratio("stream", &case, "dirk", "rtrb SPSC ring", 2.0, "within 2x of a bare rtrb SPSC ring (issue 3)");

    let m = pick(5_000_000u64, 500_000);
    let case = format!("fused 20-stage map chain, {}M elements", m / 1_000_000);
    let (_, want) = hand_chain(m);
    let s = sample(runs, || {
        let (d, got) = dirk_chain(&rt, m);
        assert_eq!(got, want, "the chain computes what the hand-written loop does");
        ns_per(d, m as usize * 20)
    });
    report_both(&case, "dirk", s, "ns/element/stage", 20.0);
    let s = sample(runs, || ns_per(hand_chain(m).0, m as usize * 20));
    report_both(&case, "hand-written loop", s, "ns/element/stage", 20.0);
    target("stream", &case, "dirk", 3.0, "a fused 20-stage map chain at most 3 ns per element per stage (issue 3)");

    let curve_runs = pick(3, 1);
    element_size::<8>(&rt, curve_runs);
    element_size::<64>(&rt, curve_runs);
    element_size::<512>(&rt, curve_runs);
    element_size::<4096>(&rt, curve_runs);
}
