//! The shared-memory ring: large values between two processes on one host
//! travel through a memory-mapped file instead of the socket, written once
//! by the sender and read in place by the receiver.
//!
//! One ring per direction of a link, one producer process and one consumer
//! process. The file starts with a header page:
//!
//! ```text
//! 0: magic (u64)   8: capacity (u64)   64: head (AtomicU64)   128: tail (AtomicU64)   4096: data
//! ```
//!
//! `head` and `tail` are byte positions that only grow; position `p` lives
//! at data offset `p % capacity`.
//!
//! Protocol:
//! 1. The producer [`reserve`](Producer::reserve)s the contiguous free space
//!    after `head` (wrapping to the start when too little is left before the
//!    end: the skipped bytes become padding owned by the next region),
//!    writes a value into it, and [`commit`](Producer::commit)s the region,
//!    advancing `head` with release ordering. It then names the region
//!    (`start`, `pos`, `len`) in a frame on the socket.
//! 2. The consumer checks that the region lies between `tail` and `head`
//!    and inside the data area ([`Consumer::read`]), reads it in place, and
//!    [`release`](Consumer::release)s it when done. Regions may be released
//!    in any order; `tail` advances (release ordering) over every released
//!    region that starts at it.
//! 3. Free space is `capacity - (head - tail)`: the producer never writes
//!    over a region the consumer has not released.
//!
//! Memory: a ring file is sparse, and a page of a tmpfs (/dev/shm) that
//! cannot be backed when it is first written kills the writer with SIGBUS.
//! So no byte is written that was not reserved first (`fallocate`): the
//! header page when the file is made, and the data area from its start,
//! a few MiB at a time, as far as the producer has needed so far
//! ([`Producer::reserve`]). A ring uses the memory of its largest backlog,
//! not its capacity; when the file system cannot give more, `reserve`
//! says so and the value goes another way (the socket).
//!
//! The two processes trust each other (same binary, same cluster secret);
//! the ring checks positions so that a corrupt frame cannot make the
//! consumer read outside the mapping, and the values read are validated
//! with bytecheck before use.
//!
//! A future streaming edge between processes uses the same two halves: the
//! sending stage reserves, writes one element (or a batch) and commits; the
//! receiving stage reads in place and releases, with the socket carrying
//! only the region's position.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::MmapRaw;

use crate::Error;

const MAGIC: u64 = u64::from_le_bytes(*b"dirkring");
const DATA: usize = 4096;
pub(crate) const HEAD: usize = 64;
pub(crate) const TAIL: usize = 128;
/// Regions start at multiples of this (a cache line; archives need 16).
pub(crate) const REGION_ALIGN: u64 = 64;

/// The data area is reserved in steps of this many bytes (or less, when
/// only that much is left).
const BACKING_STEP: u64 = 4 << 20;

/// One mapped ring file (also the base of [`records`](super::records)).
#[derive(Debug)]
pub(crate) struct Mapping {
    map: MmapRaw,
    file: File,
    pub(crate) capacity: u64,
}

/// Why memory for a ring could not be reserved.
#[derive(Debug)]
pub(crate) struct Short(std::io::Error);

impl std::fmt::Display for Short {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "shared memory is short ({}; /dev/shm may be small, as in a container)", self.0)
    }
}

/// Reserves file bytes `from..to` (allocates the pages of a tmpfs file), so
/// that writing them cannot fault. A file system that cannot reserve
/// (no `fallocate`) is taken as it is.
fn reserve_bytes(file: &File, from: u64, to: u64) -> Result<(), Short> {
    use std::os::fd::AsRawFd;
    if to <= from {
        return Ok(());
    }
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(from), libc::off_t::try_from(to - from)) else {
        return Err(Short(std::io::Error::from(std::io::ErrorKind::InvalidInput)));
    };
    loop {
        // SAFETY: a plain system call on a descriptor `file` owns.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset, len) };
        if rc == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EOPNOTSUPP | libc::ENOSYS) => return Ok(()),
            _ => return Err(Short(error)),
        }
    }
}

