//! Records: a stream of length-prefixed values through a shared-memory
//! ring, the edge of a streaming stage that runs in another process.
//!
//! The ring file is the one [`shm`](super::shm) maps (header page, then
//! data; `head` and `tail` only grow). Here one writer appends records in
//! order and one reader takes them in order:
//!
//! ```text
//! record at a 64-aligned position p:  len (u64) | kind (u64) | len payload bytes (16-aligned)
//! ```
//!
//! A record never straddles the end of the data area: when too little room
//! is left before the end, the writer puts a `Wrap` record there (it always
//! fits: positions are 64-aligned and the capacity a multiple of 64) and
//! starts the record at the beginning of the data area.
//!
//! Protocol:
//! 1. The writer writes a record into free space (`capacity - (head -
//!    tail)`), then publishes it by storing `head` (release).
//! 2. The reader loads `head` (acquire), checks the record's length and
//!    kind against the ring (a bad one is an [`Error::Codec`], never a read
//!    outside the mapping), reads the payload in place, and gives the room
//!    back by storing `tail` (release) past the record.
//! 3. Parking, one flag per side in the header page: a reader that finds
//!    nothing sets `READER_WAITING`, fences (`SeqCst`) and looks at `head`
//!    again; a writer, after publishing, fences and swaps the flag off: if
//!    it was set, the writer rings the reader's doorbell (a small frame on
//!    the socket). Whoever comes second sees the other, so no wake-up is
//!    lost. A writer that finds the ring full does the same with
//!    `WRITER_WAITING` and `tail`.
//!
//! Doorbells, not polling: a parked side costs no CPU, and a busy pipeline
//! rings rarely (only when the other side went idle), so the socket carries
//! a few small frames however many elements flow.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering, fence};

use super::shm::{HEAD, Mapping, REGION_ALIGN, TAIL};
use super::wire::{ALIGN, BlobWriter};
use crate::Error;

const READER_WAITING: usize = 192;
const WRITER_WAITING: usize = 256;
/// The record header: length and kind.
const RECORD_HEAD: u64 = 16;

/// What a record carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One archived element or result.
    Value = 1,
    /// The stream ended; nothing follows.
    End = 2,
    /// The stage panicked; the payload is the message (UTF-8).
    Panicked = 3,
    /// The stage could not go on; the payload is the message (UTF-8).
    Failed = 4,
    /// Padding to the end of the data area.
    Wrap = 5,
}

impl Kind {
    fn from_word(w: u64) -> Option<Kind> {
        Some(match w {
            1 => Kind::Value,
            2 => Kind::End,
            3 => Kind::Panicked,
            4 => Kind::Failed,
            5 => Kind::Wrap,
            _ => return None,
        })
    }
}

/// A new ring file with its whole data area reserved, so that no write
/// can fault; `Error::Transport` saying so when memory is short.
fn reserved(path: &Path, capacity: u64) -> Result<Mapping, Error> {
    let ring = Mapping::open(path, Some(align_up(capacity)))?;
    if let Err(short) = ring.back(0, ring.capacity) {
        drop(ring);
        let _ = std::fs::remove_file(path);
        return Err(Error::Transport(format!(
            "could not make the {} MiB ring of a stage on another worker at {}: {short}",
            capacity >> 20,
            path.display()
        )));
    }
    Ok(ring)
}

fn align_up(p: u64) -> u64 {
    p.div_ceil(REGION_ALIGN) * REGION_ALIGN
}

/// The writing half of a record ring.
#[derive(Debug)]
pub(crate) struct RecordWriter {
    ring: Mapping,
    head: u64,
}

// SAFETY: the mapping is plain shared memory; all shared words are atomics.
unsafe impl Send for RecordWriter {}

impl RecordWriter {
    /// Creates a ring file at `path` with `capacity` data bytes, all of
    /// them reserved now (a stage's ring is written all over as it turns).
    pub(crate) fn create(path: &Path, capacity: u64) -> Result<RecordWriter, Error> {
        Ok(RecordWriter { ring: reserved(path, capacity)?, head: 0 })
    }

    /// Maps a ring another process created.
    pub(crate) fn open(path: &Path) -> Result<RecordWriter, Error> {
        let ring = Mapping::open(path, None)?;
        let head = ring.counter(HEAD).load(Ordering::Acquire);
        Ok(RecordWriter { ring, head })
    }

    /// The largest payload a record can have in this ring.
    pub(crate) fn max_payload(&self) -> usize {
        (self.ring.capacity - RECORD_HEAD) as usize
    }

    /// Room for a payload of `len` bytes: the data offset of its record,
    /// writing a `Wrap` record first when needed. `None` when full.
    fn room(&mut self, len: u64) -> Option<u64> {
        let cap = self.ring.capacity;
        let need = align_up(RECORD_HEAD + len);
        if need > cap {
            return None;
        }
        let tail = self.ring.counter(TAIL).load(Ordering::Acquire);
        let free = cap - (self.head - tail);
        let offset = self.head % cap;
        let to_end = cap - offset;
        if to_end >= need {
            return (free >= need).then_some(offset);
        }
        if free < to_end + need {
            return None;
        }
        self.write_head(offset, 0, Kind::Wrap);
        self.head += to_end;
        Some(0)
    }

