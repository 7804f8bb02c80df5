//! Recording: per-thread append-only logs of fixed-size events, a global
//! switch, and a cycle-counter clock.
//!
//! Protocol: each thread that records owns one [`Log`]: a list of chunks of
//! events plus a published length. The owner writes an event into the
//! current chunk and then stores the new length with release ordering; the
//! collector locks the chunk list and reads each chunk up to the published
//! length with acquire ordering. The owner takes the lock only to add a
//! chunk (every 4096 events), so recording is a few plain stores.
//!
//! The switch is one relaxed atomic load per hook when tracing is off.
//!
//! Timing: reading the cycle counter costs about 10 ns, more than a tenth
//! of a trivial task, so a worker going straight from task to task reads
//! it once per run (the end of one run is the start of the next) while its
//! runs are long, and once per up to [`BATCH_MAX`] runs while they are
//! short (under about a microsecond on average): the runs in between are
//! recorded without times, and collection shares the span between two
//! readings out evenly among them. A run after a long one, the first run
//! after the worker looked for work, and runs nested in a waiting task are
//! timed exactly. Shared times, and starts taken from the end of the run
//! before (which may precede finding the task), can put a task's start a
//! little before the end of an input on another thread: collection marks
//! them ([`Event::Shared`]) and building the trace moves only them to
//! follow its edges (`super::mend_order`).

use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use crate::error::Name;

mod collect;
mod packed;

use self::collect::Timeline;
pub(crate) use self::collect::{collect, skip};
use self::packed::Packed;

/// The recording session: 0 while tracing is off, a new number each time
/// it is turned on (so a thread's timing state from an earlier session is
/// not taken for this one's).
static ON: AtomicU32 = AtomicU32::new(0);

/// Whether tracing is recording.
#[inline]
pub(crate) fn on() -> bool {
    ON.load(Ordering::Relaxed) != 0
}

pub(crate) fn set_on(on: bool) {
    static SESSIONS: AtomicU32 = AtomicU32::new(0);
    let session = if on { SESSIONS.fetch_add(1, Ordering::Relaxed).wrapping_add(1).max(1) } else { 0 };
    ON.store(session, Ordering::SeqCst);
}

/// What happened, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// A task's output is one of `task`'s inputs.
    Edge { from: u64, to: u64 },
    /// A task's body ran on `thread` of `worker` from `start` to `end`
    /// (`spawned` is 0 when the spawn was not recorded).
    Run { task: u64, name: &'static str, spawned: u64, worker: u32, thread: u32, start: u64, end: u64, failed: bool },
    /// `bytes` of a task's data moved from one worker to another. Recorded
    /// by the transports that move data between workers and devices.
    Moved { task: u64, bytes: u64, from: u32, to: u32, at: u64 },
    /// Made by collection, never recorded: the next `runs` runs went back
    /// to back on one thread, and the times between them are shares, not
    /// readings. The first starts at a reading, or where the thread's run
    /// before ended (`chained`: it may have started a little later, after
    /// finding its task); the last ends at a reading when `closed`
    /// (otherwise at a guess: the thread had not read the clock again when
    /// they were collected).
    Shared { runs: u32, chained: bool, closed: bool },
}

/// A task body's run as the runtime reports it when the body returns; its
/// times come from the thread's timing state ([`run_start`], [`run_end`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ran {
    pub(crate) task: u64,
    pub(crate) name: &'static str,
    /// When the task was spawned, 0 if that was not recorded.
    pub(crate) spawned: u64,
    pub(crate) worker: u32,
    pub(crate) thread: u32,
    pub(crate) failed: bool,
}

const CHUNK: usize = 4096;

struct Chunk(Box<[UnsafeCell<Packed>]>);

// SAFETY: a slot is written by the owning thread before it publishes the
// length covering it, and read by the collector only below the published
// length (module note); nobody writes a published slot again.
unsafe impl Sync for Chunk {}
// SAFETY: events are plain data.
unsafe impl Send for Chunk {}