impl Mapping {
    /// The shared word at header offset `at` (a multiple of 64 below 4096).
    pub(crate) fn counter(&self, at: usize) -> &AtomicU64 {
        debug_assert!(at.is_multiple_of(64) && at < DATA);
        // SAFETY: `at` is a multiple of 64 below 4096, inside the header page, 8-aligned (the
        // mapping is page-aligned); the page lives as long as `self.map`, and
        // both processes touch these words only atomically.
        unsafe { &*(self.map.as_mut_ptr().add(at) as *const AtomicU64) }
    }

    pub(crate) fn data(&self) -> *mut u8 {
        // SAFETY: the mapping is DATA + capacity bytes long.
        unsafe { self.map.as_mut_ptr().add(DATA) }
    }

    /// Reserves data bytes `from..to` (see the module note).
    pub(crate) fn back(&self, from: u64, to: u64) -> Result<(), Short> {
        reserve_bytes(&self.file, DATA as u64 + from, DATA as u64 + to.min(self.capacity))
    }

    /// How far past `backed` to reserve so that data bytes up to `end` are
    /// backed: a step at a time, not past the capacity.
    pub(crate) fn next_backing(&self, backed: u64, end: u64) -> u64 {
        (end.max(backed + BACKING_STEP)).min(self.capacity)
    }

    pub(crate) fn open(path: &Path, create_capacity: Option<u64>) -> Result<Mapping, Error> {
        let io = |what: &str, e: std::io::Error| Error::Transport(format!("{what} {}: {e}", path.display()));
        let file: File = match create_capacity {
            Some(capacity) => {
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(path)
                    .map_err(|e| io("could not create the shared-memory ring", e))?;
                f.set_len(DATA as u64 + capacity).map_err(|e| io("could not size the shared-memory ring", e))?;
                // The header page is written now: reserve it first.
                if let Err(short) = reserve_bytes(&f, 0, DATA as u64) {
                    drop(f);
                    let _ = std::fs::remove_file(path);
                    return Err(Error::Transport(format!("could not make the ring {}: {short}", path.display())));
                }
                f
            }
            None => OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(|e| io("could not open the shared-memory ring", e))?,
        };
        let len = file.metadata().map_err(|e| io("could not read", e))?.len();
        let map = MmapRaw::map_raw(&file).map_err(|e| io("could not map", e))?;
        // SAFETY: the first page is mapped (the file is at least DATA long
        // once created; checked below for an opened one before use).
        let header = |at: usize| unsafe { (map.as_ptr().add(at) as *const u64).read_volatile() };
        match create_capacity {
            Some(capacity) => {
                // SAFETY: fresh file, first page, no other process maps it yet.
                unsafe {
                    (map.as_mut_ptr() as *mut u64).write(MAGIC);
                    (map.as_mut_ptr().add(8) as *mut u64).write(capacity);
                }
                Ok(Mapping { map, file, capacity })
            }
            None => {
                // A capacity of zero, or one that is no whole number of
                // regions, is no ring this runtime made (and would divide by
                // zero or misalign every position below).
                // The header is read only once the file is known to hold it.
                let fits = len >= DATA as u64;
                let capacity = if fits { header(8) } else { 0 };
                if !fits
                    || header(0) != MAGIC
                    || capacity != len - DATA as u64
                    || capacity == 0
                    || !capacity.is_multiple_of(REGION_ALIGN)
                {
                    return Err(Error::Transport(format!("{} is not a dirk ring", path.display())));
                }
                Ok(Mapping { capacity: header(8), map, file })
            }
        }
    }
}

/// A region reserved for writing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reserved {
    pub(crate) start: u64,
    pub(crate) pos: u64,
    pub(crate) ptr: *mut u8,
    pub(crate) len: usize,
}

/// The writing half, held by the sending process.
#[derive(Debug)]
pub(crate) struct Producer {
    ring: Mapping,
    head: u64,
    /// Data bytes from the start that are reserved (see the module note).
    backed: u64,
    /// Set when a reservation failed: the memory is short.
    short: Option<String>,
    /// Whether `short` was reported already (it is, once).
    told: bool,
}

// SAFETY: the mapping is plain shared memory; all shared words are atomics.
unsafe impl Send for Producer {}

