//! How a log stores an event: four words, and how collection reads them
//! back.

use super::{Event, Ran};

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
pub(super) struct Packed(pub(super) [u64; 4]);

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
pub(super) enum Raw {
    Event(Event),
    Run { ran: Ran, start: Option<u64>, end: Option<u64> },
    Chain(u64),
}

impl Packed {
    #[inline]
    pub(super) fn pack(event: Event, name_id: impl FnOnce(&'static str) -> u32) -> Packed {
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
    pub(super) fn run(ran: &Ran, name: u32, start: Option<u64>, end: Option<u64>) -> Packed {
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

    pub(super) fn chain(at: u64) -> Packed {
        Packed([0, at, 0, CHAIN << 56])
    }

    pub(super) fn unpack(self, names: &[&'static str]) -> Option<Raw> {
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
                let ran = Ran {
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

#[cfg(test)]
mod tests {
    use super::super::tests::ran;
    use super::*;

    fn round_trip(event: Event) -> Event {
        let mut names = Vec::new();
        let packed = Packed::pack(event, |name| {
            names.push(name);
            names.len() as u32 - 1
        });
        match packed.unpack(&names).expect("a known kind") {
            Raw::Event(event) => event,
            Raw::Run { ran, start: Some(start), end: Some(end) } => {
                let Ran { task, name, spawned, worker, thread, failed } = ran;
                Event::Run { task, name, spawned, worker, thread, start, end, failed }
            }
            other => panic!("an exact event came back as {other:?}"),
        }
    }

    /// Packs a run with the given readings and reads it back.
    fn run_round_trip(start: Option<u64>, end: Option<u64>) -> Raw {
        Packed::run(&ran(9), 0, start, end).unpack(&["short"]).expect("a run")
    }

    #[test]
    fn runs_keep_the_readings_they_have() {
        for (start, end) in [(Some(100), Some(250)), (Some(100), None), (None, Some(250)), (None, None)] {
            assert_eq!(run_round_trip(start, end), Raw::Run { ran: ran(9), start, end }, "{start:?} {end:?}");
        }
        let unspawned = Ran { spawned: 0, ..ran(9) };
        let Some(Raw::Run { ran, .. }) = Packed::run(&unspawned, 0, None, Some(250)).unpack(&["short"]) else {
            panic!("a run")
        };
        assert_eq!(ran.spawned, 0, "no spawn time stays none");
        assert_eq!(Packed::chain(1234).unpack(&[]), Some(Raw::Chain(1234)));
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
}
