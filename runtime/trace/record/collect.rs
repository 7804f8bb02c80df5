//! Collection: reading every thread's log, and placing the runs recorded
//! without their times between the readings around them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::packed::Raw;
use super::{CHUNK, Chunk, Chunks, Event, Log, Ran, SPARE_MAX, logs, names, spare_chunks};

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
        open: &mut Vec<(Ran, Option<u64>)>,
        ran: Ran,
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
    fn share_out(&mut self, open: &mut Vec<(Ran, Option<u64>)>, end: u64, out: &mut Vec<Event>) {
        self.share_out_to(open, end, true, out);
    }

    /// [`Timeline::share_out`], to an `end` that was read (`closed`) or
    /// guessed.
    fn share_out_to(&mut self, open: &mut Vec<(Ran, Option<u64>)>, end: u64, closed: bool, out: &mut Vec<Event>) {
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

fn run_event(ran: Ran, start: u64, end: u64) -> Event {
    let Ran { task, name, spawned, worker, thread, failed } = ran;
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

/// Collection's view of one thread's run times: where the next run without
/// a recorded start begins, and the share each run of the last batch got.
#[derive(Clone, Copy, Default)]
pub(super) struct Timeline {
    at: u64,
    share: u64,
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Session, collecting, ran};
    use super::super::{new_chunk, record, with_local};
    use super::*;

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
        let run = |task, start, end| Raw::Run { ran: ran(task), start, end };
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
        let Event::Run { spawned, start, .. } = run_event(Ran { spawned: 900, ..ran(1) }, 800, 850) else {
            panic!("a run")
        };
        assert_eq!((spawned, start), (800, 800));
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
