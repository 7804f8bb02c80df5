//! The hazard tracker of one root: which tasks of a `datadeps!` block use
//! which memory under that root, so that a new task is ordered after the
//! earlier tasks it conflicts with.
//!
//! An access is a *path* of headers (what evaluating the place read: a
//! `Vec`'s pointer and length, a reference's address), the *span* of the
//! place itself, and a mode. Two accesses conflict when at least one writes
//! and either one's span overlaps the other's span, or one's span overlaps a
//! header on the other's path (a task holding a whole `Vec` may reallocate
//! the buffer an element lives in). Places reached through the same header
//! (two halves of one `Vec`) conflict only when their spans overlap.
//!
//! Each record keeps the last writer of one span (reached by one path) and
//! the readers since. Records are indexed by address, and headers by
//! address with the records reached through them, so a new access looks
//! only at nearby records. A write replaces the records it covers when they
//! were reached the same way: a later access that conflicts with them
//! conflicts with the write, which runs after them. Records of tasks that
//! succeeded are swept out as the tracker grows; those of failed tasks stay,
//! so later tasks on the same memory fail as their dependents, every time.

use std::collections::{BTreeMap, BTreeSet};

use smallvec::SmallVec;

use super::span::Span;
use crate::task::raw::TaskRef;
use crate::task::state::{BODY_DONE, COMPLETE, FAILED};

/// Tasks found by a query; usually a few.
pub(crate) type Tasks = SmallVec<[TaskRef; 4]>;

/// The path of headers read to reach a place.
pub(crate) type Path = SmallVec<[Span; 2]>;

/// One access of a new task, as the tracker sees it.
#[derive(Debug)]
pub(crate) struct Access<'a> {
    pub(crate) path: &'a [Span],
    pub(crate) span: Span,
    pub(crate) write: bool,
}

/// Whether a task ended with a value: its body returned, and nothing that
/// runs after it can fail because of it.
pub(crate) fn succeeded(task: &TaskRef) -> bool {
    task.header().state.load() & (COMPLETE | FAILED) == COMPLETE
}

/// Whether a task's body will not touch memory any more.
pub(crate) fn body_done(task: &TaskRef) -> bool {
    task.header().state.load() & BODY_DONE != 0
}

type Key = (usize, u64);

/// The last writer of one span reached by one path, and the readers since.
#[derive(Debug)]
struct Record {
    span: Span,
    path: Path,
    writer: Option<TaskRef>,
    readers: SmallVec<[TaskRef; 2]>,
}

impl Record {
    /// Adds the tasks an access of mode `write` must run after.
    fn conflicts(&self, write: bool, deps: &mut Tasks) {
        if let Some(w) = &self.writer
            && !succeeded(w)
        {
            deps.push(w.clone());
        }
        if write {
            deps.extend(self.readers.iter().filter(|r| !succeeded(r)).cloned());
        }
    }

    /// Drops succeeded tasks; returns whether any task is left.
    fn sweep(&mut self) -> bool {
        self.writer.take_if(|w| succeeded(w));
        self.readers.retain(|r| !succeeded(r));
        self.writer.is_some() || !self.readers.is_empty()
    }

    fn held(&self) -> usize {
        usize::from(self.writer.is_some()) + self.readers.len()
    }
}

/// What registering an access will change: decided by [`Tracker::query`],
/// applied by [`Tracker::register`] once the task exists.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Records the new write replaces.
    replaced: SmallVec<[Key; 4]>,
    /// A record of the same span and path, which a read joins.
    same: Option<Key>,
}

/// The records of one root.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    records: BTreeMap<Key, Record>,
    /// The longest bounding interval of a record's span.
    max_len: usize,
    /// For each header read on the way to some record: those records.
    headers: BTreeMap<(usize, usize), BTreeSet<Key>>,
    max_header_len: usize,
    next_id: u64,
    /// Task references held, and how many were held after the last sweep.
    held: usize,
    swept: usize,
}

impl Tracker {
    fn overlapping<'a>(&'a self, span: &'a Span) -> impl Iterator<Item = (&'a Key, &'a Record)> + 'a {
        let lo = span.start().saturating_sub(self.max_len);
        self.records.range((lo, 0)..(span.end(), 0)).filter(move |(_, r)| r.span.overlaps(span))
    }

