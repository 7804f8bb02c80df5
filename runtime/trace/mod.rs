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
use crate::task::TaskId;

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
    for event in events {
        match event {
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
    mend_order(&mut trace.tasks, &trace.edges);
    trace.tasks.sort_by_key(|r| (r.start, r.task));
    trace.edges.sort();
    trace
}

/// Puts every task's start at or after the ends of its inputs.
///
/// Clock readings are exact and agree across threads, but runs of short
/// tasks share readings (see `record`'s module note), which can leave a
/// short task's end a little after the start of a consumer on another
/// thread. The input's end moves back to the consumer's start, or, when
/// the input's start is later too, the consumer moves to the input's end.
fn mend_order(tasks: &mut [TaskRun], edges: &[(TaskId, TaskId)]) {
    let index: HashMap<TaskId, usize> = tasks.iter().enumerate().map(|(i, r)| (r.task, i)).collect();
    // A moved consumer can push its own consumers: a few passes settle chains
    // of shared readings, which are short.
    for _ in 0..4 {
        let mut moved = false;
        for (from, to) in edges {
            let (Some(&a), Some(&b)) = (index.get(from), index.get(to)) else { continue };
            if a == b || tasks[a].end <= tasks[b].start {
                continue;
            }
            moved = true;
            if tasks[a].start <= tasks[b].start {
                tasks[a].end = tasks[b].start;
            } else {
                let after = tasks[a].end;
                let consumer = &mut tasks[b];
                consumer.start = after;
                consumer.end = consumer.end.max(after);
            }
        }
        if !moved {
            break;
        }
    }
}
