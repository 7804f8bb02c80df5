//! What a worker keeps: the results of its calls and the values process 0
//! gave it (*objects*), and the calls sent ahead that wait for some of
//! them.
//!
//! Protocol (the worker's half of sending calls ahead; process 0's half is
//! in `leader/ahead.rs`):
//!
//! 1. A call whose arguments are all here runs at once. A call with an
//!    argument not here yet ([`Source::Await`]) waits; it is counted in the
//!    awaited object's `Coming` list, once per such argument.
//! 2. An object arrives ([`Store::produced`]: a call here ended, or process
//!    0 gave it): each waiting call gets it; those with nothing left to
//!    wait for are returned, to be run. The caller answers the producing
//!    call (`Done`) before it runs them, so process 0 hears of an input
//!    before it hears of a call that used it.
//! 3. An object will not come ([`Store::failed`]: its call failed here, or
//!    process 0 withheld it): the calls waiting for it fail, and so, in
//!    turn, do the calls waiting for theirs; the failure is kept as a
//!    marker, for calls that arrive later.
//! 4. `Free` drops an object or marker; an object freed before it arrived
//!    (its task went in process 0 while its call was still to run here)
//!    is dropped when it arrives.
//! 5. `Forget` drops calls that wait, unrun (process 0 lost a worker and
//!    sends them again as ordinary calls), and the workers their results
//!    were to be given to (step 6).
//! 6. `Forward` asks for an object made here to be given to another worker
//!    directly ([`Store::forward`]): at once when it is here, when it is
//!    produced otherwise (returned with the calls it readies), never when
//!    it failed or was freed (process 0 settles those watchers itself).

use std::collections::hash_map::Entry;
use std::ops::Range;
use std::sync::Arc;

use rkyv::util::AlignedVec;
use smallvec::SmallVec;

use super::IdMap;

/// An object's bytes (an archive), shared by the calls reading it.
pub(crate) type Bytes = Arc<AlignedVec<16>>;

/// Where one argument's bytes are.
pub(crate) enum Source {
    /// In the call's own frame.
    Frame(Range<usize>),
    /// In the ring from process 0.
    Ring { start: u64, pos: u64, len: u64 },
    /// An object kept here.
    Object(Bytes),
    /// An object not here yet.
    Await(u64),
    /// A dirk file this worker mapped: the bytes after its header.
    Mapped(Arc<memmap2::Mmap>),
}

enum Object {
    Ready(Bytes),
    Failed,
    /// Not here yet: who waits for it, and whether it was freed.
    Coming {
        awaited: Awaited,
        freed: bool,
    },
}

/// Who waits for an object that is not here yet.
#[derive(Default)]
struct Awaited {
    /// The calls waiting for it, once per argument.
    calls: SmallVec<[u64; 2]>,
    /// The workers to give it to when it comes.
    forward: SmallVec<[u32; 2]>,
}

impl Object {
    fn coming(freed: bool) -> Object {
        Object::Coming { awaited: Awaited::default(), freed }
    }
}

struct Waiting<C> {
    call: C,
    sources: Vec<Source>,
    missing: usize,
}

/// A call ready to run: its id, what to run, and its arguments.
pub(crate) type Ready<C> = (u64, C, Vec<Source>);

/// What an object's arrival settled (see [`Store::produced`]).
pub(crate) struct Produced<C> {
    /// The calls it readied.
    pub(crate) ready: Vec<Ready<C>>,
    /// The workers to give it to directly (protocol step 6).
    pub(crate) forward: SmallVec<[u32; 2]>,
}

/// What became of a call given to [`Store::admit`].
pub(crate) enum Admitted<C> {
    /// Every argument is here: run it.
    Run(C, Vec<Source>),
    /// It waits.
    Waits,
    /// An argument will not come: answer it failed (and the calls listed,
    /// which waited for its result).
    Failed(Vec<u64>),
}

/// A worker's objects and waiting calls (`C`: what runs a call).
pub(crate) struct Store<C> {
    objects: IdMap<Object>,
    waiting: IdMap<Waiting<C>>,
}

impl<C> Default for Store<C> {
    fn default() -> Self {
        Store { objects: IdMap::default(), waiting: IdMap::default() }
    }
}

impl<C> Store<C> {
    /// The object's bytes, when it is here.
    pub(crate) fn get(&self, object: u64) -> Option<Bytes> {
        match self.objects.get(&object) {
            Some(Object::Ready(bytes)) => Some(bytes.clone()),
            _ => None,
        }
    }

