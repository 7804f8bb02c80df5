//! What every benchmark binary shares: timing with medians, and the result
//! lines that `cargo xtask bench` collects into BENCHMARKS.md.
//!
//! A result line is `@bench {json}` on stdout, with the benchmark group, the
//! case, the system measured (dirk or a peer), the value and its unit.
//! Peers are measured in the same run, so ratios compare like with like on
//! a noisy machine. `DIRK_BENCH_QUICK=1` cuts repetitions and sizes for a
//! smoke run.

#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Whether this is a quick smoke run (`cargo xtask bench --quick`).
pub(crate) fn quick() -> bool {
    std::env::var_os("DIRK_BENCH_QUICK").is_some_and(|v| v != "0")
}

/// `full` normally, `quick` in a smoke run.
pub(crate) fn pick<T>(full: T, quick_value: T) -> T {
    if quick() { quick_value } else { full }
}

/// The median and spread of repeated measurements.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

/// Runs `f` `runs` times (after one warm-up run) and returns the median of
/// the values it reports.
pub(crate) fn sample(runs: usize, mut f: impl FnMut() -> f64) -> Sample {
    f();
    summarize((0..runs.max(1)).map(|_| f()).collect())
}

/// The median, least and greatest of some values (at least one).
fn summarize(mut values: Vec<f64>) -> Sample {
    values.sort_by(f64::total_cmp);
    Sample { median: values[values.len() / 2], min: values[0], max: values[values.len() - 1] }
}

/// Samples two variants of one measurement taken in turns, so that a
/// ratio between them is not skewed by the machine's load drifting between
/// two blocks of runs.
pub(crate) fn sample_pair(runs: usize, mut f: impl FnMut() -> f64, mut g: impl FnMut() -> f64) -> (Sample, Sample) {
    f();
    g();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        a.push(f());
        b.push(g());
    }
    (summarize(a), summarize(b))
}

/// Times one call of `f`.
pub(crate) fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// Nanoseconds per item of a run that took `d` for `items` items.
pub(crate) fn ns_per(d: Duration, items: usize) -> f64 {
    d.as_nanos() as f64 / items as f64
}

/// Reports one result. `lower_is_better` says how to read ratios.
pub(crate) fn report(group: &str, case: &str, system: &str, s: Sample, unit: &str, lower_is_better: bool) {
    eprintln!("  {group:<12} {case:<40} {system:<22} {:>12.1} {unit} (min {:.1}, max {:.1})", s.median, s.min, s.max);
    println!(
        "@bench {{\"group\":{group:?},\"case\":{case:?},\"system\":{system:?},\"value\":{},\"min\":{},\"max\":{},\"unit\":{unit:?},\"lower_is_better\":{lower_is_better}}}",
        s.median, s.min, s.max
    );
}

/// Reports a measurement with no spread (a single figure).
pub(crate) fn report_value(group: &str, case: &str, system: &str, value: f64, unit: &str, lower_is_better: bool) {
    report(group, case, system, Sample { median: value, min: value, max: value }, unit, lower_is_better);
}

/// Declares a target from an issue: the median of `(group, case, system)`
/// must be at most (or, for rates, at least) `limit`. `cargo xtask bench`
/// lists every target with the measured figure and whether it is met.
pub(crate) fn target(group: &str, case: &str, system: &str, limit: f64, what: &str) {
    println!(
        "@target {{\"group\":{group:?},\"case\":{case:?},\"system\":{system:?},\"peer\":null,\"limit\":{limit},\"what\":{what:?}}}"
    );
}

/// Declares a ratio target: `system ÷ peer` (both of `(group, case)`) must
/// be at most `limit` (for times; at least, for rates).
pub(crate) fn target_ratio(group: &str, case: &str, system: &str, peer: &str, limit: f64, what: &str) {
    println!(
        "@target {{\"group\":{group:?},\"case\":{case:?},\"system\":{system:?},\"peer\":{peer:?},\"limit\":{limit},\"what\":{what:?}}}"
    );
}
