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
//!
//! The places of a loop over one container (`v[i]` for rising `i`, each
//! the element after the last) are kept apart as a *run*: one task per
//! element, appended with a push and found by index arithmetic (`run.rs`).
//! A run stands for the records it replaces, so every query consults both.

use std::collections::BTreeMap;

use smallvec::SmallVec;

use super::index::{Key, Keys, Slab};
use super::run::Run;
use super::span::{Extent, Span};
use crate::task::raw::TaskRef;
use crate::task::state::{BODY_DONE, COMPLETE, FAILED};

/// Tasks found by a query; usually a few.
pub(crate) type Tasks = SmallVec<[TaskRef; 2]>;

/// The path of headers read to reach a place.
pub(crate) type Path = SmallVec<[Extent; 2]>;

/// One access of a new task, as the tracker sees it.
#[derive(Debug)]
pub(crate) struct Access<'a> {
    pub(crate) path: &'a [Extent],
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

/// The last writer of one span reached by one path, and the readers since.
#[derive(Debug)]
struct Record {
    span: Span,
    /// The path, as an index into the tracker's interned paths.
    path: u32,
    writer: Option<TaskRef>,
    readers: SmallVec<[TaskRef; 2]>,
}

impl Record {
    fn new(span: Span, path: u32, write: bool, task: TaskRef) -> Record {
        let (writer, readers) = if write { (Some(task), SmallVec::new()) } else { (None, smallvec::smallvec![task]) };
        Record { span, path, writer, readers }
    }

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
        if self.readers.iter().any(succeeded) {
            self.readers.retain(|r| !succeeded(r));
        }
        self.writer.is_some() || !self.readers.is_empty()
    }

    fn held(&self) -> usize {
        usize::from(self.writer.is_some()) + self.readers.len()
    }

    /// Whether every task of the record succeeded.
    fn done(&self) -> bool {
        self.writer.as_ref().is_none_or(succeeded) && self.readers.iter().all(succeeded)
    }
}

/// What registering an access will change: decided by [`Tracker::query`],
/// applied by [`Tracker::register`] once the task exists.
#[derive(Debug, Default)]
pub(crate) struct Change {
    /// Records the new write replaces.
    replaced: SmallVec<[Key; 2]>,
    /// A record of the same span and path, which a read joins.
    same: Option<Key>,
    /// The access's path, when it is interned already.
    path: Option<u32>,
}

/// The smallest interval holding every span added since the last reset; a
/// query outside it finds nothing without searching.
#[derive(Clone, Copy, Debug)]
struct Bounds {
    lo: usize,
    hi: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds { lo: usize::MAX, hi: 0 }
    }
}

impl Bounds {
    fn add(&mut self, span: &Span) {
        self.lo = self.lo.min(span.start());
        self.hi = self.hi.max(span.end());
    }

    fn may_meet(&self, span: &Span) -> bool {
        !span.is_empty() && span.start() < self.hi && self.lo < span.end()
    }
}

/// One distinct path, and where the records reached by it lie.
#[derive(Debug, Default)]
struct PathEntry {
    headers: Path,
    /// Every record reached by this path has its span inside these bounds.
    spans: Bounds,
}

/// The records of one root.
///
/// Records live in a [`Slab`]; `by_start` holds their keys sorted by the
/// address of their span. Paths are interned (a loop over one `Vec` reaches
/// every element by the same path), each with the bounds of its records'
/// spans, and `headers` lists, for each header, the paths that read it: the
/// records reached through a header are found by address, inside the
/// bounds of those paths.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    slab: Slab<Record>,
    by_start: Keys,
    /// The longest bounding interval of a record's span.
    max_len: usize,
    spans: Bounds,
    paths: Vec<PathEntry>,
    headers: BTreeMap<(usize, usize), SmallVec<[u32; 2]>>,
    max_header_len: usize,
    header_bounds: Bounds,
    /// Task references held, and how many were held after the last sweep.
    held: usize,
    swept: usize,
    /// Reused by `sweep`.
    scratch: Vec<Key>,
    /// The places of the latest loop over one container, kept compactly
    /// beside the records (`run.rs`).
    run: Run,
}

