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
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ran {
    pub(crate) task: u64,
    pub(crate) name: &'static str,
    /// When the task was spawned, 0 if that was not recorded.
    pub(crate) spawned: u64,
    pub(crate) worker: u32,
    pub(crate) thread: u32,
    pub(crate) failed: bool,
}

/// An event as a log stores it: four words (32 bytes, two events to a
/// cache line), built in registers and stored word by word.
///
/// | kind  | word 0 | word 1 | word 2: low, high      | word 3: bits 0-31, 32-47, 48-55, 56-63 |
/// |-------|--------|--------|------------------------|-----------------------------------------|
/// | run   | task   | start  | name id, end-start     | start-spawned, thread, worker, kind     |
/// | edge  | from   | to     |                        | kind                                    |
/// | moved | task   | at     | bytes                  | to (bits 32-47), from, kind             |
/// | chain |        | at     |                        | kind                                    |
///
/// A run whose start was not read (`CHAINED_START`: it began where the
/// thread's previous run ended) keeps its end in word 1 and end-spawned in
/// word 2's high half; one whose end was not read either (`OPEN_END` too)
/// keeps the spawn time itself in word 1. `OPEN_END` alone: word 1 is the
/// start. Spans are [`span`]-encoded; a thread outside the pool is
/// `u16::MAX`, an unrecorded spawn is `NO_SPAN`. Workers fit a byte (a
/// cluster has at most 64) and threads 16 bits.
#[derive(Clone, Copy, Default)]
struct Packed([u64; 4]);

const EDGE: u64 = 1;
const RUN: u64 = 2;
const MOVED: u64 = 3;
/// The runs this thread recorded without their end since its last reading
/// ended at `at`.
const CHAIN: u64 = 4;
const KIND: u64 = 0x1f;
/// With `RUN`: the start was not read.
const CHAINED_START: u64 = 0x20;
/// With `RUN`: the end was not read.
const OPEN_END: u64 = 0x40;
/// With `RUN`: the body panicked.
const FAILED: u64 = 0x80;
const NO_SPAN: u32 = u32::MAX;
const LONG: u32 = 1 << 31;

/// A span of clock ticks in 32 bits: exact below 2^31 ticks (about a
/// second), in steps of 2^16 ticks (tens of microseconds) above.
fn span(ticks: u64) -> u32 {
    if ticks < u64::from(LONG) { ticks as u32 } else { LONG | (ticks >> 16).min(u64::from(LONG - 2)) as u32 }
}

fn unspan(span: u32) -> u64 {
    if span & LONG == 0 { u64::from(span) } else { u64::from(span & !LONG) << 16 }
}

/// The span from `spawned` to `t`, or `NO_SPAN` when the spawn was not
/// recorded.
fn since_spawn(spawned: u64, t: u64) -> u32 {
    if spawned == 0 { NO_SPAN } else { span(t.saturating_sub(spawned)) }
}

/// Word 3: a 32-bit field, a 16-bit one, a byte and the kind.
fn word3(low: u32, mid: u32, byte: u32, kind: u64) -> u64 {
    u64::from(low) | u64::from(mid.min(u32::from(u16::MAX))) << 32 | u64::from(byte.min(255)) << 48 | kind << 56
}

/// An event as collection reads it back: a run may lack its start (it
/// began where the thread's previous run ended) or its end (the next
/// reading on the thread bounds it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Raw {
    Event(Event),
    Run { ran: RanFields, start: Option<u64>, end: Option<u64> },
    Chain(u64),
}

/// [`Ran`] with its name resolved, comparable for tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RanFields {
    task: u64,
    name: &'static str,
    spawned: u64,
    worker: u32,
    thread: u32,
    failed: bool,
}