impl Producer {
    /// Creates a ring file at `path` with `capacity` data bytes (a multiple
    /// of 64), mapped for writing.
    pub(crate) fn create(path: &Path, capacity: u64) -> Result<Producer, Error> {
        let capacity = capacity.div_ceil(REGION_ALIGN) * REGION_ALIGN;
        Ok(Producer { ring: Mapping::open(path, Some(capacity))?, head: 0, backed: 0, short: None, told: false })
    }

    /// Maps a ring that another process created, for writing to it.
    pub(crate) fn open(path: &Path) -> Result<Producer, Error> {
        let ring = Mapping::open(path, None)?;
        let head = ring.counter(HEAD).load(Ordering::Acquire);
        Ok(Producer { ring, head, backed: 0, short: None, told: false })
    }

    /// The largest contiguous free region whose memory is reserved, with
    /// room for `want` bytes at least when it can be had (the caller checks
    /// the length), wrapping to the start of the data area when that gives
    /// more room. `None` when nothing is free, or when the memory for
    /// `want` bytes cannot be reserved ([`short`](Producer::short) says
    /// why).
    pub(crate) fn reserve(&mut self, want: usize) -> Option<Reserved> {
        let cap = self.ring.capacity;
        let tail = self.ring.counter(TAIL).load(Ordering::Acquire);
        let free = cap - (self.head - tail);
        let offset = self.head % cap;
        let to_end = (cap - offset).min(free);
        let after_wrap = free.saturating_sub(cap - offset).min(offset);
        let (pos, len) =
            if after_wrap > to_end { (self.head + (cap - offset), after_wrap) } else { (self.head, to_end) };
        if len == 0 {
            return None;
        }
        let start = pos % cap;
        let end = start + len.min(want.max(1) as u64);
        if end > self.backed {
            let next = self.ring.next_backing(self.backed, end);
            let backed = match self.ring.back(self.backed, next) {
                Ok(()) => next,
                Err(_) => match self.ring.back(self.backed, end) {
                    Ok(()) => end,
                    Err(short) => {
                        if !self.told {
                            self.short = Some(short.to_string());
                        }
                        return None;
                    }
                },
            };
            self.backed = backed;
        }
        let len = len.min(self.backed - start);
        // SAFETY: `pos % cap + len <= cap`, inside the data area, and the
        // region is free (the consumer released it), so it is ours alone.
        let ptr = unsafe { self.ring.data().add((pos % cap) as usize) };
        Some(Reserved { start: self.head, pos, ptr, len: len as usize })
    }

    /// Why a reservation failed (the memory is short), the first time one
    /// did; `None` afterwards.
    pub(crate) fn short(&mut self) -> Option<String> {
        let short = self.short.take();
        self.told |= short.is_some();
        short
    }

    /// Publishes the first `len` bytes of `region`.
    pub(crate) fn commit(&mut self, region: &Reserved, len: usize) {
        debug_assert!(len <= region.len);
        let end = region.pos + len as u64;
        // The capacity is a multiple of the alignment, so rounding up never
        // passes the end of the data area.
        self.head = end.div_ceil(REGION_ALIGN) * REGION_ALIGN;
        self.ring.counter(HEAD).store(self.head, Ordering::Release);
    }
}

/// The reading half, held by the receiving process.
#[derive(Debug)]
pub(crate) struct Consumer {
    ring: Mapping,
    released: crate::sync::Mutex<BTreeMap<u64, u64>>,
}

// SAFETY: see `Producer`; `released` is behind a mutex.
unsafe impl Send for Consumer {}
// SAFETY: as above.
unsafe impl Sync for Consumer {}

impl Consumer {
    /// Maps a ring that another process created, for reading from it.
    pub(crate) fn open(path: &Path) -> Result<Consumer, Error> {
        Ok(Consumer { ring: Mapping::open(path, None)?, released: Default::default() })
    }

    /// Creates a ring file at `path` that another process will write to.
    pub(crate) fn create(path: &Path, capacity: u64) -> Result<Consumer, Error> {
        let capacity = capacity.div_ceil(REGION_ALIGN) * REGION_ALIGN;
        Ok(Consumer { ring: Mapping::open(path, Some(capacity))?, released: Default::default() })
    }

