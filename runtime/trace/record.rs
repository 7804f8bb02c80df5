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

use std::cell::{Cell, UnsafeCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use crate::error::Name;

static ON: AtomicBool = AtomicBool::new(false);

/// Whether tracing is recording.
#[inline]
pub(crate) fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

pub(crate) fn set_on(on: bool) {
    ON.store(on, Ordering::SeqCst);
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
}

/// An event as a log stores it: four words (32 bytes, two events to a
/// cache line), built in registers and stored word by word.
///
/// | kind  | word 0 | word 1 | word 2: low, high      | word 3: bits 0-31, 32-47, 48-55, 56-63 |
/// |-------|--------|--------|------------------------|-----------------------------------------|
/// | run   | task   | start  | name id, end-start     | start-spawned, thread, worker, kind     |
/// | edge  | from   | to     |                        | kind                                    |
/// | moved | task   | at     | bytes                  | to (bits 32-47), from, kind             |
///
/// Spans are [`span`]-encoded; a thread outside the pool is `u16::MAX`, an
/// unrecorded spawn is `NO_SPAN`. Workers fit a byte (a cluster has at most
/// 64) and threads 16 bits.
#[derive(Clone, Copy, Default)]
struct Packed([u64; 4]);

const EDGE: u64 = 1;
const RUN: u64 = 2;
const MOVED: u64 = 3;
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

/// Word 3: a 32-bit field, a 16-bit one, a byte and the kind.
fn word3(low: u32, mid: u32, byte: u32, kind: u64) -> u64 {
    u64::from(low) | u64::from(mid.min(u32::from(u16::MAX))) << 32 | u64::from(byte.min(255)) << 48 | kind << 56
}

impl Packed {
    #[inline]
    fn pack(event: Event, name_id: impl FnOnce(&'static str) -> u32) -> Packed {
        match event {
            Event::Edge { from, to } => Packed([from, to, 0, EDGE << 56]),
            Event::Run { task, name, spawned, worker, thread, start, end, failed } => {
                let took = span(end.saturating_sub(start));
                let waited = if spawned == 0 { NO_SPAN } else { span(start.saturating_sub(spawned)) };
                let kind = RUN | if failed { FAILED } else { 0 };
                Packed([
                    task,
                    start,
                    u64::from(name_id(name)) | u64::from(took) << 32,
                    word3(waited, thread, worker, kind),
                ])
            }
            Event::Moved { task, bytes, from, to, at } => Packed([task, at, bytes, word3(0, to, from, MOVED)]),
        }
    }

    fn unpack(self, names: &[&'static str]) -> Option<Event> {
        let [a, b, c, d] = self.0;
        let (low, mid, byte, kind) = (d as u32, (d >> 32) as u16, u32::from((d >> 48) as u8), d >> 56);
        Some(match kind & !FAILED {
            EDGE => Event::Edge { from: a, to: b },
            RUN => Event::Run {
                task: a,
                name: names.get(c as u32 as usize).copied().unwrap_or("?"),
                spawned: if low == NO_SPAN { 0 } else { b.saturating_sub(unspan(low)) },
                worker: byte,
                thread: if mid == u16::MAX { u32::MAX } else { u32::from(mid) },
                start: b,
                end: b + unspan((c >> 32) as u32),
                failed: kind & FAILED != 0,
            },
            MOVED => Event::Moved { task: a, bytes: c, from: byte, to: u32::from(mid), at: b },
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
    index: Cell<usize>,
    /// Events this thread published in total (only it writes `published`).
    total: Cell<usize>,
    names: Cell<[(usize, usize, u32); NAME_CACHE]>,
}

impl Writer {
    /// The id of `name`, from this writer's cache or the global table.
    #[inline]
    fn name_id(&self, name: &'static str) -> u32 {
        let key = (name.as_ptr() as usize, name.len());
        let slot = (key.0 >> 3 ^ key.1) % NAME_CACHE;
        // SAFETY: `names` is this writer's own; no reference into it lives.
        let cached = unsafe { (*self.names.as_ptr())[slot] };
        if (cached.0, cached.1) == key {
            return cached.2;
        }
        let id = name_id_slow(name, key);
        // SAFETY: as above.
        unsafe { (*self.names.as_ptr())[slot] = (key.0, key.1, id) };
        id
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

thread_local! {
    static WRITER: UnsafeCell<Option<Writer>> = const { UnsafeCell::new(None) };
}

/// Appends `event` to this thread's log.
#[inline]
pub(crate) fn record(event: Event) {
    let _ = WRITER.try_with(|cell| {
        // SAFETY: the thread-local is only touched here, by its own thread,
        // and `record` does not re-enter itself.
        let writer = unsafe { &mut *cell.get() };
        let writer = writer.get_or_insert_with(new_writer);
        let packed = Packed::pack(event, |name| writer.name_id(name));
        let index = writer.index.get();
        if index == CHUNK {
            return record_in_new_chunk(writer, packed);
        }
        record_at(writer, index, packed);
    });
}

#[cold]
fn record_in_new_chunk(writer: &mut Writer, packed: Packed) {
    let chunk = new_chunk();
    writer.log.chunks.lock().unwrap_or_else(|e| e.into_inner()).list.push(chunk.clone());
    writer.current = chunk;
    writer.index.set(0);
    record_at(writer, 0, packed);
}

#[inline]
fn record_at(writer: &Writer, index: usize, packed: Packed) {
    let slot = writer.current.0[index].get().cast::<u64>();
    for (i, word) in packed.0.into_iter().enumerate() {
        // SAFETY: slot `index` of the current chunk is unpublished and only
        // this thread writes it; a `Packed` is four `u64`s. Volatile keeps
        // the four stores apart: merged, they went through the stack into
        // vector loads that could not take the words from the stores.
        unsafe { slot.add(i).write_volatile(word) };
    }
    writer.index.set(index + 1);
    let total = writer.total.get() + 1;
    writer.total.set(total);
    // The single writer publishes with a plain store.
    writer.log.published.store(total, Ordering::Release);
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
    let chunks = Chunks { list: vec![chunk.clone()], base: 0, taken: 0 };
    let log = Arc::new(Log { chunks: Mutex::new(chunks), published: AtomicUsize::new(0) });
    logs().lock().unwrap_or_else(|e| e.into_inner()).push(log.clone());
    let names = Cell::new([(0, 0, 0); NAME_CACHE]);
    Writer { log, current: chunk, index: Cell::new(0), total: Cell::new(0), names }
}

/// The events published since the last collection (or [`skip`]), from every
/// thread. Events recorded while collecting land in this collection or the
/// next. Chunks wholly collected are freed.
pub(crate) fn collect() -> Vec<Event> {
    let mut out = Vec::new();
    let names = names().lock().unwrap_or_else(|e| e.into_inner()).list.clone();
    for log in logs().lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let mut chunks = log.chunks.lock().unwrap_or_else(|e| e.into_inner());
        let published = log.published.load(Ordering::Acquire);
        for index in chunks.taken..published {
            let at = index - chunks.base;
            // SAFETY: slots below the published count were written and
            // published with release ordering (module note).
            let packed = unsafe { *chunks.list[at / CHUNK].0[at % CHUNK].get() };
            out.extend(packed.unpack(&names));
        }
        chunks.taken = published;
        release_taken(&mut chunks);
    }
    out
}

/// Drops every event published so far, so the next [`collect`] starts now.
pub(crate) fn skip() {
    for log in logs().lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let mut chunks = log.chunks.lock().unwrap_or_else(|e| e.into_inner());
        chunks.taken = log.published.load(Ordering::Acquire);
        release_taken(&mut chunks);
    }
}

/// Frees chunks whose events are all taken, keeping the writer's current one.
fn release_taken(chunks: &mut Chunks) {
    let mut freed = Vec::new();
    while chunks.list.len() > 1 && chunks.taken >= chunks.base + CHUNK {
        freed.push(chunks.list.remove(0));
        chunks.base += CHUNK;
    }
    if freed.is_empty() {
        return;
    }
    // Only the log held them (the writer holds its current chunk, which
    // stays): nobody reads or writes them any more.
    let mut spare = spare_chunks().lock().unwrap_or_else(|e| e.into_inner());
    let room = SPARE_MAX.saturating_sub(spare.len());
    spare.extend(freed.into_iter().filter(|c| Arc::strong_count(c) == 1).take(room));
}

thread_local! {
    /// The last timestamp this thread read, and how many cheap reads used it.
    static RECENT: Cell<(u64, u32)> = const { Cell::new((0, 0)) };
    /// When the task this worker ran last ended, while the worker goes
    /// straight from task to task (0 once it looks for work).
    static LAST_END: Cell<u64> = const { Cell::new(0) };
}

/// A timestamp for a spawn: exact every 8th call on a thread, otherwise
/// the thread's last reading (spawns in a loop are microseconds apart).
#[inline]
pub(crate) fn spawn_time() -> u64 {
    RECENT.with(|r| {
        let (t, uses) = r.get();
        if t != 0 && uses < 8 {
            r.set((t, uses + 1));
            t
        } else {
            let t = now();
            r.set((t, 0));
            t
        }
    })
}

/// The start of a task run: the end of the previous run when the worker
/// went straight on to this one (one clock read per task instead of two).
/// Taking it clears it, so a task run nested inside this one (while this
/// one waits) reads the clock itself.
#[inline]
pub(crate) fn run_start() -> u64 {
    match LAST_END.with(|e| e.replace(0)) {
        0 => now(),
        t => t,
    }
}

/// The end of a task run, remembered as the start of the next one.
#[inline]
pub(crate) fn run_end() -> u64 {
    let t = now();
    LAST_END.with(|e| e.set(t));
    RECENT.with(|r| r.set((t, 0)));
    t
}

/// The worker is about to look for work: the next run's start is not the
/// last run's end.
#[inline]
pub(crate) fn worker_idle() {
    let _ = LAST_END.try_with(|e| e.set(0));
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
        packed.unpack(&names).expect("a known kind")
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