/// One thread's events.
pub(crate) struct Log {
    chunks: Mutex<Chunks>,
    /// Events published in total, since the thread started recording.
    published: AtomicUsize,
}

/// The chunks a log still holds: `list[0]` holds events from number `base`
/// on; `taken` events have been collected (or skipped) already.
struct Chunks {
    list: Vec<Arc<Chunk>>,
    base: usize,
    taken: usize,
    /// Where the runs read so far leave the thread's timeline.
    times: Timeline,
}

fn logs() -> &'static Mutex<Vec<Arc<Log>>> {
    static LOGS: OnceLock<Mutex<Vec<Arc<Log>>>> = OnceLock::new();
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Task names by id, for the runs a log records by name id.
#[derive(Default)]
struct Names {
    list: Vec<&'static str>,
    ids: HashMap<(usize, usize), u32>,
}

fn names() -> &'static Mutex<Names> {
    static NAMES: OnceLock<Mutex<Names>> = OnceLock::new();
    NAMES.get_or_init(Default::default)
}

/// Names a writer saw last, by a hash of their address: (address, length, id).
const NAME_CACHE: usize = 16;

struct Writer {
    log: Arc<Log>,
    current: Arc<Chunk>,
    index: usize,
    /// Events this thread published in total (only it writes `published`).
    total: usize,
    names: [(usize, usize, u32); NAME_CACHE],
}

impl Writer {
    /// The id of `name`, from this writer's cache or the global table.
    #[inline]
    fn name_id(&mut self, name: &'static str) -> u32 {
        let key = (name.as_ptr() as usize, name.len());
        let slot = (key.0 >> 3 ^ key.1) % NAME_CACHE;
        let cached = self.names[slot];
        if (cached.0, cached.1) == key {
            return cached.2;
        }
        let id = name_id_slow(name, key);
        self.names[slot] = (key.0, key.1, id);
        id
    }

    #[inline]
    fn write(&mut self, packed: Packed) {
        if self.index == CHUNK {
            return self.write_in_new_chunk(packed);
        }
        let slot = self.current.0[self.index].get().cast::<u64>();
        for (i, word) in packed.0.into_iter().enumerate() {
            // SAFETY: slot `index` of the current chunk is unpublished and
            // only this thread writes it; a `Packed` is four `u64`s.
            // Volatile keeps the four stores apart: merged, they went through
            // the stack into vector loads that could not take the words from
            // the stores.
            unsafe { slot.add(i).write_volatile(word) };
        }
        self.index += 1;
        self.total += 1;
        // The single writer publishes with a plain store.
        self.log.published.store(self.total, Ordering::Release);
    }

    #[cold]
    fn write_in_new_chunk(&mut self, packed: Packed) {
        let chunk = new_chunk();
        self.log.chunks.lock().unwrap_or_else(|e| e.into_inner()).list.push(chunk.clone());
        self.current = chunk;
        self.index = 0;
        self.write(packed);
    }
}

#[cold]
fn name_id_slow(name: &'static str, key: (usize, usize)) -> u32 {
    let mut names = names().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&id) = names.ids.get(&key) {
        return id;
    }
    let id = names.list.len() as u32;
    names.list.push(name);
    names.ids.insert(key, id);
    id
}

/// What a thread keeps for recording: its log, made at its first event,
/// and the state of its clock readings.
struct Local {
    writer: Option<Writer>,
    /// The last timestamp this thread read, and how many spawns used it.
    recent: (u64, u32),
    timing: Timing,
}

/// A thread's run timing (module note).
struct Timing {
    /// The recording session the state belongs to.
    session: u32,
    /// Runs in progress on this thread: more than one while a task waits
    /// or drains its queue and the thread runs others meanwhile.
    depth: u32,
    /// The next run at `chain_depth` starts where the last one ended: this
    /// is a pool thread that went straight on from it.
    chained: bool,
    chain_depth: u32,
    /// Runs recorded without their end since the last reading.
    open: u32,
    /// How many runs share one reading now.
    batch: u32,
    /// The last reading on this thread.
    read_at: u64,
    /// By depth: the start of the run in progress there, fixed when others
    /// ran inside it or the thread looked for work while it waited (0: not
    /// interrupted). Its end is then read.
    fixed: [u64; MAX_DEPTH + 1],
}