    fn write_head(&mut self, offset: u64, len: u64, kind: Kind) {
        // SAFETY: `offset` is 64-aligned and at least 64 bytes before the
        // end of the data area, in free space (checked by `room`).
        unsafe {
            let p = self.ring.data().add(offset as usize) as *mut u64;
            p.write(len);
            p.add(1).write(kind as u64);
        }
    }

    fn publish(&mut self, offset: u64, len: u64, kind: Kind) {
        self.write_head(offset, len, kind);
        self.head += align_up(RECORD_HEAD + len);
        self.ring.counter(HEAD).store(self.head, Ordering::Release);
    }

    /// Appends a record holding `payload`; `false` when the ring is full.
    pub(crate) fn push(&mut self, kind: Kind, payload: &[u8]) -> bool {
        let len = payload.len() as u64;
        let Some(offset) = self.room(len) else { return false };
        // SAFETY: `room` found `RECORD_HEAD + len` free bytes at `offset`.
        unsafe {
            let at = self.ring.data().add((offset + RECORD_HEAD) as usize);
            std::ptr::copy_nonoverlapping(payload.as_ptr(), at, payload.len());
        }
        self.publish(offset, len, kind);
        true
    }

    /// Appends a value archived by `write` straight into the ring, when
    /// at least `hint` bytes are free in one piece. `Ok(false)` when it did
    /// not fit (the caller archives it elsewhere and uses [`push`]).
    ///
    /// [`push`]: RecordWriter::push
    pub(crate) fn push_with(
        &mut self,
        hint: usize,
        write: impl FnOnce(BlobWriter) -> Result<BlobWriter, Error>,
    ) -> Result<bool, Error> {
        let cap = self.ring.capacity;
        let Some(offset) = self.room(hint as u64) else { return Ok(false) };
        let tail = self.ring.counter(TAIL).load(Ordering::Acquire);
        let free = cap - (self.head - tail);
        let room = (cap - offset).min(free) - RECORD_HEAD;
        // SAFETY: `room` bytes after the record head are free and ours
        // until published; the address is 16-aligned (64-aligned + 16).
        let writer = unsafe { BlobWriter::fixed(self.ring.data().add((offset + RECORD_HEAD) as usize), room as usize) };
        match write(writer) {
            Ok(w) => {
                let len = w.len() as u64;
                self.publish(offset, len, Kind::Value);
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    /// After publishing: whether the reader parked (and must be woken).
    pub(crate) fn take_reader_waiting(&self) -> bool {
        fence(Ordering::SeqCst);
        let flag = self.ring.counter(READER_WAITING);
        flag.load(Ordering::Relaxed) != 0 && flag.swap(0, Ordering::AcqRel) != 0
    }

    /// Parks until a payload of `len` bytes fits; `false` if it fits now.
    pub(crate) fn park(&mut self, len: usize) -> bool {
        let flag = self.ring.counter(WRITER_WAITING);
        flag.store(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.fits(len) {
            flag.store(0, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Whether a payload of `len` bytes fits now.
    pub(crate) fn fits(&self, len: usize) -> bool {
        let cap = self.ring.capacity;
        let need = align_up(RECORD_HEAD + len as u64);
        let tail = self.ring.counter(TAIL).load(Ordering::Acquire);
        let free = cap - (self.head - tail);
        let to_end = cap - self.head % cap;
        if to_end >= need { free >= need } else { free >= to_end + need }
    }
}

/// The reading half of a record ring.
#[derive(Debug)]
pub(crate) struct RecordReader {
    ring: Mapping,
    pos: u64,
    /// The record `peek` found: its end.
    next: Option<u64>,
}

// SAFETY: as for `RecordWriter`.
unsafe impl Send for RecordReader {}

impl RecordReader {
    /// Creates a ring file at `path` that another process will write to.
    pub(crate) fn create(path: &Path, capacity: u64) -> Result<RecordReader, Error> {
        Ok(RecordReader { ring: reserved(path, capacity)?, pos: 0, next: None })
    }

    /// Maps a ring another process created.
    pub(crate) fn open(path: &Path) -> Result<RecordReader, Error> {
        let ring = Mapping::open(path, None)?;
        let pos = ring.counter(TAIL).load(Ordering::Acquire);
        Ok(RecordReader { ring, pos, next: None })
    }

    fn head(&self) -> u64 {
        self.ring.counter(HEAD).load(Ordering::Acquire)
    }

    /// The next record, checked, read in place; `None` when there is none yet.
    pub(crate) fn peek(&mut self) -> Result<Option<(Kind, &[u8])>, Error> {
        let cap = self.ring.capacity;
        loop {
            let head = self.head();
            if head <= self.pos {
                return Ok(None);
            }
            let offset = self.pos % cap;
            let corrupt =
                |what: String| Err(Error::Codec(format!("a streaming record at ring position {}: {what}", self.pos)));
            if !offset.is_multiple_of(REGION_ALIGN) || head - self.pos < RECORD_HEAD {
                return corrupt(format!("misplaced (the writer is at {head})"));
            }
            // SAFETY: `offset` is 64-aligned inside the data area, and the
            // writer published at least the record head there (head, acquire).
            let (len, kind) = unsafe {
                let p = self.ring.data().add(offset as usize) as *const u64;
                (p.read(), p.add(1).read())
            };
            let Some(kind) = Kind::from_word(kind) else { return corrupt(format!("unknown kind {kind}")) };
            if kind == Kind::Wrap {
                // A writer wraps only when the record does not fit before
                // the end, so never at the start: a wrap there would send
                // this loop round the ring for ever (the ring file comes
                // from another process).
                if offset == 0 {
                    return corrupt("a wrap at the start of the ring".to_owned());
                }
                self.pos += cap - offset;
                self.ring.counter(TAIL).store(self.pos, Ordering::Release);
                continue;
            }
            let end = offset.checked_add(RECORD_HEAD).and_then(|o| o.checked_add(len));
            if end.is_none_or(|e| e > cap) || self.pos + RECORD_HEAD + len > head {
                return corrupt(format!("{len} bytes do not fit the ring's {cap} (the writer is at {head})"));
            }
            self.next = Some(align_up(self.pos + RECORD_HEAD + len));
            // SAFETY: checked above: inside the data area and published; the
            // writer does not touch it before `advance` moves `tail` past it.
            let payload = unsafe {
                std::slice::from_raw_parts(self.ring.data().add((offset + RECORD_HEAD) as usize), len as usize)
            };
            debug_assert!((payload.as_ptr() as usize).is_multiple_of(ALIGN));
            return Ok(Some((kind, payload)));
        }
    }

    /// Gives the record `peek` returned back to the writer.
    pub(crate) fn advance(&mut self) {
        if let Some(next) = self.next.take() {
            self.pos = next;
            self.ring.counter(TAIL).store(next, Ordering::Release);
        }
    }

    /// Whether a record is there now.
    pub(crate) fn ready(&self) -> bool {
        self.head() > self.pos
    }

    /// Parks until a record arrives; `false` if one is there now.
    pub(crate) fn park(&mut self) -> bool {
        let flag = self.ring.counter(READER_WAITING);
        flag.store(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.ready() {
            flag.store(0, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// After giving room back: whether the writer parked (and must be woken).
    pub(crate) fn take_writer_waiting(&self) -> bool {
        fence(Ordering::SeqCst);
        let flag: &AtomicU64 = self.ring.counter(WRITER_WAITING);
        flag.load(Ordering::Relaxed) != 0 && flag.swap(0, Ordering::AcqRel) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::shm::ring_path;

    fn pair(cap: u64) -> (RecordWriter, RecordReader, std::path::PathBuf) {
        use std::hash::{BuildHasher, RandomState};
        let salt = RandomState::new().hash_one(std::time::Instant::now());
        let path = ring_path(&format!("dirk-test-records-{}-{salt}", std::process::id()));
        let r = RecordReader::create(&path, cap).unwrap();
        let w = RecordWriter::open(&path).unwrap();
        (w, r, path)
    }

    #[test]
    fn records_arrive_in_order_and_wrap() {
        let (mut w, mut r, path) = pair(1024);
        let mut sent = 0u8;
        let mut got = 0u8;
        for _ in 0..200 {
            while w.push(Kind::Value, &[sent; 100]) {
                sent = sent.wrapping_add(1);
            }
            while let Some((kind, bytes)) = r.peek().unwrap() {
                assert_eq!((kind, bytes), (Kind::Value, &[got; 100][..]));
                got = got.wrapping_add(1);
                r.advance();
            }
        }
        assert_eq!(sent, got);
        assert!(!w.push(Kind::Value, &[0; 2000]), "larger than the ring");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn parking_sees_the_other_side() {
        let (mut w, mut r, path) = pair(256);
        assert!(r.park(), "nothing to read: parks");
        assert!(w.push(Kind::End, &[]));
        assert!(w.take_reader_waiting(), "the writer sees the parked reader");
        assert!(!w.take_reader_waiting(), "once");
        assert!(!r.park(), "a record is there");
        while w.push(Kind::Value, &[1; 32]) {}
        assert!(w.park(32));
        r.peek().unwrap();
        r.advance();
        assert!(r.take_writer_waiting());
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_corrupt_record_is_a_codec_error() {
        let (mut w, mut r, path) = pair(1024);
        assert!(w.push(Kind::Value, &[7; 40]));
        // SAFETY: test: scribble over the published record's length and kind.
        unsafe { (w.ring.data() as *mut u64).write(1 << 40) };
        assert!(matches!(r.peek(), Err(Error::Codec(m)) if m.contains("do not fit")));
        // SAFETY: as above.
        unsafe { (w.ring.data() as *mut u64).add(1).write(99) };
        assert!(matches!(r.peek(), Err(Error::Codec(m)) if m.contains("unknown kind 99")));
        std::fs::remove_file(path).unwrap();
    }
}
