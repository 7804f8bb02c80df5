//! The cost model: where a task should run, given where its inputs live,
//! how fast data moves between processes, how long the task's function
//! takes, and how busy each worker is.
//!
//! For each candidate worker `w`:
//!
//! ```text
//! cost(w) = bytes of inputs not on w / link bandwidth
//!         + tasks queued on w / threads of w * learned run time of the function
//! ```
//!
//! The cheapest worker wins, so a task goes to its data unless another
//! worker is idle and moving the data costs less than waiting. Equal costs
//! go to the less loaded worker, and remaining ties rotate, so tasks that
//! could run anywhere spread out. Run times are learned per function (an
//! exponential average of measured runs, here and in workers); bandwidth is
//! learned from transfers between processes, starting from 1 GB/s.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::sync::Mutex;

/// Bytes per second assumed before any transfer was measured.
const INITIAL_BANDWIDTH: f64 = 1e9;
/// Weight of a new measurement in the running averages.
const LEARN: f64 = 0.25;

/// What the model knows.
#[derive(Debug)]
pub(crate) struct CostModel {
    bandwidth: AtomicU64,
    run_times: Mutex<HashMap<u64, f64>>,
    rotate: AtomicUsize,
}

/// One candidate, as the caller sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub(crate) worker: u32,
    /// Input bytes that would have to move to this worker.
    pub(crate) bytes_to_move: u64,
    /// Tasks queued or running there.
    pub(crate) load: usize,
    pub(crate) threads: usize,
}

impl CostModel {
    pub(crate) fn new() -> CostModel {
        CostModel {
            bandwidth: AtomicU64::new(INITIAL_BANDWIDTH.to_bits()),
            run_times: Mutex::new(HashMap::new()),
            rotate: AtomicUsize::new(0),
        }
    }

    /// Bytes per second between processes.
    pub(crate) fn bandwidth(&self) -> f64 {
        f64::from_bits(self.bandwidth.load(Ordering::Relaxed))
    }

    /// Learns from a transfer of `bytes` that took `took`.
    pub(crate) fn learn_transfer(&self, bytes: u64, took: Duration) {
        if bytes < 1 << 20 || took.is_zero() {
            return; // small transfers measure latency, not bandwidth
        }
        let seen = bytes as f64 / took.as_secs_f64();
        let old = self.bandwidth();
        self.bandwidth.store((old + LEARN * (seen - old)).to_bits(), Ordering::Relaxed);
    }

    /// Learns that function `id` ran for `took`.
    pub(crate) fn learn_run(&self, id: u64, took: Duration) {
        let mut times = self.run_times.lock();
        let t = took.as_secs_f64();
        times.entry(id).and_modify(|old| *old += LEARN * (t - *old)).or_insert(t);
    }

    /// The learned run time of function `id`, in seconds (0 when unknown).
    pub(crate) fn run_time(&self, id: u64) -> f64 {
        self.run_times.lock().get(&id).copied().unwrap_or(0.0)
    }

    /// The best of `candidates` for function `id` (see the module note).
    ///
    /// The learned figures are read once: the I/O thread updates them while
    /// tasks are placed, and the best found from one reading must be found
    /// again, from the same reading, among the candidates.
    pub(crate) fn choose(&self, id: u64, candidates: &[Candidate]) -> Option<u32> {
        let (bandwidth, run_time) = (self.bandwidth(), self.run_time(id));
        let key = |c: &Candidate| (cost_with(bandwidth, run_time, c), c.load as f64 / c.threads.max(1) as f64);
        let best = candidates.iter().map(key).fold((f64::INFINITY, f64::INFINITY), |a, b| if b < a { b } else { a });
        let tied: Vec<u32> = candidates
            .iter()
            .filter(|c| {
                let (cost, load) = key(c);
                cost <= best.0 * (1.0 + 1e-9) + 1e-9 && load <= best.1 + 1e-9
            })
            .map(|c| c.worker)
            .collect();
        if tied.is_empty() {
            // No cost compares (not a number): any candidate will do.
            return candidates.first().map(|c| c.worker);
        }
        let turn = self.rotate.fetch_add(1, Ordering::Relaxed);
        Some(tied[turn % tied.len()])
    }
}

/// The cost of running a function on `c` with the given learned figures
/// (bytes per second, seconds per run), in seconds.
fn cost_with(bandwidth: f64, run_time: f64, c: &Candidate) -> f64 {
    c.bytes_to_move as f64 / bandwidth + c.load as f64 / c.threads.max(1) as f64 * run_time
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(worker: u32, bytes_to_move: u64, load: usize) -> Candidate {
        Candidate { worker, bytes_to_move, load, threads: 2 }
    }

    #[test]
    fn tasks_go_to_their_data() {
        let m = CostModel::new();
        for _ in 0..5 {
            let pick = m.choose(1, &[c(0, 8 << 20, 0), c(1, 8 << 20, 0), c(2, 0, 0), c(3, 8 << 20, 0)]);
            assert_eq!(pick, Some(2));
        }
    }

    #[test]
    fn data_split_over_two_workers_spreads_tasks_over_both() {
        let m = CostModel::new();
        let picks: Vec<u32> = (0..10)
            .filter_map(|_| m.choose(1, &[c(0, 16 << 20, 0), c(1, 16 << 20, 0), c(2, 8 << 20, 0), c(3, 8 << 20, 0)]))
            .collect();
        assert!(picks.iter().all(|w| [2, 3].contains(w)), "{picks:?}");
        assert!(picks.contains(&2) && picks.contains(&3), "{picks:?}");
    }

    #[test]
    fn data_moves_to_an_idle_worker_when_waiting_costs_more() {
        let m = CostModel::new();
        m.learn_run(1, Duration::from_millis(100));
        // 1 MiB to move (about 1 ms) beats waiting behind 4 tasks of 100 ms.
        assert_eq!(m.choose(1, &[c(1, 0, 8), c(2, 1 << 20, 0)]), Some(2));
        // 1 GiB to move (about 1 s) does not.
        assert_eq!(m.choose(1, &[c(1, 0, 8), c(2, 1 << 30, 0)]), Some(1));
    }

    #[test]
    fn placing_while_run_times_are_learned_always_picks_a_candidate() {
        let m = std::sync::Arc::new(CostModel::new());
        let learner = {
            let m = m.clone();
            std::thread::spawn(move || {
                for i in 0..20_000u64 {
                    m.learn_run(1, Duration::from_micros(i % 97));
                }
            })
        };
        for _ in 0..20_000 {
            let pick = m.choose(1, &[c(1, 0, 3), c(2, 0, 3), c(3, 64, 3)]);
            assert!(matches!(pick, Some(1 | 2)), "{pick:?}");
        }
        learner.join().unwrap();
        assert_eq!(m.choose(1, &[]), None);
    }

    #[test]
    fn learning_moves_the_averages() {
        let m = CostModel::new();
        m.learn_transfer(1 << 30, Duration::from_millis(250));
        assert!(m.bandwidth() > INITIAL_BANDWIDTH);
        m.learn_run(7, Duration::from_millis(10));
        assert!((m.run_time(7) - 0.010).abs() < 1e-9);
    }
}
