//! The I/O thread: reads and writes of files run on a thread of their
//! own, never on a compute thread, through io_uring where the kernel allows
//! it and plain `pread`/`pwrite` otherwise.
//!
//! `DIRK_IO=plain` forces the plain path (io_uring is also skipped when the
//! kernel or a seccomp profile refuses to set a ring up). A request owns
//! its buffer and its file while the I/O thread works on it, and gives
//! them back with the outcome; the caller waits as a blocking call
//! ([`crate::block_in_place`]), so on a worker thread another thread keeps
//! running tasks meanwhile.

use std::fs::File as StdFile;
use std::os::fd::AsRawFd;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, OnceLock};

use rkyv::util::AlignedVec;

use crate::sync::Mutex;
use crate::transport::wire::ALIGN;

/// How the I/O thread reaches the disk: [`backend`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// io_uring (the `io-uring` crate).
    Uring,
    /// `pread`/`pwrite`: when io_uring is refused, or with `DIRK_IO=plain`.
    Plain,
}

/// Bytes per request on the ring.
const CHUNK: usize = 8 << 20;
/// Requests in flight on the ring.
const DEPTH: usize = 8;

/// A buffer the I/O thread owns while it works.
pub(crate) enum Buffer {
    /// Bytes to write.
    Out(Box<dyn AsRef<[u8]> + Send>),
    /// Room to read into (its whole length is read).
    In(AlignedVec<ALIGN>),
}

impl Buffer {
    fn ptr_len(&mut self) -> (usize, usize) {
        match self {
            Buffer::Out(b) => {
                let s = (**b).as_ref();
                (s.as_ptr() as usize, s.len())
            }
            Buffer::In(v) => (v.as_mut_ptr() as usize, v.len()),
        }
    }
}

struct Request {
    file: Arc<StdFile>,
    buffer: Buffer,
    offset: u64,
    done: SyncSender<(std::io::Result<()>, Buffer)>,
}

struct Thread {
    backend: Backend,
    requests: Mutex<Option<Sender<Request>>>,
}

fn thread() -> &'static Thread {
    static THREAD: OnceLock<Thread> = OnceLock::new();
    THREAD.get_or_init(|| {
        let plain = std::env::var("DIRK_IO").is_ok_and(|v| v == "plain");
        let ring = if plain { None } else { io_uring::IoUring::new(DEPTH as u32 * 2).ok() };
        let backend = if ring.is_some() { Backend::Uring } else { Backend::Plain };
        let (tx, rx) = channel();
        let started = std::thread::Builder::new().name("dirk-io".to_owned()).spawn(move || match ring {
            Some(ring) => run_uring(ring, rx),
            None => run_plain(rx),
        });
        Thread { backend, requests: Mutex::new(started.ok().map(|_| tx)) }
    })
}

/// The backend of this process's I/O thread (started on first use).
///
/// ```
/// // io_uring where the kernel allows it; DIRK_IO=plain forces pread/pwrite.
/// let b = dirk::fs::backend();
/// assert!(matches!(b, dirk::fs::Backend::Uring | dirk::fs::Backend::Plain));
/// ```
pub fn backend() -> Backend {
    thread().backend
}

/// A request on its way: [`InFlight::wait`] for its outcome.
pub(crate) struct InFlight(Receiver<(std::io::Result<()>, Buffer)>);

impl InFlight {
    /// Waits (as a blocking call) for the request's outcome and buffer.
    fn outcome(self) -> (std::io::Result<()>, Option<Buffer>) {
        match crate::block_in_place(|| self.0.recv()) {
            Ok((outcome, buffer)) => (outcome, Some(buffer)),
            Err(_) => (Err(std::io::Error::other("the I/O thread stopped")), None),
        }
    }

    /// Waits for the request to complete.
    pub(crate) fn wait(self) -> std::io::Result<()> {
        self.outcome().0
    }
}

fn send(file: &Arc<StdFile>, buffer: Buffer, offset: u64) -> Result<InFlight, (std::io::Error, Buffer)> {
    let (done, wait) = sync_channel(1);
    let request = Request { file: file.clone(), buffer, offset, done };
    let sent = match &*thread().requests.lock() {
        Some(tx) => tx.send(request).map_err(|e| e.0.buffer),
        None => Err(request.buffer),
    };
    match sent {
        Ok(()) => Ok(InFlight(wait)),
        Err(buffer) => Err((std::io::Error::other("the I/O thread is not running"), buffer)),
    }
}

fn submit(file: &Arc<StdFile>, buffer: Buffer, offset: u64) -> (std::io::Result<()>, Option<Buffer>) {
    match send(file, buffer, offset) {
        Ok(in_flight) => in_flight.outcome(),
        Err((e, buffer)) => (Err(e), Some(buffer)),
    }
}

/// Starts writing `bytes` to `file` at `offset`; the caller goes on.
pub(crate) fn write_at_async(
    file: &Arc<StdFile>,
    bytes: Box<dyn AsRef<[u8]> + Send>,
    offset: u64,
) -> std::io::Result<InFlight> {
    send(file, Buffer::Out(bytes), offset).map_err(|(e, _)| e)
}

