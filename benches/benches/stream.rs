//! Streaming: dirk against bare rtrb rings and crossbeam-channel, same
//! machine, same run.
//!
//! What each case times, and how, is [`ABOUT`] (BENCHMARKS.md shows it too).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;
use dirk::prelude::*;
use dirk_benches::harness::{
    Sample, about, ns_per, percentile, pick, report, sample, sample_of, sample_pair, target, target_ratio, time,
    time_with_cpu,
};

/// What each case of this benchmark times, and how.
const ABOUT: &str = "\
- `2-stage u64 pipeline`: a source and a sink stage pinned to two worker threads (`Scope::thread(0)` and `Scope::thread(1)`), so every element crosses a ring between cores; peers move the same `u64`s between two threads through an rtrb SPSC ring (one element at a time, and in chunks of 64 as dirk's rings publish in batches) and a crossbeam bounded channel of the same capacity. A waiting rtrb end spins, then yields its core (crossbeam's `Backoff`), as dirk's idle workers do. Wall time per element, and beside it the CPU time the whole process spent per element (every thread: a spinning end shows there).\n\
- `element latency`: a source sends one timestamp every 20 µs to a sink on the other thread, which records how long it took; p50 and p99 of each run, median over runs.\n\
- `fused 20-stage map chain`: a source, 20 map stages and a sink, which the macro fuses into one loop; the peer is the same source, maps and sink (an XOR into a local published with a plain store, as a stage that owns its state must) written as one loop by hand, the floor for any fusion. The source's elements pass through `black_box` in both, as a stream's elements arrive one at a time: the compiler cannot vectorize either loop across elements. Reported per element and per stage, timed in turns.\n\
- `throughput vs element size`: the 2-stage pipeline again with arrays of 8 to 4096 bytes as elements, as a curve (MB/s against bytes) for each system.\n\
- 2 threads; each figure the median of 7 runs (latency: 5 runs; the curve: 3) with the least and greatest.";

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
        // Stages own what they capture: the sink keeps its sum and
        // publishes it with a plain store for the check after the run.
        let seen = Arc::new(AtomicU64::new(0));
        let last = seen.clone();
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

/// rtrb, one element at a time; an end that must wait spins, then yields
/// its core (crossbeam's `Backoff`), as dirk's workers do before they park.
fn rtrb_pipeline(n: u64) -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAPACITY);
    time(|| {
        let producer = std::thread::spawn(move || {
            let backoff = Backoff::new();
            for i in 1..=n {
                let mut v = i;
                while let Err(rtrb::PushError::Full(back)) = tx.push(v) {
                    v = back;
                    backoff.snooze();
                }
                backoff.reset();
            }
        });
        let (mut sum, mut got) = (0u64, 0);
        let backoff = Backoff::new();
        while got < n {
            match rx.pop() {
                Ok(v) => {
                    sum = sum.wrapping_add(v);
                    got += 1;
                    backoff.reset();
                }
                Err(_) => backoff.snooze(),
            }
        }
        producer.join().unwrap();
        assert_eq!(black_box(sum), n * (n + 1) / 2);
    })
}

