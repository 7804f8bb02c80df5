//! Tracing: which task ran where and when, and how tasks depended on each
//! other, as Dagger's `render_logs` shows it.
//!
//! Recording is process-wide: [`start`] turns it on, [`stop`] turns it off
//! and returns a [`Trace`]; [`record`] wraps both around a closure.
//! `Runtime::builder().trace(path)` records for the life of a runtime and
//! writes a Chrome/Perfetto trace to `path` when it is dropped; the
//! `DIRK_TRACE=path` variable does the same for the global runtime of a
//! `#[dirk::main]` program. A trace renders as Chrome/Perfetto JSON
//! ([`Trace::to_chrome_json`]), a Gantt chart ([`gantt_svg`]) and a DOT
//! graph ([`dot`]).
//!
//! With tracing off, the runtime pays one relaxed atomic load per spawn and
//! per task run. With it on, a worker going straight through tasks shorter
//! than about a microsecond reads the clock once per up to 16 of them and
//! shares the time out evenly: a trace shows such tasks' order, thread and
//! total time exactly and their single lengths approximately. Longer tasks
//! are timed exactly.
//!
//! ```
//! use dirk::prelude::*;
//!
//! #[task]
//! fn inc(x: i64) -> i64 { x + 1 }
//!
//! let (value, trace) = dirk::trace::record(|| {
//!     let a = spawn!(inc(1));
//!     spawn!(inc(a)).fetch()
//! });
//! assert_eq!(value?, 3);
//! assert_eq!(trace.tasks().iter().filter(|t| t.name == "inc").count(), 2);
//! assert!(dirk::trace::dot(&trace).contains("->"));
//! assert!(dirk::trace::gantt_svg(&trace).starts_with("<svg"));
//! # Ok::<(), dirk::Error>(())
//! ```

mod chrome;
mod dot;
mod gantt;
pub(crate) mod record;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub use self::dot::dot;
pub use self::gantt::gantt_svg;
use self::record::{Calibration, Event};
use crate::id::TaskId;

/// One task body's run, as recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRun {
    /// The task.
    pub task: TaskId,
    /// Its name.
    pub name: &'static str,
    /// The worker (process) it ran on.
    pub worker: usize,
    /// The thread of that worker, `None` for a thread outside the pool.
    pub thread: Option<usize>,
    /// When it was spawned, from the start of the trace (if that was recorded).
    pub spawned: Option<Duration>,
    /// When its body started, from the start of the trace.
    pub start: Duration,
    /// When its body ended.
    pub end: Duration,
    /// Whether the body panicked.
    pub failed: bool,
}

/// Data moved between workers for a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// The task whose data moved.
    pub task: TaskId,
    /// How many bytes.
    pub bytes: u64,
    /// From which worker to which.
    pub from: usize,
    /// To which worker.
    pub to: usize,
    /// When, from the start of the trace.
    pub at: Duration,
}

/// What was recorded between [`start`] and [`stop`].
#[derive(Clone, Debug, Default)]
pub struct Trace {
    tasks: Vec<TaskRun>,
    edges: Vec<(TaskId, TaskId)>,
    transfers: Vec<Transfer>,
    names: HashMap<TaskId, &'static str>,
    length: Duration,
}

impl Trace {
    /// Every task body that ran, in order of start.
    pub fn tasks(&self) -> &[TaskRun] {
        &self.tasks
    }

    /// Dependencies: `(input, consumer)` pairs.
    pub fn edges(&self) -> &[(TaskId, TaskId)] {
        &self.edges
    }

    /// Data moved between workers.
    pub fn transfers(&self) -> &[Transfer] {
        &self.transfers
    }

    /// The name of a task spawned or run during the trace.
    pub fn name_of(&self, task: TaskId) -> Option<&'static str> {
        self.names.get(&task).copied()
    }

    /// How long the trace recorded.
    pub fn length(&self) -> Duration {
        self.length
    }

    /// The trace as Chrome/Perfetto JSON (open it at ui.perfetto.dev or
    /// chrome://tracing).
    pub fn to_chrome_json(&self) -> String {
        chrome::json(self)
    }

    /// Writes [`to_chrome_json`](Trace::to_chrome_json) to `path`.
    pub fn write_chrome(&self, path: impl AsRef<std::path::Path>) -> std::io::Result<()> {
        std::fs::write(path, self.to_chrome_json())
    }
}

static SESSION: Mutex<Option<Calibration>> = Mutex::new(None);

