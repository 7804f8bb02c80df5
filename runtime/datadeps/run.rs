//! A run of records: the places of a loop that walks one container upwards
//! (`for i in .. { f(InOut(v[i])) }`), kept as one task per element instead
//! of one record each.
//!
//! Element `k` of a run is the span `size` bytes long at `start + k·size`,
//! reached by the run's path and used by one task, in the run's mode: a
//! writer (the element's last writer) or a reader. Appending the next
//! element is a push; conflicts with a span are found by index arithmetic.
//! A run holds exactly what the same records would, so the tracker may keep
//! any element in it or in a record, and both at once: a later access is
//! ordered after every task of either that it conflicts with.
//!
//! Tasks end mostly in the order they were made, so a sweep drops succeeded
//! tasks from the front and stops at the first task still running.

use std::collections::VecDeque;

use super::span::Span;
use super::tracker::{Tasks, body_done, succeeded};
use crate::task::raw::TaskRef;

#[derive(Debug, Default)]
pub(crate) struct Run {
    /// The path of every element, as an index into the tracker's paths.
    pub(crate) path: u32,
    /// Whether the tasks write their elements.
    pub(crate) write: bool,
    /// The size of an element in bytes; not zero while the run has tasks.
    size: usize,
    /// Where the first element held starts.
    start: usize,
    tasks: VecDeque<TaskRef>,
}