/// A run's start that was not read: it is the end of the thread's previous
/// run at the same depth.
const CHAINED: u64 = u64::MAX;
/// The most runs that share one reading.
const BATCH_MAX: u32 = 16;
/// Runs that took fewer ticks than this on average share readings (about
/// a microsecond at common counter rates).
const SHORT: u64 = 2048;
/// Runs nested deeper than this are always timed exactly.
const MAX_DEPTH: usize = 3;

thread_local! {
    static LOCAL: UnsafeCell<Local> = const {
        UnsafeCell::new(Local {
            writer: None,
            recent: (0, 0),
            timing: Timing {
                session: 0,
                depth: 0,
                chained: false,
                chain_depth: 0,
                open: 0,
                batch: 1,
                read_at: 0,
                fixed: [0; MAX_DEPTH + 1],
            },
        })
    };
}

/// Runs `f` on this thread's recording state; `None` once the thread is
/// being torn down.
#[inline]
fn with_local<R>(f: impl FnOnce(&mut Local) -> R) -> Option<R> {
    LOCAL
        .try_with(|cell| {
            // SAFETY: the thread-local is only reached through this
            // function, by its own thread, and no caller re-enters it.
            f(unsafe { &mut *cell.get() })
        })
        .ok()
}

impl Local {
    #[inline]
    fn writer(&mut self) -> &mut Writer {
        self.writer.get_or_insert_with(new_writer)
    }

    /// Records `ran` with the times that were read.
    #[inline]
    fn write_run(&mut self, ran: &Ran, start: Option<u64>, end: Option<u64>) {
        let writer = self.writer();
        let name = writer.name_id(ran.name);
        writer.write(Packed::run(ran, name, start, end));
    }

    /// Reads the clock for the chain of runs.
    #[inline]
    fn read(&mut self) -> u64 {
        let t = now();
        self.recent = (t, 0);
        t
    }

    /// Ends the runs recorded without their end at `t`.
    fn close_open(&mut self, t: u64) {
        if self.timing.open > 0 {
            self.timing.open = 0;
            self.writer().write(Packed::chain(t));
        }
    }

    /// Something other than the next run follows the last one: a nested
    /// run starts, or the thread looks for work. The runs recorded without
    /// their end end by `t` (read when there are any), and the run in
    /// progress at this depth, if any, is timed from where its chain stood
    /// and has its end read.
    fn interrupt(&mut self, t: Option<u64>) {
        let chain_at = match t {
            Some(t) if self.timing.open > 0 => {
                self.close_open(t);
                t
            }
            _ => self.timing.read_at,
        };
        let timing = &mut self.timing;
        let depth = timing.depth as usize;
        if (1..=MAX_DEPTH).contains(&depth) && timing.fixed[depth] == 0 {
            timing.fixed[depth] = chain_at.max(1);
        }
        timing.chained = false;
    }
}

/// Appends `event` to this thread's log.
#[inline]
pub(crate) fn record(event: Event) {
    with_local(|local| {
        let writer = local.writer();
        let packed = Packed::pack(event, |name| writer.name_id(name));
        writer.write(packed);
    });
}

/// Chunks whose events were all collected, kept for the next recording:
/// a fresh chunk costs a page fault every 128 events as it fills, which
/// was a third of what tracing cost a trivial task.
fn spare_chunks() -> &'static Mutex<Vec<Arc<Chunk>>> {
    static SPARE: Mutex<Vec<Arc<Chunk>>> = Mutex::new(Vec::new());
    &SPARE
}

/// The most chunks kept for reuse (32 MiB: the events of a million tasks).
const SPARE_MAX: usize = 256;