    /// The committed region `pos..pos + len`, checked to lie inside the data
    /// area and between the ring's tail and head.
    pub(crate) fn read(&self, start: u64, pos: u64, len: u64) -> Result<&[u8], Error> {
        let cap = self.ring.capacity;
        let head = self.ring.counter(HEAD).load(Ordering::Acquire);
        let tail = self.ring.counter(TAIL).load(Ordering::Acquire);
        let inside = start <= pos
            && start >= tail
            && pos.checked_add(len).is_some_and(|end| end <= head)
            && pos.is_multiple_of(REGION_ALIGN)
            && pos % cap + len <= cap;
        if !inside {
            return Err(Error::Codec(format!(
                "a value at ring position {pos}+{len} (from {start}) is outside the committed part {tail}..{head}"
            )));
        }
        // SAFETY: checked above to be inside the data area; the producer
        // committed it (head, acquire) and will not touch it before we
        // release it (protocol step 3).
        Ok(unsafe { std::slice::from_raw_parts(self.ring.data().add((pos % cap) as usize), len as usize) })
    }

    /// Gives `start..end` back to the producer.
    pub(crate) fn release(&self, start: u64, end: u64) {
        let end = end.div_ceil(REGION_ALIGN) * REGION_ALIGN;
        let mut released = self.released.lock();
        released.insert(start, end);
        let tail_word = self.ring.counter(TAIL);
        let mut tail = tail_word.load(Ordering::Acquire);
        while let Some(end) = released.remove(&tail) {
            tail = end.max(tail);
        }
        tail_word.store(tail, Ordering::Release);
    }
}

/// A path for a new ring file: in /dev/shm when it exists (memory, not disk).
pub(crate) fn ring_path(name: &str) -> PathBuf {
    let dir = Path::new("/dev/shm");
    let dir = if dir.is_dir() { dir.to_owned() } else { std::env::temp_dir() };
    dir.join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(cap: u64) -> (Producer, Consumer, PathBuf) {
        let path = ring_path(&format!("dirk-test-ring-{}-{}", std::process::id(), rand_suffix()));
        let c = Consumer::create(&path, cap).unwrap();
        let p = Producer::open(&path).unwrap();
        (p, c, path)
    }

    fn rand_suffix() -> u64 {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(std::time::Instant::now())
    }

    fn put(p: &mut Producer, bytes: &[u8]) -> Option<(u64, u64, u64)> {
        let r = p.reserve(bytes.len())?;
        if r.len < bytes.len() {
            return None;
        }
        // SAFETY: the reserved region is ours and at least `bytes.len()` long.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), r.ptr, bytes.len()) };
        p.commit(&r, bytes.len());
        Some((r.start, r.pos, bytes.len() as u64))
    }

    #[test]
    fn values_go_round_and_space_comes_back_in_any_order() {
        let (mut p, c, path) = pair(4096);
        let a = put(&mut p, &[1; 1000]).unwrap();
        let b = put(&mut p, &[2; 1000]).unwrap();
        let d = put(&mut p, &[3; 1000]).unwrap();
        assert!(put(&mut p, &[4; 2000]).is_none(), "the ring is nearly full");
        assert_eq!(c.read(b.0, b.1, b.2).unwrap(), &[2; 1000][..]);
        c.release(b.0, b.1 + b.2);
        assert!(put(&mut p, &[4; 2000]).is_none(), "b is free but a is not: tail stays");
        c.release(a.0, a.1 + a.2);
        c.release(d.0, d.1 + d.2);
        let e = put(&mut p, &[5; 3000]).unwrap();
        assert_eq!(c.read(e.0, e.1, e.2).unwrap(), &[5; 3000][..]);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn positions_outside_the_committed_part_are_refused() {
        let (mut p, c, path) = pair(4096);
        let a = put(&mut p, &[1; 100]).unwrap();
        assert!(c.read(a.0, a.1, 5000).is_err());
        assert!(c.read(a.0, a.1 + 64, 100).is_err());
        assert!(c.read(a.0, u64::MAX - 10, 100).is_err());
        std::fs::remove_file(path).unwrap();
    }
}