impl Run {
    pub(crate) fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }

    /// One past the last element's last byte.
    fn end(&self) -> usize {
        self.start + self.tasks.len() * self.size
    }

    /// The bytes of every element, when there is one.
    pub(crate) fn extent(&self) -> Option<Span> {
        (!self.tasks.is_empty()).then(|| Span::bytes(self.start, self.end() - self.start))
    }

    /// Drops every task (their elements are replaced).
    pub(crate) fn clear(&mut self) {
        self.tasks.clear();
    }

    /// Whether the elements' bytes may overlap `span` (a quick test).
    pub(crate) fn may_meet(&self, span: &Span) -> bool {
        !self.tasks.is_empty() && !span.is_empty() && span.start() < self.end() && self.start < span.end()
    }

    /// Appends `task` if `span` (reached by `path`, written when `write`)
    /// is the element after the last one, or starts the run anew when it
    /// is empty; returns the task otherwise.
    pub(crate) fn push(&mut self, path: u32, span: &Span, write: bool, task: TaskRef) -> Result<(), TaskRef> {
        let Some(len) = span.run_len() else { return Err(task) };
        if self.tasks.is_empty() {
            (self.path, self.write, self.size, self.start) = (path, write, len, span.start());
        } else if path != self.path || write != self.write || len != self.size || span.start() != self.end() {
            return Err(task);
        }
        self.tasks.push_back(task);
        Ok(())
    }

    /// The tasks of the elements that overlap `span`.
    pub(crate) fn overlapping<'a>(&'a self, span: &'a Span) -> impl Iterator<Item = &'a TaskRef> + 'a {
        let range = if self.may_meet(span) {
            let first = (span.start().max(self.start) - self.start) / self.size;
            let last = (span.end().min(self.end()) - 1 - self.start) / self.size;
            first..last + 1
        } else {
            0..0
        };
        range.filter(move |&k| span.overlaps(&self.element(k))).map(move |k| &self.tasks[k])
    }

    fn element(&self, k: usize) -> Span {
        Span::bytes(self.start + k * self.size, self.size)
    }

    /// Adds the tasks an access of `span` and mode `write` must run
    /// after, of those of the elements it overlaps.
    pub(crate) fn conflicts(&self, span: &Span, write: bool, deps: &mut Tasks) {
        if (self.write || write) && self.may_meet(span) {
            deps.extend(self.overlapping(span).filter(|t| !succeeded(t)).cloned());
        }
    }

    /// Adds the tasks an access of mode `write` must run after, of all the
    /// run's tasks (it covers a header they were reached through).
    pub(crate) fn all_conflict(&self, write: bool, deps: &mut Tasks) {
        if self.write || write {
            deps.extend(self.tasks.iter().filter(|t| !succeeded(t)).cloned());
        }
    }

    /// Adds the tasks still running whose elements overlap `header` and
    /// who use them in a way that bars reading it (see `Tracker::users_of`).
    pub(crate) fn users(&self, header: &Span, exclusive: bool, found: &mut Tasks) {
        if (self.write || exclusive) && self.may_meet(header) {
            found.extend(self.overlapping(header).filter(|t| !body_done(t)).cloned());
        }
    }

    /// Drops the succeeded tasks at the front; hands each failed one there
    /// to `keep` with its element (its record must stay), and stops at the
    /// first task still running.
    pub(crate) fn sweep_front(&mut self, mut keep: impl FnMut(Span, TaskRef)) {
        while let Some(front) = self.tasks.front() {
            if succeeded(front) {
                self.tasks.pop_front();
            } else if front.header().state.is_complete() {
                let span = self.element(0);
                keep(span, self.tasks.pop_front().expect("the front task"));
            } else {
                break;
            }
            self.start += self.size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Runtime, Task};

    fn finished<T: Send + Sync + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Task<T> {
        let t = crate::spawn(f);
        let _ = t.wait();
        t
    }

    #[test]
    fn only_the_next_element_of_the_same_shape_extends_a_run() {
        let rt = Runtime::builder().threads(1).build().unwrap();
        rt.enter(|| {
            let t = finished(|| ());
            let mut run = Run::default();
            assert!(run.push(0, &Span::bytes(0x100, 8), true, t.raw.clone()).is_ok(), "an empty run starts anywhere");
            assert!(run.push(0, &Span::bytes(0x108, 8), true, t.raw.clone()).is_ok());
            assert!(run.push(0, &Span::bytes(0x118, 8), true, t.raw.clone()).is_err(), "a gap");
            assert!(run.push(1, &Span::bytes(0x110, 8), true, t.raw.clone()).is_err(), "another path");
            assert!(run.push(0, &Span::bytes(0x110, 8), false, t.raw.clone()).is_err(), "another mode");
            assert!(run.push(0, &Span::bytes(0x110, 16), true, t.raw.clone()).is_err(), "another size");
            assert!(run.push(0, &Span::strided(0x110, 2, 8, 16), true, t.raw.clone()).is_err(), "strided");
            assert!(run.push(0, &Span::bytes(0x110, 8), true, t.raw.clone()).is_ok());
            assert_eq!(run.extent(), Some(Span::bytes(0x100, 24)));
            let mut empty = Run::default();
            assert!(empty.push(0, &Span::bytes(0x100, 0), true, t.raw.clone()).is_err(), "an empty place");
        });
    }

    #[test]
    fn a_span_meets_exactly_the_elements_it_overlaps() {
        let rt = Runtime::builder().threads(1).build().unwrap();
        rt.enter(|| {
            let tasks: Vec<Task<usize>> = (0..6).map(|i| finished(move || i)).collect();
            let mut run = Run::default();
            for (i, t) in tasks.iter().enumerate() {
                run.push(0, &Span::bytes(0x1000 + 8 * i, 8), false, t.raw.clone()).unwrap();
            }
            let met = |span: Span| -> Vec<usize> {
                run.overlapping(&span)
                    .map(|r| tasks.iter().position(|t| t.raw.as_ptr() == r.as_ptr()).unwrap())
                    .collect()
            };
            assert_eq!(met(Span::bytes(0x1004, 8)), [0, 1], "straddles two elements");
            assert_eq!(met(Span::bytes(0x0ff0, 0x19)), [0, 1], "starts before the run");
            assert_eq!(met(Span::bytes(0x1028, 0x100)), [5], "ends after it");
            assert_eq!(met(Span::strided(0x1008, 2, 8, 24)), [1, 4], "rows skip elements between them");
            assert!(met(Span::bytes(0x1030, 8)).is_empty(), "just past the end");
            assert!(met(Span::bytes(0x0ff8, 8)).is_empty(), "just before the start");
        });
    }

    #[test]
    fn a_sweep_drops_the_front_keeps_failures_and_stops_at_a_running_task() {
        let rt = Runtime::builder().threads(2).build().unwrap();
        rt.enter(|| {
            let ok = finished(|| ());
            let failed = finished(|| -> () { panic!("kept") });
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let running = crate::spawn(move || {
                let _ = rx.recv_timeout(std::time::Duration::from_secs(30));
            });
            let mut run = Run::default();
            for (i, t) in [&ok.raw, &failed.raw, &ok.raw, &running.raw, &ok.raw].into_iter().enumerate() {
                run.push(0, &Span::bytes(0x2000 + 4 * i, 4), true, t.clone()).unwrap();
            }
            let mut kept = Vec::new();
            run.sweep_front(|span, task| kept.push((span, task)));
            assert_eq!(kept.len(), 1);
            assert_eq!(kept[0].0, Span::bytes(0x2004, 4), "the failed task's element");
            assert_eq!(kept[0].1.as_ptr(), failed.raw.as_ptr());
            assert_eq!(run.len(), 2, "the running task and the one after it stay");
            assert_eq!(run.extent(), Some(Span::bytes(0x200c, 8)));
            tx.send(()).unwrap();
            running.wait().unwrap();
            run.sweep_front(|_, _| panic!("no failure left"));
            assert!(run.is_empty());
        });
    }
}