fn new_chunk() -> Arc<Chunk> {
    if let Some(chunk) = spare_chunks().lock().unwrap_or_else(|e| e.into_inner()).pop() {
        return chunk;
    }
    Arc::new(Chunk((0..CHUNK).map(|_| UnsafeCell::new(Packed::default())).collect()))
}

fn new_writer() -> Writer {
    let chunk = new_chunk();
    let chunks = Chunks { list: vec![chunk.clone()], base: 0, taken: 0, times: Timeline::default() };
    let log = Arc::new(Log { chunks: Mutex::new(chunks), published: AtomicUsize::new(0) });
    logs().lock().unwrap_or_else(|e| e.into_inner()).push(log.clone());
    Writer { log, current: chunk, index: 0, total: 0, names: [(0, 0, 0); NAME_CACHE] }
}

/// A timestamp for a spawn: exact every 16th call on a thread, otherwise
/// the thread's last reading (spawns in a loop are microseconds apart).
#[inline]
pub(crate) fn spawn_time() -> u64 {
    with_local(|local| {
        let (t, uses) = local.recent;
        if t != 0 && uses < 16 {
            local.recent = (t, uses + 1);
            t
        } else {
            local.read()
        }
    })
    .unwrap_or_else(now)
}

/// The start of a task run on this thread: a reading, or [`CHAINED`] when
/// the run follows the previous one straight on (module note).
#[inline]
pub(crate) fn run_start() -> u64 {
    let session = ON.load(Ordering::Relaxed);
    with_local(|local| {
        let timing = &mut local.timing;
        let depth = timing.depth + 1;
        if timing.chained && timing.chain_depth == depth && timing.session == session {
            timing.chained = false;
            timing.depth = depth;
            return CHAINED;
        }
        if timing.session != session {
            // Runs left open in an earlier session were skipped with it.
            (timing.session, timing.open) = (session, 0);
        }
        let t = local.read();
        local.interrupt(Some(t));
        let timing = &mut local.timing;
        (timing.depth, timing.batch, timing.read_at) = (depth, 1, t);
        t
    })
    .unwrap_or_else(now)
}

/// Records the end of a run that began at `start` (from [`run_start`]).
#[inline]
pub(crate) fn run_end(start: u64, ran: &Ran) {
    with_local(|local| {
        let timing = &mut local.timing;
        let depth = timing.depth;
        timing.depth = depth.saturating_sub(1);
        let timed = (1..=MAX_DEPTH).contains(&(depth as usize));
        let fixed = if timed { std::mem::take(&mut timing.fixed[depth as usize]) } else { 0 };
        let start = match (start, fixed) {
            (CHAINED, 0) => None,
            (CHAINED, fixed) => Some(fixed),
            (start, _) => Some(start),
        };
        let in_pool = ran.thread != u32::MAX && timed;
        if fixed == 0 && in_pool && timing.chain_depth == depth && timing.open + 1 < timing.batch {
            timing.open += 1;
            timing.chained = true;
            return local.write_run(ran, start, None);
        }
        let end = local.read();
        if local.timing.chain_depth != depth {
            // Runs nested in this one that no pause closed.
            local.close_open(end);
        }
        let timing = &mut local.timing;
        let runs = u64::from(timing.open) + 1;
        let short = fixed == 0 && end.saturating_sub(timing.read_at) < SHORT * runs;
        timing.batch = if short { (timing.batch * 2).min(BATCH_MAX) } else { 1 };
        (timing.open, timing.read_at, timing.chained, timing.chain_depth) = (0, end, in_pool, depth);
        local.write_run(ran, start, Some(end));
    });
}

/// The thread stops going straight from run to run (it looks for work, or
/// goes back to the body of the task that was running others): the next
/// run does not start where the last one ended.
#[inline]
pub(crate) fn pause() {
    if !on() {
        return;
    }
    with_local(|local| {
        let t = (local.timing.open > 0).then(|| local.read());
        local.interrupt(t);
    });
}