    /// Records reached through a header that overlaps `span`, with the index
    /// of that header in their path.
    fn through<'a>(&'a self, span: &'a Span) -> impl Iterator<Item = (&'a Key, &'a Record, Span)> + 'a {
        let lo = span.start().saturating_sub(self.max_header_len);
        self.headers
            .range((lo, 0)..(span.end(), 0))
            .map(|(&(start, end), keys)| (Span::bytes(start, end - start), keys))
            .filter(move |(header, _)| header.overlaps(span))
            .flat_map(move |(header, keys)| {
                keys.iter().filter_map(move |k| self.records.get_key_value(k).map(|(k, r)| (k, r, header)))
            })
    }

    /// The tasks still running whose place overlaps `header`, about to be
    /// read: writers, and readers too when it is to be borrowed mutably.
    pub(crate) fn users_of(&self, header: &Span, exclusive: bool) -> Tasks {
        let mut found = Tasks::new();
        for (_, r) in self.overlapping(header) {
            found.extend(r.writer.iter().filter(|t| !body_done(t)).cloned());
            if exclusive {
                found.extend(r.readers.iter().filter(|t| !body_done(t)).cloned());
            }
        }
        found
    }

    /// Adds to `deps` the tasks `access` must run after, and plans its
    /// registration.
    pub(crate) fn query(&self, access: &Access<'_>, deps: &mut Tasks) -> Plan {
        let mut plan = Plan::default();
        // Places that cover a header on the way to this one.
        for header in access.path {
            for (_, r) in self.overlapping(header) {
                r.conflicts(access.write, deps);
            }
        }
        // Overlapping places.
        for (key, r) in self.overlapping(&access.span) {
            r.conflicts(access.write, deps);
            let same_path = r.path.as_slice() == access.path;
            if access.write && same_path && access.span.contains(&r.span) {
                plan.replaced.push(*key);
            } else if same_path && r.span == access.span {
                plan.same = Some(*key);
            }
        }
        // Places reached through a header inside this one.
        for (key, r, header) in self.through(&access.span) {
            r.conflicts(access.write, deps);
            let reached_here = r.path.starts_with(access.path) && r.path.get(access.path.len()) == Some(&header);
            if access.write && reached_here && access.span.contains(&header) && !plan.replaced.contains(key) {
                plan.replaced.push(*key);
            }
        }
        plan
    }

    /// Records that `task` makes `access`, as planned by [`Tracker::query`].
    pub(crate) fn register(&mut self, access: &Access<'_>, plan: Plan, task: &TaskRef) {
        for key in &plan.replaced {
            self.remove(key);
        }
        match plan.same.and_then(|key| self.records.get_mut(&key)) {
            Some(record) if !access.write => record.readers.push(task.clone()),
            _ => {
                let (writer, readers) = if access.write {
                    (Some(task.clone()), SmallVec::new())
                } else {
                    (None, smallvec::smallvec![task.clone()])
                };
                self.insert(Record { span: access.span, path: access.path.into(), writer, readers });
            }
        }
        self.held += 1;
        if self.held > 2 * self.swept + 64 {
            self.sweep();
        }
    }

    fn insert(&mut self, record: Record) {
        self.next_id += 1;
        let key = (record.span.start(), self.next_id);
        self.max_len = self.max_len.max(record.span.end() - record.span.start());
        for header in &record.path {
            self.max_header_len = self.max_header_len.max(header.end() - header.start());
            self.headers.entry((header.start(), header.end())).or_default().insert(key);
        }
        self.records.insert(key, record);
    }

    fn remove(&mut self, key: &Key) {
        let Some(record) = self.records.remove(key) else { return };
        self.held -= record.held().min(self.held);
        for header in &record.path {
            let slot = (header.start(), header.end());
            if let Some(keys) = self.headers.get_mut(&slot) {
                keys.remove(key);
                if keys.is_empty() {
                    self.headers.remove(&slot);
                }
            }
        }
    }