/// Starts recording (process-wide). Events from before are discarded.
pub fn start() {
    let mut session = SESSION.lock().unwrap_or_else(|e| e.into_inner());
    record::skip();
    *session = Some(Calibration::take());
    record::set_on(true);
}

/// Stops recording and returns what was recorded since [`start`] (an empty
/// trace if recording was not on).
pub fn stop() -> Trace {
    let mut session = SESSION.lock().unwrap_or_else(|e| e.into_inner());
    record::set_on(false);
    let Some(begin) = session.take() else { return Trace::default() };
    let end = Calibration::take();
    build(record::collect(), begin, end)
}

/// Records everything `f` and the tasks it spawns do, and returns `f`'s
/// value with the trace. Tasks still running when `f` returns appear only
/// as far as they got.
pub fn record<R>(f: impl FnOnce() -> R) -> (R, Trace) {
    start();
    let value = f();
    (value, stop())
}

/// Whether tracing is on now.
pub fn is_recording() -> bool {
    record::on()
}

fn build(events: Vec<Event>, begin: Calibration, end: Calibration) -> Trace {
    let ticks = end.ticks.saturating_sub(begin.ticks).max(1) as f64;
    let nanos_per_tick = end.instant.duration_since(begin.instant).as_nanos() as f64 / ticks;
    let at = |t: u64| Duration::from_nanos((t.saturating_sub(begin.ticks) as f64 * nanos_per_tick) as u64);
    let mut trace = Trace { length: end.instant.duration_since(begin.instant), ..Trace::default() };
    let mut shared = Vec::new();
    for event in events {
        match event {
            Event::Shared { runs, chained, closed } => {
                shared.push(SharedRuns { first: trace.tasks.len(), runs: runs as usize, chained, closed });
            }
            Event::Edge { from, to } => trace.edges.push((TaskId(from), TaskId(to))),
            Event::Run { task, name, spawned, worker, thread, start, end, failed } => {
                trace.names.insert(TaskId(task), name);
                trace.tasks.push(TaskRun {
                    task: TaskId(task),
                    name,
                    worker: worker as usize,
                    thread: (thread != u32::MAX).then_some(thread as usize),
                    spawned: (spawned >= begin.ticks).then(|| at(spawned)),
                    start: at(start),
                    end: at(end),
                    failed,
                });
            }
            Event::Moved { task, bytes, from, to, at: t } => trace.transfers.push(Transfer {
                task: TaskId(task),
                bytes,
                from: from as usize,
                to: to as usize,
                at: at(t),
            }),
        }
    }
    mend_order(&mut trace.tasks, &trace.edges, &shared);
    for run in &mut trace.tasks {
        // A spawn time is a recent reading, and mending may move a start.
        run.spawned = run.spawned.map(|s| s.min(run.start));
    }
    // An empty run (mending can leave one) sorts before the run that starts
    // where it is.
    trace.tasks.sort_by_key(|r| (r.start, r.end, r.task));
    trace.edges.sort();
    trace
}

/// Runs of one thread that shared clock readings: `tasks[first..][..runs]`.
#[derive(Clone, Copy, Debug)]
struct SharedRuns {
    first: usize,
    runs: usize,
    /// The first run's start is where the run before ended, not a reading:
    /// it may have started later.
    chained: bool,
    /// The last run's end was read, not guessed.
    closed: bool,
}

impl SharedRuns {
    /// Boundary `k` of the span: the start of its run `k`, or for
    /// `k == runs` the end of its last run.
    fn bound(&self, tasks: &[TaskRun], k: usize) -> Duration {
        if k < self.runs { tasks[self.first + k].start } else { tasks[self.first + self.runs - 1].end }
    }

    fn set(&self, tasks: &mut [TaskRun], k: usize, at: Duration) {
        if k < self.runs {
            tasks[self.first + k].start = at;
        }
        if k > 0 {
            tasks[self.first + k - 1].end = at;
        }
    }

    /// The first boundary that may move later: the first is a reading
    /// unless the span was chained.
    fn first_free(&self) -> usize {
        usize::from(!self.chained)
    }

    /// The last boundary that is a share or a guess, not a reading.
    fn last_free(&self) -> usize {
        if self.closed { self.runs - 1 } else { self.runs }
    }

    /// Moves boundary `k` back to `at` (not before the span's start, a
    /// reading or the end of the run before), and the boundaries before it
    /// that would pass it.
    fn lower(&self, tasks: &mut [TaskRun], k: usize, at: Duration) -> bool {
        let at = at.max(self.bound(tasks, 0));
        let mut moved = false;
        for k in (1..=k.min(self.last_free())).rev() {
            if self.bound(tasks, k) <= at {
                break;
            }
            self.set(tasks, k, at);
            moved = true;
        }
        moved
    }