/// A timestamp from the cheapest clock with sub-microsecond resolution.
#[inline]
pub(crate) fn now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` has no preconditions on x86_64.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        epoch().elapsed().as_nanos() as u64
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// A pairing of the timestamp clock with wall time, to convert between them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Calibration {
    pub(crate) ticks: u64,
    pub(crate) instant: Instant,
}

impl Calibration {
    pub(crate) fn take() -> Calibration {
        Calibration { ticks: now(), instant: Instant::now() }
    }
}

/// Interns an owned task name so events can hold a `&'static str`.
pub(crate) fn static_name(name: &Name) -> &'static str {
    match name {
        std::borrow::Cow::Borrowed(s) => s,
        std::borrow::Cow::Owned(s) => intern(s),
    }
}

#[cold]
fn intern(s: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<std::collections::HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&known) = names.get(s) {
        return known;
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A run's facts for tests.
    pub(super) fn ran(task: u64) -> Ran {
        Ran { task, name: "short", spawned: 7, worker: 1, thread: 3, failed: false }
    }

    /// Runs `runs` bodies of `spin` clock ticks each on a fresh thread the way
    /// a pool worker does, nesting `nested` of them inside the third, and
    /// returns the runs collected with the readings taken around them.
    fn timed_runs(runs: u64, spin: u64, nested: u64) -> (Vec<Event>, u64, u64) {
        let busy = move || {
            let t = now();
            while now() - t < spin {}
        };
        let thread = std::thread::spawn(move || {
            let first = now();
            for task in 0..runs {
                let start = run_start();
                busy();
                if task == 2 {
                    for inner in 0..nested {
                        let start = run_start();
                        busy();
                        run_end(start, &ran(1000 + inner));
                    }
                    pause();
                }
                run_end(start, &ran(task));
            }
            pause();
            (first, now())
        });
        let (first, last) = thread.join().expect("the thread ran");
        (collect(), first, last)
    }

    #[test]
    fn recorded_runs_are_ordered_and_within_their_readings() {
        let _on = Session::on();
        for (runs, spin, nested) in [(200, 50, 0), (40, 50_000, 0), (100, 50, 30)] {
            let (events, first, last) = timed_runs(runs, spin, nested);
            let mut mine: Vec<(u64, u64, u64)> = events
                .iter()
                .filter_map(|e| match *e {
                    Event::Run { task, start, end, thread: 3, .. } if task < 2000 => Some((task, start, end)),
                    _ => None,
                })
                .collect();
            assert_eq!(mine.len() as u64, runs + nested, "every run came back ({runs}, {spin}, {nested})");
            let (outer, inner): (Vec<_>, Vec<_>) = mine.drain(..).partition(|r| r.0 < 1000);
            for list in [&outer, &inner] {
                for pair in list.windows(2) {
                    assert!(pair[0].1 <= pair[0].2 && pair[0].2 <= pair[1].1, "in order, apart: {pair:?}");
                }
                assert!(list.iter().all(|r| first <= r.1 && r.2 <= last), "within the thread's readings");
            }
            if spin >= 50_000 {
                assert!(outer.iter().all(|r| r.2 - r.1 >= spin), "long runs are timed exactly: {outer:?}");
            }
            if nested > 0 {
                let host = outer[2];
                assert!(inner.iter().all(|r| host.1 <= r.1 && r.2 <= host.2), "nested runs lie inside their host");
            }
        }
    }

    /// Collection is process-wide: tests that collect take turns.
    pub(super) fn collecting() -> std::sync::MutexGuard<'static, ()> {
        static TURN: Mutex<()> = Mutex::new(());
        TURN.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Turns recording on for a test, and off again.
    pub(super) struct Session {
        _turn: std::sync::MutexGuard<'static, ()>,
    }

    impl Session {
        pub(super) fn on() -> Session {
            let turn = collecting();
            set_on(true);
            skip();
            Session { _turn: turn }
        }
    }

    impl Drop for Session {
        fn drop(&mut self) {
            set_on(false);
        }
    }
}