    /// Takes call `id` with its arguments (protocol step 1).
    pub(crate) fn admit(&mut self, id: u64, call: C, mut sources: Vec<Source>) -> Admitted<C> {
        let mut missing = 0;
        for source in &mut sources {
            let Source::Await(object) = *source else { continue };
            match self.objects.entry(object).or_insert_with(|| Object::coming(false)) {
                Object::Ready(bytes) => *source = Source::Object(bytes.clone()),
                Object::Failed => {
                    // Undo the counts taken so far: the call never waits.
                    self.unwait(id);
                    return Admitted::Failed(self.failed(id));
                }
                Object::Coming { awaited, .. } => {
                    awaited.calls.push(id);
                    missing += 1;
                }
            }
        }
        if missing == 0 {
            return Admitted::Run(call, sources);
        }
        self.waiting.insert(id, Waiting { call, sources, missing });
        Admitted::Waits
    }

    /// Removes call `id` from every `Coming` list.
    fn unwait(&mut self, id: u64) {
        for object in self.objects.values_mut() {
            if let Object::Coming { awaited, .. } = object {
                awaited.calls.retain(|c| *c != id);
            }
        }
    }

    /// Ends `object` as `end` (here, or failed) and returns the calls that
    /// waited for it and the workers to give it to; `None` when it had
    /// ended already (the first end stands). An object freed before it
    /// ended is dropped instead, and given to nobody.
    fn settle(&mut self, object: u64, end: Object) -> Option<Awaited> {
        match self.objects.entry(object) {
            Entry::Vacant(v) => {
                v.insert(end);
                Some(Awaited::default())
            }
            Entry::Occupied(mut o) => match o.get_mut() {
                Object::Coming { awaited, freed } => {
                    let mut awaited = std::mem::take(awaited);
                    if *freed {
                        awaited.forward.clear();
                        o.remove();
                    } else {
                        o.insert(end);
                    }
                    Some(awaited)
                }
                Object::Ready(_) | Object::Failed => None,
            },
        }
    }

    /// `object` arrived (protocol step 2); returns the calls now ready and
    /// the workers it is to be given to.
    pub(crate) fn produced(&mut self, object: u64, bytes: Bytes) -> Produced<C> {
        // Given twice, or made again after a lost worker: the first stands.
        let Some(Awaited { calls, forward }) = self.settle(object, Object::Ready(bytes.clone())) else {
            return Produced { ready: Vec::new(), forward: SmallVec::new() };
        };
        let mut ready = Vec::new();
        for id in calls {
            let Some(w) = self.waiting.get_mut(&id) else { continue };
            if let Some(source) = w.sources.iter_mut().find(|s| matches!(s, Source::Await(o) if *o == object)) {
                *source = Source::Object(bytes.clone());
                w.missing -= 1;
            }
            if w.missing == 0 {
                let w = self.waiting.remove(&id).expect("present");
                ready.push((id, w.call, w.sources));
            }
        }
        Produced { ready, forward }
    }

    /// Asks for `object` to be given to worker `to` (protocol step 6): its
    /// bytes when it is here (give them now); `None` when it comes later
    /// (it is given when produced) or failed.
    pub(crate) fn forward(&mut self, object: u64, to: u32) -> Option<Bytes> {
        match self.objects.entry(object).or_insert_with(|| Object::coming(false)) {
            Object::Ready(bytes) => Some(bytes.clone()),
            Object::Failed => None,
            Object::Coming { awaited, freed } => {
                if !*freed && !awaited.forward.contains(&to) {
                    awaited.forward.push(to);
                }
                None
            }
        }
    }

    /// `object` will not come (protocol step 3); returns the waiting calls
    /// that failed with it, directly or in turn.
    pub(crate) fn failed(&mut self, object: u64) -> Vec<u64> {
        let mut failed = Vec::new();
        let mut work = vec![object];
        while let Some(object) = work.pop() {
            let Some(awaited) = self.settle(object, Object::Failed) else { continue };
            for id in awaited.calls {
                if self.waiting.remove(&id).is_some() {
                    failed.push(id);
                    work.push(id);
                }
            }
        }
        failed
    }

    /// Drops objects (protocol step 4).
    pub(crate) fn free(&mut self, objects: impl IntoIterator<Item = u64>) {
        for object in objects {
            match self.objects.entry(object) {
                Entry::Occupied(mut o) => match o.get_mut() {
                    Object::Coming { freed, .. } => *freed = true,
                    _ => {
                        o.remove();
                    }
                },
                Entry::Vacant(v) => {
                    v.insert(Object::coming(true));
                }
            }
        }
    }

    /// Drops waiting calls, unrun, and whom their results were to be
    /// given to (protocol step 5).
    pub(crate) fn forget(&mut self, calls: impl IntoIterator<Item = u64>) {
        for id in calls {
            if self.waiting.remove(&id).is_some() {
                self.unwait(id);
            }
            if let Some(Object::Coming { awaited, .. }) = self.objects.get_mut(&id) {
                awaited.forward.clear();
            }
        }
    }

