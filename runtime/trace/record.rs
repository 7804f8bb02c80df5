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
#[derive(Clone, Copy, Debug)]
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

const CHUNK: usize = 4096;

struct Chunk(Box<[UnsafeCell<Event>]>);

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

struct Writer {
    log: Arc<Log>,
    current: Arc<Chunk>,
    index: Cell<usize>,
    /// Events this thread published in total (only it writes `published`).
    total: Cell<usize>,
}

thread_local! {
    static WRITER: UnsafeCell<Option<Writer>> = const { UnsafeCell::new(None) };
}

/// Appends `event` to this thread's log.
pub(crate) fn record(event: Event) {
    let _ = WRITER.try_with(|cell| {
        // SAFETY: the thread-local is only touched here, by its own thread,
        // and `record` does not re-enter itself.
        let writer = unsafe { &mut *cell.get() };
        let writer = writer.get_or_insert_with(new_writer);
        let index = writer.index.get();
        if index == CHUNK {
            let chunk = new_chunk();
            writer.log.chunks.lock().unwrap_or_else(|e| e.into_inner()).list.push(chunk.clone());
            writer.current = chunk;
            writer.index.set(0);
            return record_at(writer, 0, event);
        }
        record_at(writer, index, event);
    });
}

fn record_at(writer: &Writer, index: usize, event: Event) {
    // SAFETY: slot `index` of the current chunk is unpublished and only
    // this thread writes it.
    unsafe { *writer.current.0[index].get() = event };
    writer.index.set(index + 1);
    let total = writer.total.get() + 1;
    writer.total.set(total);
    // The single writer publishes with a plain store.
    writer.log.published.store(total, Ordering::Release);
}

fn new_chunk() -> Arc<Chunk> {
    let empty = Event::Edge { from: 0, to: 0 };
    Arc::new(Chunk((0..CHUNK).map(|_| UnsafeCell::new(empty)).collect()))
}

fn new_writer() -> Writer {
    let chunk = new_chunk();
    let chunks = Chunks { list: vec![chunk.clone()], base: 0, taken: 0 };
    let log = Arc::new(Log { chunks: Mutex::new(chunks), published: AtomicUsize::new(0) });
    logs().lock().unwrap_or_else(|e| e.into_inner()).push(log.clone());
    Writer { log, current: chunk, index: Cell::new(0), total: Cell::new(0) }
}

/// The events published since the last collection (or [`skip`]), from every
/// thread. Events recorded while collecting land in this collection or the
/// next. Chunks wholly collected are freed.
pub(crate) fn collect() -> Vec<Event> {
    let mut out = Vec::new();
    for log in logs().lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let mut chunks = log.chunks.lock().unwrap_or_else(|e| e.into_inner());
        let published = log.published.load(Ordering::Acquire);
        for index in chunks.taken..published {
            let at = index - chunks.base;
            // SAFETY: slots below the published count were written and
            // published with release ordering (module note).
            out.push(unsafe { *chunks.list[at / CHUNK].0[at % CHUNK].get() });
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
    while chunks.list.len() > 1 && chunks.taken >= chunks.base + CHUNK {
        chunks.list.remove(0);
        chunks.base += CHUNK;
    }
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