/// rtrb through its chunk API, up to `CHUNK` elements at a time (as
/// dirk's rings publish in batches), waiting as [`rtrb_pipeline`] does.
fn rtrb_chunked_pipeline(n: u64) -> Duration {
    const CHUNK: usize = 64;
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAPACITY);
    time(|| {
        let producer = std::thread::spawn(move || {
            let backoff = Backoff::new();
            let mut next = 1u64;
            while next <= n {
                let want = (n - next + 1).min(CHUNK as u64) as usize;
                let Ok(chunk) = tx.write_chunk_uninit(tx.slots().min(want).max(1)) else {
                    backoff.snooze();
                    continue;
                };
                backoff.reset();
                let len = chunk.len() as u64;
                let written = chunk.fill_from_iter(next..next + len);
                next += written as u64;
            }
        });
        let (mut sum, mut got) = (0u64, 0u64);
        let backoff = Backoff::new();
        while got < n {
            let Ok(chunk) = rx.read_chunk(rx.slots().clamp(1, CHUNK)) else {
                backoff.snooze();
                continue;
            };
            backoff.reset();
            for v in chunk {
                sum = sum.wrapping_add(v);
                got += 1;
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
        let seen = Arc::new(AtomicU64::new(0));
        let last = seen.clone();
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
            let backoff = Backoff::new();
            for i in 1..=n {
                let mut v = Block::<N>::new(i);
                while let Err(rtrb::PushError::Full(back)) = tx.push(v) {
                    v = back;
                    backoff.snooze();
                }
                backoff.reset();
            }
        });
        let (mut sum, mut got) = (0u64, 0);
        let backoff = Backoff::new();
        while got < n {
            match rx.pop() {
                Ok(v) => {
                    sum = sum.wrapping_add(v.seq());
                    got += 1;
                    backoff.reset();
                }
                Err(_) => backoff.snooze(),
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
        ("rtrb SPSC ring, per element", &|| rtrb_blocks::<N>(n)),
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
        let seen = Arc::new(AtomicU64::new(0));
        let last = seen.clone();
        let mut next = 0u64;
        let mut acc = 0u64;
        let d = time(|| {
            let out = streaming! {
                let x = { next += 1; (next <= n).then(|| black_box(next)) }?;
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
                let sink = { acc ^= s20; seen.store(acc, Ordering::Relaxed) };
            };
            out.wait().expect("the chain runs");
        });
        (d, last.load(Ordering::Relaxed))
    })
}

/// The same source, 20 maps and sink (an XOR into a local, published with
/// a plain store) written as one loop by hand: the floor for any fusion.
fn hand_chain(n: u64) -> (Duration, u64) {
    let seen = AtomicU64::new(0);
    let d = time(|| {
        let (mut next, mut acc) = (0u64, 0u64);
        while let Some(x) = {
            next += 1;
            (next <= n).then(|| black_box(next))
        } {
            let mut v = x;
            for k in 1..=20 {
                v = step(v, k);
            }
            acc ^= v;
            seen.store(acc, Ordering::Relaxed);
        }
        // Observed inside the timer, so the loop cannot be moved past it.
        black_box(seen.load(Ordering::Relaxed));
    });
    (d, seen.load(Ordering::Relaxed))
}

/// One element's trip from a source stage on one thread to a sink stage on
/// another, the source sending one element every `GAP` (so no queue
/// builds up): what a stream adds to an event's latency.
const GAP: Duration = Duration::from_micros(20);

/// Waits until `at`, spinning (the source's pace, the same for every system).
fn pace(at: Instant) {
    while Instant::now() < at {
        std::hint::spin_loop();
    }
}

fn dirk_latency(rt: &Runtime, n: usize) -> Vec<f64> {
    rt.enter(|| {
        let mut sent = 0usize;
        let mut next_at = Instant::now();
        // The sink writes each latency into the next slot (stages own what
        // they capture, so the slots are shared and read after the run).
        let slots: Arc<[AtomicU64]> = (0..n).map(|_| AtomicU64::new(0)).collect();
        let written = slots.clone();
        let mut k = 0usize;
        let out = streaming! {
            #[dirk(scope = Scope::thread(0))]
            let x = {
                sent += 1;
                next_at += GAP;
                pace(next_at);
                (sent <= n).then(Instant::now)
            }?;
            #[dirk(scope = Scope::thread(1))]
            let sink = { written[k].store(x.elapsed().as_nanos() as u64, Ordering::Relaxed); k += 1 };
        };
        out.wait().expect("the pipeline runs");
        slots.iter().map(|ns| ns.load(Ordering::Relaxed) as f64).collect()
    })
}

fn rtrb_latency(n: usize) -> Vec<f64> {
    let (mut tx, mut rx) = rtrb::RingBuffer::<Instant>::new(CAPACITY);
    let producer = std::thread::spawn(move || {
        let mut next_at = Instant::now();
        for _ in 0..n {
            next_at += GAP;
            pace(next_at);
            tx.push(Instant::now()).expect("the ring never fills at this pace");
        }
    });
    let mut seen = Vec::with_capacity(n);
    let backoff = Backoff::new();
    while seen.len() < n {
        match rx.pop() {
            Ok(at) => {
                seen.push(at.elapsed().as_nanos() as f64);
                backoff.reset();
            }
            Err(_) => backoff.snooze(),
        }
    }
    producer.join().unwrap();
    seen
}

fn crossbeam_latency(n: usize) -> Vec<f64> {
    let (tx, rx) = crossbeam_channel::bounded::<Instant>(CAPACITY);
    let producer = std::thread::spawn(move || {
        let mut next_at = Instant::now();
        for _ in 0..n {
            next_at += GAP;
            pace(next_at);
            tx.send(Instant::now()).unwrap();
        }
    });
    let seen = rx.iter().map(|at| at.elapsed().as_nanos() as f64).collect();
    producer.join().unwrap();
    seen
}

fn main() {
    about("stream", ABOUT);
    let runs = pick(7, 3);
    let rt = Runtime::builder().threads(2).build().expect("dirk runtime");
    eprintln!("stream: 2 threads, median of {runs} runs");

    let n = pick(10_000_000u64, 1_000_000);
    let case = format!("2-stage u64 pipeline, {}M elements", n / 1_000_000);
    let pipelines: [(&str, &dyn Fn() -> Duration); 4] = [
        ("dirk", &|| dirk_pipeline(&rt, n)),
        ("rtrb SPSC ring, per element", &|| rtrb_pipeline(n)),
        ("rtrb SPSC ring, chunks of 64", &|| rtrb_chunked_pipeline(n)),
        ("crossbeam-channel bounded", &|| crossbeam_pipeline(n)),
    ];
    for (system, run) in pipelines {
        let mut cpu = Vec::new();
        let wall = sample(runs, || {
            let (wall, used) = time_with_cpu(|| {
                run();
            });
            cpu.push(ns_per(used, n as usize));
            ns_per(wall, n as usize)
        });
        report_both(&case, system, wall, "ns/element", 1.0);
        report("stream", &format!("{case}, CPU time"), system, sample_of(cpu), "ns/element", true);
    }
    target(
        "stream",
        &case,
        "dirk",
        10.0,
        "a 2-stage u64 pipeline across two threads at most 10 ns per element (issue 3)",
    );
    target_ratio(
        "stream",
        &case,
        "dirk",
        "rtrb SPSC ring, chunks of 64",
        2.0,
        "within 2x of a bare rtrb SPSC ring moving chunks (issue 3)",
    );

    let l = pick(50_000usize, 5_000);
    let case = format!("element latency, one every {} µs", GAP.as_micros());
    let latencies: [(&str, &dyn Fn() -> Vec<f64>); 3] = [
        ("dirk", &|| dirk_latency(&rt, l)),
        ("rtrb SPSC ring, per element", &|| rtrb_latency(l)),
        ("crossbeam-channel bounded", &|| crossbeam_latency(l)),
    ];
    for (system, run) in latencies {
        let (mut p50, mut p99) = (Vec::new(), Vec::new());
        for _ in 0..pick(5, 2) {
            let mut seen = run();
            assert_eq!(seen.len(), l, "every element arrives");
            seen.sort_by(f64::total_cmp);
            p50.push(percentile(&seen, 50.0));
            p99.push(percentile(&seen, 99.0));
        }
        report("stream", &format!("{case}, p50"), system, sample_of(p50), "ns", true);
        report("stream", &format!("{case}, p99"), system, sample_of(p99), "ns", true);
    }

    let m = pick(5_000_000u64, 500_000);
    let case = format!("fused 20-stage map chain, {}M elements", m / 1_000_000);
    let (_, want) = hand_chain(m);
    let (dirk, hand) = sample_pair(
        runs,
        || {
            let (d, got) = dirk_chain(&rt, m);
            assert_eq!(got, want, "the chain computes what the hand-written loop does");
            ns_per(d, m as usize * 20)
        },
        || ns_per(hand_chain(m).0, m as usize * 20),
    );
    report_both(&case, "dirk", dirk, "ns/element/stage", 20.0);
    report_both(&case, "hand-written loop", hand, "ns/element/stage", 20.0);
    target("stream", &case, "dirk", 3.0, "a fused 20-stage map chain at most 3 ns per element per stage (issue 3)");
    target_ratio(
        "stream",
        &case,
        "dirk",
        "hand-written loop",
        1.5,
        "a fused 20-stage chain at most 1.5x the same loop written by hand, same sink work (issue 21)",
    );

    let curve_runs = pick(3, 1);
    element_size::<8>(&rt, curve_runs);
    element_size::<64>(&rt, curve_runs);
    element_size::<512>(&rt, curve_runs);
    element_size::<4096>(&rt, curve_runs);
}