/// Reads `len` bytes of `file` from `offset` into a new aligned buffer (an
/// error if the file is shorter).
pub(crate) fn read_at(file: &Arc<StdFile>, len: usize, offset: u64) -> std::io::Result<AlignedVec<ALIGN>> {
    let mut buf = AlignedVec::<ALIGN>::with_capacity(len.max(1));
    buf.resize(len, 0);
    match submit(file, Buffer::In(buf), offset) {
        (Ok(()), Some(Buffer::In(v))) => Ok(v),
        (Ok(()), _) => Err(std::io::Error::other("the I/O thread lost a buffer")),
        (Err(e), _) => Err(e),
    }
}

/// Writes all of `bytes` to `file` at `offset`.
pub(crate) fn write_at(file: &Arc<StdFile>, bytes: Box<dyn AsRef<[u8]> + Send>, offset: u64) -> std::io::Result<()> {
    submit(file, Buffer::Out(bytes), offset).0
}

fn run_plain(requests: Receiver<Request>) {
    while let Ok(mut r) = requests.recv() {
        let outcome = plain(&mut r, 0);
        let _ = r.done.send((outcome, r.buffer));
    }
}

/// The request's bytes from `from` on, with `pread`/`pwrite`.
fn plain(r: &mut Request, from: usize) -> std::io::Result<()> {
    let write = matches!(r.buffer, Buffer::Out(_));
    let (buf, len) = r.buffer.ptr_len();
    let fd = r.file.as_raw_fd();
    let mut at = from;
    while at < len {
        let n = (len - at).min(CHUNK);
        let off = (r.offset + at as u64) as libc::off_t;
        // SAFETY: `buf + at .. + n` lies in the request's buffer, which this
        // thread owns until it sends the buffer back.
        let got = unsafe {
            if write {
                libc::pwrite(fd, (buf + at) as *const libc::c_void, n, off)
            } else {
                libc::pread(fd, (buf + at) as *mut libc::c_void, n, off)
            }
        };
        match got {
            -1 => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => at += n as usize,
        }
    }
    Ok(())
}

fn run_uring(mut ring: io_uring::IoUring, requests: Receiver<Request>) {
    while let Ok(mut r) = requests.recv() {
        match uring(&mut ring, &mut r) {
            Ok(outcome) => {
                let _ = r.done.send((outcome, r.buffer));
            }
            Err(broken) => {
                // Entries may still be in the kernel's hands: the buffer and
                // the file must outlive them, so they are never freed, and
                // this request and every later one go the plain way.
                let _ = r.done.send((Err(broken), Buffer::In(AlignedVec::new())));
                std::mem::forget(r);
                while let Ok(mut r) = requests.recv() {
                    let outcome = plain(&mut r, 0);
                    let _ = r.done.send((outcome, r.buffer));
                }
                std::mem::forget(ring);
                return;
            }
        }
    }
}

/// One request on the ring: `Ok(outcome)` once nothing of it is left in
/// the kernel; `Err` when the ring itself failed with entries in flight.
fn uring(ring: &mut io_uring::IoUring, r: &mut Request) -> Result<std::io::Result<()>, std::io::Error> {
    use io_uring::{opcode, types};
    let write = matches!(r.buffer, Buffer::Out(_));
    let (buf, len) = r.buffer.ptr_len();
    let fd = types::Fd(r.file.as_raw_fd());
    let (mut next, mut in_flight) = (0usize, 0usize);
    let mut retry: Vec<(usize, usize)> = Vec::new();
    let mut failed: Option<std::io::Error> = None;
    loop {
        while failed.is_none() && in_flight < DEPTH && (next < len || !retry.is_empty()) {
            let (at, n) = retry.pop().unwrap_or_else(|| {
                let n = (len - next).min(CHUNK);
                next += n;
                (next - n, n)
            });
            let off = r.offset + at as u64;
            let entry = if write {
                opcode::Write::new(fd, (buf + at) as *const u8, n as u32).offset(off).build()
            } else {
                opcode::Read::new(fd, (buf + at) as *mut u8, n as u32).offset(off).build()
            };
            // `at` fits in 40 bits (a terabyte), `n` in 24 (a chunk).
            let entry = entry.user_data(((at as u64) << 24) | n as u64);
            // SAFETY: the entry points into the request's buffer and file,
            // which this thread owns and keeps until every entry of the
            // request has completed (or for ever, if the ring breaks).
            if unsafe { ring.submission().push(&entry) }.is_err() {
                retry.push((at, n));
                break;
            }
            in_flight += 1;
        }
        if in_flight == 0 {
            return Ok(failed.map_or(Ok(()), Err));
        }
        match ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let completed: Vec<(u64, i32)> = ring.completion().map(|c| (c.user_data(), c.result())).collect();
        for (data, result) in completed {
            in_flight -= 1;
            let (at, n) = ((data >> 24) as usize, (data & 0xff_ffff) as usize);
            if result < 0 {
                let e = std::io::Error::from_raw_os_error(-result);
                if e.kind() == std::io::ErrorKind::Interrupted {
                    retry.push((at, n));
                } else {
                    failed.get_or_insert(e);
                }
            } else if result == 0 && n > 0 {
                failed.get_or_insert(std::io::ErrorKind::UnexpectedEof.into());
            } else if (result as usize) < n {
                retry.push((at + result as usize, n - result as usize));
            }
        }
    }
}