impl Packed {
    #[inline]
    fn pack(event: Event, name_id: impl FnOnce(&'static str) -> u32) -> Packed {
        match event {
            Event::Edge { from, to } => Packed([from, to, 0, EDGE << 56]),
            Event::Run { task, name, spawned, worker, thread, start, end, failed } => {
                let ran = Ran { task, name, spawned, worker, thread, failed };
                Packed::run(&ran, name_id(name), Some(start), Some(end))
            }
            Event::Moved { task, bytes, from, to, at } => Packed([task, at, bytes, word3(0, to, from, MOVED)]),
            // Not a recorded kind: reads back as nothing.
            Event::Shared { .. } => Packed::default(),
        }
    }

    #[inline]
    fn run(ran: &Ran, name: u32, start: Option<u64>, end: Option<u64>) -> Packed {
        let kind = RUN | if ran.failed { FAILED } else { 0 };
        let name = u64::from(name);
        let (one, two, low, kind) = match (start, end) {
            (Some(start), Some(end)) => {
                (start, name | u64::from(span(end.saturating_sub(start))) << 32, since_spawn(ran.spawned, start), kind)
            }
            (Some(start), None) => (start, name, since_spawn(ran.spawned, start), kind | OPEN_END),
            (None, Some(end)) => {
                (end, name | u64::from(since_spawn(ran.spawned, end)) << 32, NO_SPAN, kind | CHAINED_START)
            }
            (None, None) => (ran.spawned, name, NO_SPAN, kind | CHAINED_START | OPEN_END),
        };
        Packed([ran.task, one, two, word3(low, ran.thread, ran.worker, kind)])
    }

    fn chain(at: u64) -> Packed {
        Packed([0, at, 0, CHAIN << 56])
    }

    fn unpack(self, names: &[&'static str]) -> Option<Raw> {
        let [a, b, c, d] = self.0;
        let (low, mid, byte, kind) = (d as u32, (d >> 32) as u16, u32::from((d >> 48) as u8), d >> 56);
        let high = (c >> 32) as u32;
        Some(match kind & KIND {
            EDGE => Raw::Event(Event::Edge { from: a, to: b }),
            RUN => {
                let back = |span: u32, from: u64| if span == NO_SPAN { 0 } else { from.saturating_sub(unspan(span)) };
                let (start, end, spawned) = match (kind & CHAINED_START != 0, kind & OPEN_END != 0) {
                    (false, false) => (Some(b), Some(b + unspan(high)), back(low, b)),
                    (false, true) => (Some(b), None, back(low, b)),
                    (true, false) => (None, Some(b), back(high, b)),
                    (true, true) => (None, None, b),
                };
                let ran = RanFields {
                    task: a,
                    name: names.get(c as u32 as usize).copied().unwrap_or("?"),
                    spawned,
                    worker: byte,
                    thread: if mid == u16::MAX { u32::MAX } else { u32::from(mid) },
                    failed: kind & FAILED != 0,
                };
                Raw::Run { ran, start, end }
            }
            MOVED => Raw::Event(Event::Moved { task: a, bytes: c, from: byte, to: u32::from(mid), at: b }),
            CHAIN => Raw::Chain(b),
            _ => return None,
        })
    }
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

/// Collection's view of one thread's run times: where the next run without
/// a recorded start begins, and the share each run of the last batch got.
#[derive(Clone, Copy, Default)]
struct Timeline {
    at: u64,
    share: u64,
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
        let timing = &self.timing;
        let chain_at = match t {
            Some(t) if timing.open > 0 => t,
            _ => timing.read_at,
        };
        if let Some(t) = t {
            self.close_open(t);
        }
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

/// The events published since the last collection (or [`skip`]), from every
/// thread, with the times of runs that shared readings worked out. Events
/// recorded while collecting land in this collection or the next. Chunks
/// wholly collected are kept for reuse.
pub(crate) fn collect() -> Vec<Event> {
    let mut out = Vec::new();
    let names = names().lock().unwrap_or_else(|e| e.into_inner()).list.clone();
    take_all(&names, |events| out.append(events));
    out
}

/// Drops every event published so far, so the next [`collect`] starts now.
pub(crate) fn skip() {
    take_all(&[], Vec::clear);
}

/// Takes every log's new events and hands them to `f`, log by log. The
/// logs of threads that ended go once their events are taken, their
/// chunks kept for reuse.
fn take_all(names: &[&'static str], mut f: impl FnMut(&mut Vec<Event>)) {
    let mut events = Vec::new();
    logs().lock().unwrap_or_else(|e| e.into_inner()).retain_mut(|log| {
        // Only the list holds the log once its thread's writer is dropped;
        // `get_mut` then also makes the writer's last events visible here.
        let ended = Arc::get_mut(log).is_some();
        take(log, names, &mut events);
        f(&mut events);
        if ended {
            let mut chunks = log.chunks.lock().unwrap_or_else(|e| e.into_inner());
            keep_spare(std::mem::take(&mut chunks.list));
        }
        !ended
    });
}

/// Reads `log`'s events published since the last time into `out`.
fn take(log: &Log, names: &[&'static str], out: &mut Vec<Event>) {
    let mut chunks = log.chunks.lock().unwrap_or_else(|e| e.into_inner());
    let published = log.published.load(Ordering::Acquire);
    let mut times = chunks.times;
    let mut open = Vec::new();
    for index in chunks.taken..published {
        let at = index - chunks.base;
        // SAFETY: slots below the published count were written and
        // published with release ordering (module note).
        let packed = unsafe { *chunks.list[at / CHUNK].0[at % CHUNK].get() };
        match packed.unpack(names) {
            Some(Raw::Event(event)) => out.push(event),
            Some(Raw::Chain(t)) => times.share_out(&mut open, t, out),
            Some(Raw::Run { ran, start, end }) => times.add_run(&mut open, ran, start, end, out),
            None => {}
        }
    }
    // Runs whose end no reading bounds yet (the thread is still going, or
    // stopped before its next reading) take the last share each.
    let guess = times.at + times.share * open.len() as u64;
    times.share_out_to(&mut open, guess, false, out);
    chunks.times = times;
    chunks.taken = published;
    release_taken(&mut chunks);
}

impl Timeline {
    /// Places one run read back from a thread's log.
    fn add_run(
        &mut self,
        open: &mut Vec<(RanFields, Option<u64>)>,
        ran: RanFields,
        start: Option<u64>,
        end: Option<u64>,
        out: &mut Vec<Event>,
    ) {
        if let Some(start) = start {
            // A run timed from its own reading follows the open ones.
            self.share_out(open, start, out);
            self.at = start;
        }
        match end {
            None => open.push((ran, start)),
            Some(end) if open.is_empty() => {
                if start.is_none() {
                    out.push(Event::Shared { runs: 1, chained: true, closed: true });
                }
                out.push(run_event(ran, start.unwrap_or(self.at), end));
                self.at = end;
            }
            Some(end) => {
                open.push((ran, start));
                self.share_out(open, end, out);
            }
        }
    }

    /// Ends the open runs by `end`, sharing the time since the last reading
    /// evenly among them in their order.
    fn share_out(&mut self, open: &mut Vec<(RanFields, Option<u64>)>, end: u64, out: &mut Vec<Event>) {
        self.share_out_to(open, end, true, out);
    }

    /// [`Timeline::share_out`], to an `end` that was read (`closed`) or
    /// guessed.
    fn share_out_to(&mut self, open: &mut Vec<(RanFields, Option<u64>)>, end: u64, closed: bool, out: &mut Vec<Event>) {
        if open.is_empty() {
            self.at = self.at.max(end);
            return;
        }
        let chained = open[0].1.is_none();
        let from = open[0].1.unwrap_or(self.at).min(end);
        let runs = open.len() as u64;
        self.share = (end - from) / runs;
        if runs > 1 || chained || !closed {
            out.push(Event::Shared { runs: runs as u32, chained, closed });
        }
        for (i, (ran, _)) in open.drain(..).enumerate() {
            let start = from + self.share * i as u64;
            let stop = if i as u64 + 1 == runs { end } else { start + self.share };
            out.push(run_event(ran, start, stop));
        }
        self.at = end;
    }
}

fn run_event(ran: RanFields, start: u64, end: u64) -> Event {
    let RanFields { task, name, spawned, worker, thread, failed } = ran;
    // A spawn time is a recent reading, not a fresh one: never after the start.
    let spawned = if spawned == 0 { 0 } else { spawned.min(start) };
    Event::Run { task, name, spawned, worker, thread, start, end, failed }
}

/// Keeps chunks whose events are all taken for reuse, but the writer's
/// current one.
fn release_taken(chunks: &mut Chunks) {
    let mut freed = Vec::new();
    while chunks.list.len() > 1 && chunks.taken >= chunks.base + CHUNK {
        freed.push(chunks.list.remove(0));
        chunks.base += CHUNK;
    }
    keep_spare(freed);
}

/// Keeps chunks nobody writes any more for reuse, up to [`SPARE_MAX`].
fn keep_spare(chunks: Vec<Arc<Chunk>>) {
    if chunks.is_empty() {
        return;
    }
    // Only the log held them (a writer holds its current chunk, and a live
    // writer's current chunk is never passed here): nobody reads or writes
    // them any more.
    let mut spare = spare_chunks().lock().unwrap_or_else(|e| e.into_inner());
    let room = SPARE_MAX.saturating_sub(spare.len());
    spare.extend(chunks.into_iter().filter(|c| Arc::strong_count(c) == 1).take(room));
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
mod tests {
    use super::*;

    fn round_trip(event: Event) -> Event {
        let mut names = Vec::new();
        let packed = Packed::pack(event, |name| {
            names.push(name);
            names.len() as u32 - 1
        });
        match packed.unpack(&names).expect("a known kind") {
            Raw::Event(event) => event,
            Raw::Run { ran, start: Some(start), end: Some(end) } => run_event(ran, start, end),
            other => panic!("an exact event came back as {other:?}"),
        }
    }

    fn ran(task: u64) -> Ran {
        Ran { task, name: "short", spawned: 7, worker: 1, thread: 3, failed: false }
    }

    fn fields(task: u64) -> RanFields {
        let Ran { task, name, spawned, worker, thread, failed } = ran(task);
        RanFields { task, name, spawned, worker, thread, failed }
    }

    /// Packs a run with the given readings and reads it back.
    fn run_round_trip(start: Option<u64>, end: Option<u64>) -> Raw {
        Packed::run(&ran(9), 0, start, end).unpack(&["short"]).expect("a run")
    }

    #[test]
    fn runs_keep_the_readings_they_have() {
        for (start, end) in [(Some(100), Some(250)), (Some(100), None), (None, Some(250)), (None, None)] {
            assert_eq!(run_round_trip(start, end), Raw::Run { ran: fields(9), start, end }, "{start:?} {end:?}");
        }
        let unspawned = Ran { spawned: 0, ..ran(9) };
        let Some(Raw::Run { ran, .. }) = Packed::run(&unspawned, 0, None, Some(250)).unpack(&["short"]) else {
            panic!("a run")
        };
        assert_eq!(ran.spawned, 0, "no spawn time stays none");
        assert_eq!(Packed::chain(1234).unpack(&[]), Some(Raw::Chain(1234)));
    }

    /// Reads `raws` as collection does, from a timeline standing at `at`.
    fn place(at: u64, raws: &[Raw]) -> Vec<(u64, u64, u64)> {
        let (mut times, mut open, mut out) = (Timeline { at, share: 0 }, Vec::new(), Vec::new());
        for raw in raws {
            match *raw {
                Raw::Chain(t) => times.share_out(&mut open, t, &mut out),
                Raw::Run { ran, start, end } => times.add_run(&mut open, ran, start, end, &mut out),
                Raw::Event(e) => out.push(e),
            }
        }
        let guess = times.at + times.share * open.len() as u64;
        times.share_out(&mut open, guess, &mut out);
        out.iter()
            .filter_map(|e| match *e {
                Event::Run { task, start, end, .. } => Some((task, start, end)),
                Event::Shared { .. } => None,
                _ => panic!("runs only"),
            })
            .collect()
    }

    #[test]
    fn runs_between_two_readings_share_the_time_in_order() {
        let run = |task, start, end| Raw::Run { ran: fields(task), start, end };
        // Chained from 1000: three open runs, then one whose end was read.
        let placed =
            place(1000, &[run(1, None, None), run(2, None, None), run(3, None, None), run(4, None, Some(1400))]);
        assert_eq!(placed, [(1, 1000, 1100), (2, 1100, 1200), (3, 1200, 1300), (4, 1300, 1400)]);
        // A chain mark ends open runs; a run timed from its own start follows.
        let placed =
            place(0, &[run(1, Some(500), None), run(2, None, None), Raw::Chain(700), run(3, Some(900), Some(950))]);
        assert_eq!(placed, [(1, 500, 600), (2, 600, 700), (3, 900, 950)]);
        // Runs no reading bounds yet take the last share each.
        let placed =
            place(0, &[run(1, Some(100), None), run(2, None, Some(300)), run(3, None, None), run(4, None, None)]);
        assert_eq!(placed, [(1, 100, 200), (2, 200, 300), (3, 300, 400), (4, 400, 500)]);
    }

    #[test]
    fn the_log_of_an_ended_thread_goes_once_collected() {
        let _on = Session::on();
        let log = std::thread::spawn(|| {
            record(Event::Edge { from: 41, to: 42 });
            with_local(|local| Arc::as_ptr(&local.writer().log) as usize).expect("the thread records")
        })
        .join()
        .expect("the thread ran");
        let listed = || logs().lock().unwrap().iter().any(|l| Arc::as_ptr(l) as usize == log);
        assert!(listed(), "a log stays until its events are taken");
        let events = collect();
        assert!(events.contains(&Event::Edge { from: 41, to: 42 }), "its events are collected first");
        assert!(!listed(), "then the log goes");
    }

    #[test]
    fn a_spawn_time_never_follows_the_start() {
        let Event::Run { spawned, start, .. } = run_event(RanFields { spawned: 900, ..fields(1) }, 800, 850) else {
            panic!("a run")
        };
        assert_eq!((spawned, start), (800, 800));
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
    fn collecting() -> std::sync::MutexGuard<'static, ()> {
        static TURN: Mutex<()> = Mutex::new(());
        TURN.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Turns recording on for a test, and off again.
    struct Session {
        _turn: std::sync::MutexGuard<'static, ()>,
    }

    impl Session {
        fn on() -> Session {
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

    #[test]
    fn events_survive_packing() {
        let run = Event::Run {
            task: u64::MAX - 3,
            name: "stage",
            spawned: 1_000,
            worker: 63,
            thread: 7,
            start: 5_000,
            end: 9_999,
            failed: true,
        };
        assert_eq!(round_trip(run), run);
        let outside = Event::Run {
            task: 2,
            name: "free",
            spawned: 0,
            worker: 0,
            thread: u32::MAX,
            start: 10,
            end: 10,
            failed: false,
        };
        assert_eq!(round_trip(outside), outside);
        let edge = Event::Edge { from: 1 << 40, to: (1 << 40) + 1 };
        assert_eq!(round_trip(edge), edge);
        let moved = Event::Moved { task: 9, bytes: (5 << 32) + 17, from: 2, to: 3, at: 123_456 };
        assert_eq!(round_trip(moved), moved);
    }

    #[test]
    fn long_spans_keep_their_length_to_within_a_step() {
        let start = 1 << 50;
        let (took, waited) = (3u64 << 40, 1u64 << 33);
        let run = Event::Run {
            task: 1,
            name: "long",
            spawned: start - waited,
            worker: 0,
            thread: 0,
            start,
            end: start + took,
            failed: false,
        };
        let Event::Run { spawned, end, .. } = round_trip(run) else { panic!("a run") };
        assert!((end - start).abs_diff(took) < 1 << 16, "took {} for {took}", end - start);
        assert!((start - spawned).abs_diff(waited) < 1 << 16, "waited {} for {waited}", start - spawned);
        assert_eq!(unspan(span(u64::MAX)), u64::from(LONG - 2) << 16, "saturates");
    }

    #[test]
    fn a_packed_event_is_half_a_cache_line() {
        assert_eq!(std::mem::size_of::<Packed>(), 32);
    }

    #[test]
    fn collected_chunks_are_kept_for_the_next_recording() {
        let _turn = collecting();
        let edges = 2 * CHUNK + 10;
        std::thread::spawn(move || {
            for i in 0..edges as u64 {
                record(Event::Edge { from: i, to: i + 1 });
            }
        })
        .join()
        .unwrap();
        let ours = collect().iter().filter(|e| matches!(e, Event::Edge { from, to } if *to == from + 1)).count();
        assert!(ours >= edges, "{ours} of {edges} events collected");
        let kept: Vec<usize> = spare_chunks().lock().unwrap().iter().map(|c| Arc::as_ptr(c) as usize).collect();
        assert!(kept.len() >= 2, "the two full chunks were kept ({} kept)", kept.len());
        let reused = new_chunk();
        assert!(kept.contains(&(Arc::as_ptr(&reused) as usize)), "a new chunk comes from the kept ones");
    }
}
