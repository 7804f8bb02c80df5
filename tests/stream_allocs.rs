//! Steady state allocates nothing: with the counting allocator installed
//! in this test binary, a pipeline of `Copy` elements and one that recycles
//! its buffers through a `delay` edge make zero allocations over 100k
//! elements after warm-up, on one thread and on all threads; and
//! `#![dirk(report_allocs)]` reports what each stage allocates.
//!
//! The allocation count is process-wide, so everything runs in one test,
//! one case after another: tests running beside it would be counted too.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dirk::prelude::*;

#[global_allocator]
static ALLOC: dirk::alloc::Counting = dirk::alloc::Counting;

const WARM_UP: u64 = 20_000;
const MEASURED: u64 = 100_000;

/// Records the process's allocation count when the source reaches the end
/// of the warm-up and again after the measured elements.
struct Window {
    start: AtomicU64,
    end: AtomicU64,
}

impl Window {
    fn new() -> Arc<Window> {
        Arc::new(Window { start: AtomicU64::new(0), end: AtomicU64::new(0) })
    }

    fn mark(&self, n: u64) {
        if n == WARM_UP {
            self.start.store(dirk::alloc::allocations(), Ordering::SeqCst);
        } else if n == WARM_UP + MEASURED {
            self.end.store(dirk::alloc::allocations(), Ordering::SeqCst);
        }
    }

    fn allocations(&self) -> u64 {
        self.end.load(Ordering::SeqCst) - self.start.load(Ordering::SeqCst)
    }
}

fn fill(mut buf: Vec<f32>, n: u64) -> Vec<f32> {
    buf.clear();
    buf.extend((0..256).map(|i| (i as u64 ^ n) as f32));
    buf
}

fn energy(buf: &[f32]) -> f64 {
    buf.iter().map(|&v| f64::from(v) * f64::from(v)).sum()
}

#[test]
fn allocation_counts() {
    common::within(common::SHORT * 3, || {
        let all = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
        for threads in [1, all] {
            let rt = Runtime::builder().threads(threads).build().unwrap();
            rt.enter(|| {
                a_copy_pipeline_allocates_nothing_per_element(threads);
                buffers_recycled_through_a_delay_edge_allocate_nothing(threads);
                report_allocs_counts_per_stage();
            });
        }
    });
}

fn a_copy_pipeline_allocates_nothing_per_element(threads: usize) {
    assert!(dirk::alloc::is_counting());
    let window = Window::new();
    let w = window.clone();
    let sum = Arc::new(AtomicU64::new(0));
    let s = sum.clone();
    let mut n = 0u64;
    let out = streaming! {
        #![dirk(max_evals = 130_000)]
        let x = { n += 1; w.mark(n); n };
        #[dirk(buffer = 256)] let y = x.wrapping_mul(31) ^ 7;
        let z = y.rotate_left(3);
        s.store(z, Ordering::Relaxed);
    };
    out.wait().unwrap();
    assert_ne!(sum.load(Ordering::Relaxed), 0);
    assert_eq!(window.allocations(), 0, "allocations in {MEASURED} elements after warm-up on {threads} threads");
}

fn buffers_recycled_through_a_delay_edge_allocate_nothing(threads: usize) {
    let window = Window::new();
    let w = window.clone();
    let total = Arc::new(AtomicU64::new(0));
    let t = total.clone();
    let mut n = 0u64;
    let out = streaming! {
        #![dirk(max_evals = 130_000)]
        let frame = { n += 1; w.mark(n); fill(delay(spent, Vec::with_capacity(256)), n) };
        let spent = { t.fetch_add(energy(&frame) as u64 & 1, Ordering::Relaxed); frame };
    };
    out.wait().unwrap();
    assert_eq!(window.allocations(), 0, "allocations in {MEASURED} elements after warm-up on {threads} threads");
}

fn report_allocs_counts_per_stage() {
    let mut n = 0u64;
    let out = streaming! {
        #![dirk(max_evals = 1000, report_allocs)]
        let x = { n += 1; n };
        let boxed = Box::new(x);
        let text = format!("{boxed}");
        text.len()
    };
    let lens: Vec<usize> = out.iter().collect();
    out.wait().unwrap();
    assert_eq!(lens.len(), 1000);
    let stats = out.stats();
    assert_eq!(stats.stage("x").unwrap().allocations, Some(0));
    assert_eq!(stats.stage("x").unwrap().allocs_per_element(), Some(0.0));
    assert_eq!(stats.stage("boxed").unwrap().allocs_per_element(), Some(1.0));
    assert!(stats.stage("text").unwrap().allocs_per_element().unwrap() >= 1.0);
}