    fn sweep(&mut self) {
        let done: Vec<Key> =
            self.records.iter_mut().filter_map(|(k, r)| (!r.sweep()).then_some(*k)).collect();
        for key in &done {
            self.remove(key);
        }
        self.held = self.records.values().map(Record::held).sum();
        self.swept = self.held;
        self.max_len = self.records.values().map(|r| r.span.end() - r.span.start()).max().unwrap_or(0);
        self.max_header_len = self.headers.keys().map(|(s, e)| e - s).max().unwrap_or(0);
    }

    /// How many task references the tracker holds.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.records.values().map(Record::held).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::{Runtime, Task};

    /// Tasks that run until released, so the tracker sees them pending.
    struct Pending {
        release: Arc<AtomicBool>,
        tasks: Vec<Task<()>>,
    }

    impl Pending {
        fn new() -> Self {
            Pending { release: Arc::new(AtomicBool::new(false)), tasks: Vec::new() }
        }

        fn task(&mut self) -> TaskRef {
            let release = Arc::clone(&self.release);
            let t = crate::spawn(move || {
                while !release.load(Ordering::Acquire) {
                    std::thread::sleep(std::time::Duration::from_micros(100));
                }
            });
            let raw = t.raw.clone();
            self.tasks.push(t);
            raw
        }

        fn finish(self) {
            self.release.store(true, Ordering::Release);
            for t in &self.tasks {
                t.wait().unwrap();
            }
        }
    }

    fn access(tracker: &mut Tracker, pending: &mut Pending, path: &[Span], span: Span, write: bool) -> Vec<TaskRef> {
        let a = Access { path, span, write };
        let mut deps = Tasks::new();
        let plan = tracker.query(&a, &mut deps);
        let task = pending.task();
        tracker.register(&a, plan, &task);
        deps.into_vec()
    }

    fn same(a: &[TaskRef], b: &[&TaskRef]) -> bool {
        a.len() == b.len() && b.iter().all(|t| a.iter().any(|x| x.as_ptr() == t.as_ptr()))
    }

    #[test]
    fn reads_wait_for_writes_and_writes_for_everything_before() {
        let rt = Runtime::builder().threads(2).build().unwrap();
        rt.enter(|| {
            let mut p = Pending::new();
            let mut t = Tracker::default();
            let x = Span::bytes(0x1000, 8);
            assert!(access(&mut t, &mut p, &[], x, true).is_empty());
            let w = p.tasks[0].raw.clone();
            let d = access(&mut t, &mut p, &[], x, false);
            assert!(same(&d, &[&w]));
            let d = access(&mut t, &mut p, &[], x, false);
            assert!(same(&d, &[&w]), "readers do not wait for readers");
            let (r1, r2) = (p.tasks[1].raw.clone(), p.tasks[2].raw.clone());
            let d = access(&mut t, &mut p, &[], x, true);
            assert!(same(&d, &[&w, &r1, &r2]));
            assert_eq!(t.held(), 1, "the covering write replaced the earlier record");
            p.finish();
        });
    }

    #[test]
    fn disjoint_parts_are_independent_and_the_whole_orders_them() {
        let rt = Runtime::builder().threads(2).build().unwrap();
        rt.enter(|| {
            let mut p = Pending::new();
            let mut t = Tracker::default();
            let header = Span::bytes(0x100, 24);
            let (lo, hi) = (Span::bytes(0x9000, 40), Span::bytes(0x9028, 40));
            assert!(access(&mut t, &mut p, &[header], lo, true).is_empty());
            assert!(access(&mut t, &mut p, &[header], hi, true).is_empty(), "two halves of one Vec");
            let (a, b) = (p.tasks[0].raw.clone(), p.tasks[1].raw.clone());
            let d = access(&mut t, &mut p, &[], header, true);
            assert!(same(&d, &[&a, &b]), "the whole Vec waits for its parts");
            let whole = p.tasks[2].raw.clone();
            let d = access(&mut t, &mut p, &[header], Span::bytes(0x9000, 8), false);
            assert!(same(&d, &[&whole]), "an element waits for the whole Vec");
            assert_eq!(t.users_of(&header, false).len(), 1);
            p.finish();
        });
    }
}