    /// Moves boundary `k` on to `at` (not past a read end), and the
    /// boundaries after it that it would pass.
    fn raise(&self, tasks: &mut [TaskRun], k: usize, at: Duration) -> bool {
        let at = if self.closed { at.min(self.bound(tasks, self.runs)) } else { at };
        let mut moved = false;
        for k in k.max(self.first_free())..=self.last_free() {
            if self.bound(tasks, k) >= at {
                break;
            }
            self.set(tasks, k, at);
            moved = true;
        }
        moved
    }
}

/// Puts every task's start at or after the ends of its inputs.
///
/// Clock readings are exact and agree across threads, but a worker going
/// straight on from run to run does not read the clock between them (see
/// `record`'s module note): a run's start is where the run before ended,
/// which may be a little before it found its task, and runs of short tasks
/// share readings. Such times can put a task's start a little before the
/// end of an input on another thread. Only those times move: shares within
/// their span and in order, chained starts later, so readings stay as read
/// and a thread still runs one task at a time.
fn mend_order(tasks: &mut [TaskRun], edges: &[(TaskId, TaskId)], shared: &[SharedRuns]) {
    if shared.is_empty() || edges.is_empty() {
        return;
    }
    // Each run in a span, with its place there.
    let mut spans: Vec<Option<(SharedRuns, usize)>> = vec![None; tasks.len()];
    for span in shared.iter().filter(|s| s.runs > 0 && s.first + s.runs <= tasks.len()) {
        for place in 0..span.runs {
            spans[span.first + place] = Some((*span, place));
        }
    }
    let index: HashMap<TaskId, usize> = tasks.iter().enumerate().map(|(i, r)| (r.task, i)).collect();
    // Moving one boundary can upset another edge: a few passes settle the
    // short chains of shared spans a graph has.
    for _ in 0..8 {
        let mut moved = false;
        for (from, to) in edges {
            let (Some(&a), Some(&b)) = (index.get(from), index.get(to)) else { continue };
            if tasks[a].end <= tasks[b].start {
                continue;
            }
            // The input's end, if a share or a guess: back to the consumer's start.
            if let Some((span, place)) = spans[a] {
                moved |= span.lower(tasks, place + 1, tasks[b].start);
            }
            // The consumer's start, if a share: on to the input's end.
            if tasks[a].end > tasks[b].start
                && let Some((span, place)) = spans[b]
            {
                moved |= span.raise(tasks, place, tasks[a].end);
            }
        }
        if !moved {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(task: u64, thread: usize, start: u64, end: u64) -> TaskRun {
        TaskRun {
            task: TaskId(task),
            name: "t",
            worker: 0,
            thread: Some(thread),
            spawned: None,
            start: Duration::from_nanos(start),
            end: Duration::from_nanos(end),
            failed: false,
        }
    }

    fn times(tasks: &[TaskRun]) -> Vec<(u64, u64, u64)> {
        tasks.iter().map(|r| (r.task.0, r.start.as_nanos() as u64, r.end.as_nanos() as u64)).collect()
    }

    #[test]
    fn mending_moves_shares_and_chained_starts_only() {
        let mut tasks = vec![
            // Three runs sharing the readings 0 and 30 on thread 0.
            run(1, 0, 0, 10),
            run(2, 0, 10, 20),
            run(3, 0, 20, 30),
            // Read exactly on thread 1, fed by run 2.
            run(4, 1, 12, 15),
            // A run whose start is where thread 1's run before ended.
            run(5, 1, 45, 60),
            // Read exactly on thread 2: feeds run 5, and run 7 (read exactly).
            run(6, 2, 0, 50),
            run(7, 1, 48, 49),
        ];
        let shared = [
            SharedRuns { first: 0, runs: 3, chained: false, closed: true },
            SharedRuns { first: 4, runs: 1, chained: true, closed: true },
        ];
        let edges = [(TaskId(2), TaskId(4)), (TaskId(6), TaskId(5)), (TaskId(6), TaskId(7))];
        mend_order(&mut tasks, &edges, &shared);
        assert_eq!(
            times(&tasks),
            [(1, 0, 10), (2, 10, 12), (3, 12, 30), (4, 12, 15), (5, 50, 60), (6, 0, 50), (7, 48, 49)],
            "run 2 ends when run 4 starts, run 5 starts when run 6 ends, and readings stay as read"
        );
    }
}
