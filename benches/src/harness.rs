//! What every benchmark binary shares: timing with medians, and the result
//! lines that `cargo xtask bench` collects into BENCHMARKS.md.
//!
//! A result line is `@bench {json}` on stdout, with the benchmark group, the
//! case, the system measured (dirk or a peer), the value and its unit.
//! Peers are measured in the same run, so ratios compare like with like on
//! a noisy machine. `DIRK_BENCH_QUICK=1` cuts repetitions and sizes for a
//! smoke run.

use std::time::{Duration, Instant};

/// Whether this is a quick smoke run (`cargo xtask bench --quick`).
pub fn quick() -> bool {
    std::env::var_os("DIRK_BENCH_QUICK").is_some_and(|v| v != "0")
}

/// `full` normally, `quick` in a smoke run.
pub fn pick<T>(full: T, quick_value: T) -> T {
    if quick() { quick_value } else { full }
}

/// The median and spread of repeated measurements.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// Runs `f` `runs` times (after one warm-up run) and returns the median of
/// the values it reports.
pub fn sample(runs: usize, mut f: impl FnMut() -> f64) -> Sample {
    f();
    sample_of((0..runs.max(1)).map(|_| f()).collect())
}

/// The median, least and greatest of some values (at least one).
pub fn sample_of(mut values: Vec<f64>) -> Sample {
    values.sort_by(f64::total_cmp);
    Sample { median: values[values.len() / 2], min: values[0], max: values[values.len() - 1] }
}

/// Samples two variants of one measurement taken in turns, so that a
/// ratio between them is not skewed by the machine's load drifting between
/// two blocks of runs.
pub fn sample_pair(runs: usize, f: impl FnMut() -> f64, g: impl FnMut() -> f64) -> (Sample, Sample) {
    let (a, b) = turns(runs, f, g);
    (sample_of(a), sample_of(b))
}

/// Runs `f` and `g` in turns `runs` times (at least once) after a warm-up
/// of each, and returns every value of each (for per-run ratios).
pub fn turns(runs: usize, mut f: impl FnMut() -> f64, mut g: impl FnMut() -> f64) -> (Vec<f64>, Vec<f64>) {
    f();
    g();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        a.push(f());
        b.push(g());
    }
    (a, b)
}

/// Times one call of `f`.
pub fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// Nanoseconds per item of a run that took `d` for `items` items.
pub fn ns_per(d: Duration, items: usize) -> f64 {
    d.as_nanos() as f64 / items as f64
}

/// Reports one result. `lower_is_better` says how to read ratios.
pub fn report(group: &str, case: &str, system: &str, s: Sample, unit: &str, lower_is_better: bool) {
    eprintln!("  {group:<12} {case:<40} {system:<22} {:>12.1} {unit} (min {:.1}, max {:.1})", s.median, s.min, s.max);
    println!(
        "@bench {{\"group\":{group:?},\"case\":{case:?},\"system\":{system:?},\"value\":{},\"min\":{},\"max\":{},\"unit\":{unit:?},\"lower_is_better\":{lower_is_better}}}",
        s.median, s.min, s.max
    );
}

/// Reports a measurement with no spread (a single figure).
pub fn report_value(group: &str, case: &str, system: &str, value: f64, unit: &str, lower_is_better: bool) {
    report(group, case, system, Sample { median: value, min: value, max: value }, unit, lower_is_better);
}

/// Declares a target from an issue: the median of `(group, case, system)`
/// must be at most (or, for rates, at least) `limit`. `cargo xtask bench`
/// lists every target with the measured figure and whether it is met.
pub fn target(group: &str, case: &str, system: &str, limit: f64, what: &str) {
    println!(
        "@target {{\"group\":{group:?},\"case\":{case:?},\"system\":{system:?},\"peer\":null,\"limit\":{limit},\"what\":{what:?}}}"
    );
}

/// Declares a ratio target: `system ÷ peer` (both of `(group, case)`) must
/// be at most `limit` (for times; at least, for rates).
pub fn target_ratio(group: &str, case: &str, system: &str, peer: &str, limit: f64, what: &str) {
    println!(
        "@target {{\"group\":{group:?},\"case\":{case:?},\"system\":{system:?},\"peer\":{peer:?},\"limit\":{limit},\"what\":{what:?}}}"
    );
}

/// The CPU time this process has used so far, user and system, all threads.
pub fn cpu_time() -> Duration {
    // SAFETY: `getrusage` fills the `rusage` it is given; all-zero bytes
    // are a valid `rusage` to start from.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Runs `f` and returns its wall time and the CPU time the whole process
/// spent meanwhile (every thread of every pool in it).
pub fn time_with_cpu(f: impl FnOnce()) -> (Duration, Duration) {
    let cpu = cpu_time();
    let wall = time(f);
    (wall, cpu_time().saturating_sub(cpu))
}

/// The process's resident memory now, in bytes (`/proc/self/statm`).
pub fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("resident pages");
    // SAFETY: `sysconf` only reads a configuration value.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

/// Resets the process's peak resident memory to what it holds now (Linux:
/// writing 5 to `/proc/self/clear_refs`), so [`peak_rss`] measures what
/// follows alone.
pub fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
}

/// The process's peak resident memory since the last [`reset_peak_rss`],
/// in bytes (`VmHWM` of `/proc/self/status`).
pub fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/self/status");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmHWM in kB");
    kib * 1024
}

/// The `p`-th percentile (0 to 100) of some values, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Says, for BENCHMARKS.md, what a group's figures time and how: a
/// paragraph printed under the group's heading.
pub fn about(group: &str, text: &str) {
    println!("@about {{\"group\":{group:?},\"text\":{text:?}}}");
}