    /// How many objects and waiting calls are held (for tests).
    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        (self.objects.len(), self.waiting.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(b: u8) -> Bytes {
        let mut v = AlignedVec::new();
        v.push(b);
        Arc::new(v)
    }

    fn first_byte(s: &Source) -> u8 {
        match s {
            Source::Object(b) => b[0],
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn a_call_waits_for_every_awaited_object_then_runs_with_them() {
        let mut store = Store::default();
        store.produced(1, bytes(10));
        let sources = vec![Source::Await(1), Source::Await(2), Source::Frame(0..8), Source::Await(2)];
        assert!(matches!(store.admit(7, "seven", sources), Admitted::Waits));
        assert!(store.produced(3, bytes(30)).ready.is_empty());
        let ready = store.produced(2, bytes(20)).ready;
        assert_eq!(ready.len(), 1);
        let (id, call, sources) = &ready[0];
        assert_eq!((*id, *call), (7, "seven"));
        let got: Vec<u8> = sources.iter().filter(|s| matches!(s, Source::Object(_))).map(first_byte).collect();
        assert_eq!(got, [10, 20, 20]);
        assert_eq!(store.held(), (3, 0));
    }

    #[test]
    fn a_call_with_everything_here_runs_at_once() {
        let mut store = Store::default();
        store.produced(1, bytes(1));
        match store.admit(2, (), vec![Source::Await(1)]) {
            Admitted::Run((), sources) => assert_eq!(first_byte(&sources[0]), 1),
            _ => panic!("should run"),
        }
    }

    #[test]
    fn a_failure_fails_the_waiting_calls_in_turn_and_stays_for_later_ones() {
        let mut store = Store::default();
        assert!(matches!(store.admit(2, (), vec![Source::Await(1)]), Admitted::Waits));
        assert!(matches!(store.admit(3, (), vec![Source::Await(2), Source::Await(9)]), Admitted::Waits));
        assert!(matches!(store.admit(4, (), vec![Source::Await(9)]), Admitted::Waits));
        let mut failed = store.failed(1);
        failed.sort();
        assert_eq!(failed, [2, 3]);
        // Call 3 no longer waits for 9; call 4 still does.
        assert_eq!(store.produced(9, bytes(9)).ready.len(), 1);
        match store.admit(5, (), vec![Source::Await(3)]) {
            Admitted::Failed(also) => assert!(also.is_empty()),
            _ => panic!("should fail"),
        }
    }

    #[test]
    fn an_object_freed_before_it_arrived_is_dropped_when_it_does() {
        let mut store: Store<()> = Store::default();
        store.free([5, 6]);
        assert!(store.produced(5, bytes(5)).ready.is_empty());
        assert!(store.failed(6).is_empty());
        assert!(store.get(5).is_none());
        assert_eq!(store.held(), (0, 0));
        store.produced(7, bytes(7));
        store.free([7]);
        assert_eq!(store.held(), (0, 0));
    }

    #[test]
    fn forgotten_calls_never_run() {
        let mut store = Store::default();
        assert!(matches!(store.admit(2, (), vec![Source::Await(1)]), Admitted::Waits));
        store.forget([2]);
        assert!(store.produced(1, bytes(1)).ready.is_empty());
        assert_eq!(store.held(), (1, 0));
    }

    #[test]
    fn an_object_is_forwarded_once_to_each_worker_whenever_it_is_asked() {
        let mut store: Store<()> = Store::default();
        // Asked before it is made (twice by one worker): given when produced.
        assert!(store.forward(1, 2).is_none());
        assert!(store.forward(1, 2).is_none());
        assert!(store.forward(1, 3).is_none());
        assert_eq!(store.produced(1, bytes(1)).forward.as_slice(), [2, 3]);
        // Asked after: given at once; a duplicate arrival gives nothing again.
        assert_eq!(store.forward(1, 4).map(|b| b[0]), Some(1));
        assert!(store.produced(1, bytes(9)).forward.is_empty());
        assert_eq!(store.get(1).map(|b| b[0]), Some(1), "the first arrival stands");
    }

    #[test]
    fn failed_freed_or_forgotten_objects_are_forwarded_to_nobody() {
        let mut store: Store<()> = Store::default();
        assert!(store.forward(1, 2).is_none());
        assert_eq!(store.failed(1), Vec::<u64>::new());
        assert!(store.forward(1, 3).is_none(), "a failed object is withheld by process 0");

        assert!(store.forward(5, 2).is_none());
        store.free([5]);
        assert!(store.forward(5, 3).is_none());
        assert!(store.produced(5, bytes(5)).forward.is_empty());
        assert_eq!(store.held(), (1, 0), "only the marker of 1 stays");

        // Call 7 waits for 6; both withdrawn: 7's result goes nowhere when
        // it comes again as an ordinary call.
        assert!(matches!(store.admit(7, (), vec![Source::Await(6)]), Admitted::Waits));
        assert!(store.forward(7, 2).is_none());
        store.forget([7]);
        assert!(store.produced(7, bytes(7)).forward.is_empty());
    }
}