impl Tracker {
    fn overlapping<'a>(&'a self, span: &'a Span) -> impl Iterator<Item = (Key, &'a Record)> + 'a {
        let lo = span.start().saturating_sub(self.max_len);
        let keys = self.spans.may_meet(span).then(|| self.by_start.starting_in(lo, span.end()));
        keys.into_iter()
            .flatten()
            .filter_map(|k| self.slab.get(k).map(|r| (*k, r)))
            .filter(move |(_, r)| r.span.overlaps(span))
    }

    /// Records reached through a header that overlaps `span`, with that header.
    fn through<'a>(&'a self, span: &'a Span) -> impl Iterator<Item = (Key, &'a Record, Span)> + 'a {
        let lo = span.start().saturating_sub(self.max_header_len);
        let entries = self.header_bounds.may_meet(span).then(|| self.headers.range((lo, 0)..(span.end(), 0)));
        entries
            .into_iter()
            .flatten()
            .map(|(&(start, end), paths)| (Span::bytes(start, end - start), paths))
            .filter(move |(header, _)| header.overlaps(span))
            .flat_map(move |(header, paths)| paths.iter().map(move |&p| (header, p)))
            .flat_map(move |(header, p)| {
                let b = self.paths[p as usize].spans;
                let lo = b.lo.saturating_sub(self.max_len);
                self.by_start
                    .starting_in(lo, b.hi)
                    .filter_map(move |k| self.slab.get(k).map(|r| (*k, r)))
                    .filter(move |(_, r)| r.path == p)
                    .map(move |(k, r)| (k, r, header))
            })
    }

    /// The interned path equal to `headers`, if any.
    fn path_id(&self, headers: &[Extent]) -> Option<u32> {
        // Paths are few and a block mostly reuses its latest: search backwards.
        self.paths.iter().rposition(|p| p.headers.as_slice() == headers).map(|i| i as u32)
    }

    fn intern(&mut self, headers: &[Extent]) -> u32 {
        if let Some(id) = self.path_id(headers) {
            return id;
        }
        let id = u32::try_from(self.paths.len()).expect("fewer than 2³² paths");
        for h in headers {
            self.max_header_len = self.max_header_len.max(h.end() - h.start());
            self.header_bounds.add(&h.span());
            self.headers.entry((h.start(), h.end())).or_default().push(id);
        }
        self.paths.push(PathEntry { headers: headers.into(), spans: Bounds::default() });
        id
    }

    /// Whether some record's place may overlap `span` (a quick test on bounds).
    pub(crate) fn may_be_used(&self, span: &Span) -> bool {
        self.spans.may_meet(span) || self.run.may_meet(span)
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
        self.run.users(header, exclusive, &mut found);
        found
    }

    /// Adds to `deps` the tasks `access` must run after, and plans its
    /// registration.
    pub(crate) fn query(&self, access: &Access<'_>, plan: &mut Change, deps: &mut Tasks) {
        let path = self.path_id(access.path);
        plan.path = path;
        // Places that cover a header on the way to this one.
        for header in access.path {
            let header = header.span();
            if self.spans.may_meet(&header) {
                for (_, r) in self.overlapping(&header) {
                    r.conflicts(access.write, deps);
                }
            }
            self.run.conflicts(&header, access.write, deps);
        }
        // Overlapping places.
        self.run.conflicts(&access.span, access.write, deps);
        if !self.spans.may_meet(&access.span) {
            return self.through_plan(access, plan, deps);
        }
        for (key, r) in self.overlapping(&access.span) {
            r.conflicts(access.write, deps);
            let same_path = path == Some(r.path);
            if access.write && same_path && access.span.contains(&r.span) {
                plan.replaced.push(key);
            } else if same_path && r.span == access.span {
                plan.same = Some(key);
            }
        }
        self.through_plan(access, plan, deps)
    }

    /// The part of [`Tracker::query`] for places reached through a header
    /// inside the access's span.
    fn through_plan(&self, access: &Access<'_>, plan: &mut Change, deps: &mut Tasks) {
        if !self.header_bounds.may_meet(&access.span) {
            return;
        }
        if !self.run.is_empty()
            && self.paths[self.run.path as usize].headers.iter().any(|h| h.span().overlaps(&access.span))
        {
            self.run.all_conflict(access.write, deps);
        }
        for (key, r, header) in self.through(&access.span) {
            r.conflicts(access.write, deps);
            let theirs = &self.paths[r.path as usize].headers;
            let reached_here =
                theirs.starts_with(access.path) && theirs.get(access.path.len()) == Some(&Extent::of(&header));
            if access.write && reached_here && access.span.contains(&header) && !plan.replaced.contains(&key) {
                plan.replaced.push(key);
            }
        }
    }

    /// Records that `task` makes `access`, as planned by [`Tracker::query`];
    /// the record keeps the reference.
    pub(crate) fn register(&mut self, access: &Access<'_>, plan: &Change, task: TaskRef) {
        if access.write && self.covers_run(access, plan.path) {
            self.held -= self.run.len().min(self.held);
            self.run.clear();
        }
        let mut replaced = plan.replaced.as_slice();
        // A write replacing the record of its own span reuses it in place
        // (`replaced` holds only records reached by the same path).
        if let [key] = replaced
            && let Some(record) = self.slab.get_mut(key)
            && record.span == access.span
        {
            self.held -= record.held().min(self.held);
            record.writer = Some(task);
            record.readers.clear();
            replaced = &[];
        } else if let Some(key) = plan.same.filter(|_| !access.write)
            && let Some(record) = self.slab.get_mut(&key)
        {
            record.readers.push(task);
        } else {
            let path = plan.path.unwrap_or_else(|| self.intern(access.path));
            if let Err(task) = self.run.push(path, &access.span, access.write, task) {
                self.insert(Record::new(access.span, path, access.write, task));
            }
        }
        self.held += 1;
        for key in replaced {
            self.remove(key);
        }
        if self.held > 2 * self.swept + 256 {
            self.sweep();
        }
    }

    /// Whether a write of `access` (by the interned `path`) replaces every
    /// element of the run, as it would replace their records: they are
    /// reached the same way and inside its span, or through a header
    /// inside it that follows its own path.
    fn covers_run(&self, access: &Access<'_>, path: Option<u32>) -> bool {
        let Some(extent) = self.run.extent() else { return false };
        if path == Some(self.run.path) {
            return access.span.contains(&extent);
        }
        let theirs = &self.paths[self.run.path as usize].headers;
        theirs.starts_with(access.path)
            && theirs.get(access.path.len()).is_some_and(|h| access.span.contains(&h.span()))
    }

    fn insert(&mut self, record: Record) {
        self.max_len = self.max_len.max(record.span.end() - record.span.start());
        self.spans.add(&record.span);
        let path = record.path as usize;
        self.paths[path].spans.add(&record.span);
        let key = self.slab.insert(record.span.start(), record);
        self.by_start.insert(key);
    }

    fn remove(&mut self, key: &Key) {
        let Some(record) = self.slab.remove(key) else { return };
        self.held -= record.held().min(self.held);
        let slab = &self.slab;
        self.by_start.went_stale(|k| slab.get(k).is_some());
    }

    /// Drops the tasks that succeeded; costs the number of live records.
    fn sweep(&mut self) {
        let mut failed = SmallVec::<[(Span, TaskRef); 2]>::new();
        self.run.sweep_front(|span, task| failed.push((span, task)));
        let (path, write) = (self.run.path, self.run.write);
        for (span, task) in failed {
            self.insert(Record::new(span, path, write, task));
        }
        let in_run = self.run.len();
        // Most often every task has succeeded: forget everything at once (no
        // key outlives this: `by_start` goes too).
        if self.by_start.iter().all(|k| self.slab.get(k).is_none_or(Record::done)) {
            let paths = self.paths.iter_mut();
            paths.for_each(|p| p.spans = Bounds::default());
            self.slab.clear();
            self.by_start = Keys::default();
            (self.held, self.swept, self.max_len, self.spans) = (in_run, in_run, 0, Bounds::default());
            return;
        }
        let mut dead = std::mem::take(&mut self.scratch);
        let (mut held, mut max_len, mut spans) = (in_run, 0, Bounds::default());
        for path in &mut self.paths {
            path.spans = Bounds::default();
        }
        for key in self.by_start.iter() {
            let Some(record) = self.slab.get_mut(key) else { continue };
            if record.sweep() {
                held += record.held();
                max_len = max_len.max(record.span.end() - record.span.start());
                spans.add(&record.span);
                self.paths[record.path as usize].spans.add(&record.span);
            } else {
                dead.push(*key);
            }
        }
        for key in dead.drain(..) {
            self.remove(&key);
        }
        self.scratch = dead;
        (self.held, self.swept, self.max_len, self.spans) = (held, held, max_len, spans);
    }

    /// How many task references the tracker holds.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.slab.values().map(Record::held).sum::<usize>() + self.run.len()
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

    impl Drop for Pending {
        /// Lets the tasks end when a failed assertion unwinds the test.
        fn drop(&mut self) {
            self.release.store(true, Ordering::Release);
        }
    }

    fn access(tracker: &mut Tracker, pending: &mut Pending, path: &[Span], span: Span, write: bool) -> Vec<TaskRef> {
        let path: Path = path.iter().map(Extent::of).collect();
        let a = Access { path: &path, span, write };
        let mut deps = Tasks::new();
        let mut plan = Change::default();
        tracker.query(&a, &mut plan, &mut deps);
        let task = pending.task();
        tracker.register(&a, &plan, task.clone());
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

    #[test]
    fn records_of_tasks_that_succeeded_are_swept_and_failed_ones_kept() {
        let rt = Runtime::builder().threads(1).build().unwrap();
        rt.enter(|| {
            let mut t = Tracker::default();
            let failed = crate::spawn(|| -> () { panic!("kept") });
            let _ = failed.wait();
            let a = Access { path: &[], span: Span::bytes(0x10, 8), write: true };
            let mut deps = Tasks::new();
            let mut plan = Change::default();
            t.query(&a, &mut plan, &mut deps);
            t.register(&a, &plan, failed.raw.clone());
            for i in 0..1000 {
                let done = crate::spawn(|| ());
                done.wait().unwrap();
                let a = Access { path: &[], span: Span::bytes(0x1000 + 8 * i, 8), write: true };
                let mut plan = Change::default();
                t.query(&a, &mut plan, &mut deps);
                t.register(&a, &plan, done.raw.clone());
            }
            assert!(t.held() < 300, "succeeded tasks were swept ({} held)", t.held());
            let mut deps = Tasks::new();
            let a = Access { path: &[], span: Span::bytes(0x10, 8), write: false };
            t.query(&a, &mut Change::default(), &mut deps);
            assert_eq!(deps.len(), 1, "the failed writer is still there to fail its readers");
        });
    }

    #[test]
    fn a_loop_over_elements_orders_each_after_its_own_writer() {
        let rt = Runtime::builder().threads(2).build().unwrap();
        rt.enter(|| {
            let mut p = Pending::new();
            let mut t = Tracker::default();
            let header = Span::bytes(0x100, 24);
            for i in 0..8 {
                let d = access(&mut t, &mut p, &[header], Span::bytes(0x9000 + 8 * i, 8), true);
                assert!(d.is_empty(), "elements {i} and before are disjoint");
            }
            assert!(t.run.len() == 8 && t.slab.values().count() == 0, "the loop is kept as one run");
            let writers: Vec<TaskRef> = p.tasks.iter().map(|t| t.raw.clone()).collect();
            let d = access(&mut t, &mut p, &[header], Span::bytes(0x9010, 8), false);
            assert!(same(&d, &[&writers[2]]), "a read of element 2 waits for its writer only");
            let reader = p.tasks[8].raw.clone();
            let d = access(&mut t, &mut p, &[header], Span::bytes(0x900c, 16), true);
            let straddled = [&writers[1], &writers[2], &writers[3], &reader];
            assert!(same(&d, &straddled), "a write straddling three elements, one of them read since");
            assert_eq!(t.users_of(&Span::bytes(0x9038, 8), false).len(), 1, "element 7's writer uses it");
            let d = access(&mut t, &mut p, &[], header, true);
            // The straddling write replaced the read's record: it runs after it.
            assert_eq!(d.len(), 9, "the whole Vec waits for every task reached through it");
            assert_eq!(t.held(), 1, "and replaces them");
            p.finish();
        });
    }

    #[test]
    fn a_failed_task_of_a_loop_outlives_the_sweep() {
        let rt = Runtime::builder().threads(1).build().unwrap();
        rt.enter(|| {
            let mut t = Tracker::default();
            let mut deps = Tasks::new();
            let mut failed = None;
            for i in 0..600 {
                let task = if i == 3 { crate::spawn(|| -> () { panic!("kept") }) } else { crate::spawn(|| ()) };
                let _ = task.wait();
                let a = Access { path: &[], span: Span::bytes(0x1000 + 8 * i, 8), write: true };
                let mut plan = Change::default();
                t.query(&a, &mut plan, &mut deps);
                t.register(&a, &plan, task.raw.clone());
                if i == 3 {
                    failed = Some(task);
                }
            }
            assert!(deps.is_empty());
            assert!(t.held() < 300, "succeeded tasks were swept ({} held)", t.held());
            let failed = failed.unwrap();
            for (i, expected) in [(3, 1), (4, 0), (599, 0)] {
                let mut deps = Tasks::new();
                let a = Access { path: &[], span: Span::bytes(0x1000 + 8 * i, 8), write: false };
                t.query(&a, &mut Change::default(), &mut deps);
                assert_eq!(deps.len(), expected, "element {i}");
                assert!(deps.iter().all(|d| d.as_ptr() == failed.raw.as_ptr()));
            }
        });
    }

    #[test]
    fn a_sweep_between_two_accesses_of_one_call_keeps_the_second() {
        let rt = Runtime::builder().threads(2).build().unwrap();
        rt.enter(|| {
            let mut t = Tracker::default();
            let done = crate::spawn(|| ());
            done.wait().unwrap();
            let register = |t: &mut Tracker, span: Span, task: &TaskRef| {
                let a = Access { path: &[], span, write: true };
                let mut plan = Change::default();
                t.query(&a, &mut plan, &mut Tasks::new());
                t.register(&a, &plan, task.clone());
            };
            // A run of a task still running first, so that the next places,
            // apart from each other, are records: the first one in the
            // slab's first slot.
            let mut p = Pending::new();
            register(&mut t, Span::bytes(0x8000, 8), &p.task());
            let x = Span::bytes(0x10, 8);
            register(&mut t, x, &done.raw);
            for i in 0..254 {
                register(&mut t, Span::bytes(0x1000 + 16 * i, 8), &done.raw);
            }
            // One call with two places: both queried, then both registered;
            // registering the first sweeps every record away.
            let (a1, a2) = (
                Access { path: &[], span: Span::bytes(0x3000, 8), write: true },
                Access { path: &[], span: x, write: true },
            );
            let (mut plan1, mut plan2) = (Change::default(), Change::default());
            t.query(&a1, &mut plan1, &mut Tasks::new());
            t.query(&a2, &mut plan2, &mut Tasks::new());
            assert_eq!(plan2.replaced.len(), 1, "the second place replaces the record of x");
            let task = p.task();
            t.register(&a1, &plan1, done.raw.clone());
            t.register(&a2, &plan2, task.clone());
            let mut deps = Tasks::new();
            t.query(&Access { path: &[], span: x, write: false }, &mut Change::default(), &mut deps);
            assert!(same(&deps, &[&task]), "a read of x waits for the second place's task");
            p.finish();
        });
    }
}
