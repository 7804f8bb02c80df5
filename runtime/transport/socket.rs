//! Connections over Unix sockets, driven by one I/O runtime (tokio, on its
//! own thread `dirk-io`) beside the compute threads.
//!
//! Compute threads never touch a socket: they hand frames to a link's
//! [`Outbox`] (an unbounded channel, so sending never blocks), and the
//! link's writer task writes them in order. The reader task reads one
//! frame at a time, validates it ([`frame::decode_header`],
//! [`frame::decode_payload`]) and hands it to the link's handler; the first
//! invalid frame, or the end of the stream, closes the link and reports why
//! to its `closed` callback, exactly once.

use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;

use rkyv::util::AlignedVec;
use smallvec::SmallVec;
use std::io::{Read, Write};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::UnixStream;

use super::frame::{self, ArchivedMessage, HEADER_LEN, Header, Message};
use super::wire::ALIGN;
use crate::Error;

/// The I/O runtime of one process's cluster role.
#[derive(Debug)]
pub(crate) struct Io {
    handle: tokio::runtime::Handle,
    stop: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Io {
    pub(crate) fn start() -> Result<Io, Error> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Transport(format!("could not start the I/O runtime: {e}")))?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("dirk-io".to_owned())
            .spawn(move || {
                let _ = rt.block_on(stopped);
                rt.shutdown_background();
            })
            .map_err(|e| Error::Transport(format!("could not start the I/O thread: {e}")))?;
        Ok(Io { handle, stop: std::sync::Mutex::new(Some(stop)), thread: std::sync::Mutex::new(Some(thread)) })
    }

    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Runs `f` to completion on the I/O runtime from a thread outside it.
    pub(crate) fn block_on<F: Future + Send + 'static>(&self, f: F) -> F::Output
    where
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        self.handle.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv().expect("the I/O runtime runs until the cluster is dropped")
    }
}

impl Io {
    /// Stops the I/O runtime (its connections end) and joins its thread,
    /// unless called from that thread.
    pub(crate) fn stop(&self) {
        if let Some(stop) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A validated frame, owned.
#[derive(Debug)]
pub(crate) struct Incoming {
    header: Header,
    payload: AlignedVec<ALIGN>,
}

impl Incoming {
    /// Validates a whole frame (header, then payload) received in one piece.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn from_frame(bytes: &[u8], cookie: u64) -> Result<Incoming, Error> {
        let head: &[u8; HEADER_LEN] = bytes.get(..HEADER_LEN).and_then(|h| h.try_into().ok()).ok_or_else(|| {
            Error::Codec(format!("truncated frame: {} bytes, a header has {HEADER_LEN}", bytes.len()))
        })?;
        let header = frame::decode_header(head, cookie)?;
        let mut payload = AlignedVec::<ALIGN>::with_capacity(bytes.len() - HEADER_LEN);
        payload.extend_from_slice(&bytes[HEADER_LEN..]);
        frame::decode_payload(&header, &payload)?;
        Ok(Incoming { header, payload })
    }

    /// The message, read in place.
    pub(crate) fn message(&self) -> &ArchivedMessage {
        // SAFETY: `read_frame` built this value only after
        // `frame::decode_payload` validated these very bytes with bytecheck,
        // and they have not changed since (owned, immutable).
        unsafe { rkyv::access_unchecked::<ArchivedMessage>(&self.payload[..self.header.message_len as usize]) }
    }

    /// The frame's blob area (offsets in `Blob::Frame` were checked against it).
    pub(crate) fn blobs(&self) -> &[u8] {
        frame::blobs(&self.header, &self.payload)
    }

    /// The message, deserialized (for the handshake's small messages).
    pub(crate) fn owned(&self) -> Result<Message, Error> {
        rkyv::deserialize::<Message, rkyv::rancor::Error>(self.message()).map_err(|e| Error::Codec(e.to_string()))
    }
}

/// The most a payload buffer grows ahead of the bytes read.
const READ_STEP: usize = 16 << 20;

/// Bytes of frames this process sent or received on its sockets.
static SOCKET_BYTES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Bytes of frames this process sent or received on its sockets so far.
pub(crate) fn socket_bytes() -> u64 {
    SOCKET_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}

fn count(bytes: usize) {
    SOCKET_BYTES.fetch_add(bytes as u64, std::sync::atomic::Ordering::Relaxed);
}

/// Reads and validates one frame.
pub(crate) async fn read_frame<R: AsyncReadExt + Unpin>(r: &mut R, cookie: u64) -> Result<Incoming, Error> {
    let mut head = [0u8; HEADER_LEN];
    r.read_exact(&mut head).await.map_err(|e| closed(&e))?;
    let header = frame::decode_header(&head, cookie)?;
    let mut payload = AlignedVec::<ALIGN>::new();
    let len = header.payload_len() as usize;
    count(HEADER_LEN + len);
    // Grow with the bytes that arrive, so that a header claiming a huge
    // payload costs nothing until the payload comes.
    while payload.len() < len {
        let from = payload.len();
        payload.resize(from + (len - from).min(READ_STEP), 0);
        r.read_exact(&mut payload[from..]).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Codec(format!("truncated frame: the connection ended inside a {len}-byte payload"))
            } else {
                closed(&e)
            }
        })?;
    }
    frame::decode_payload(&header, &payload)?;
    Ok(Incoming { header, payload })
}

fn closed(e: &std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        Error::Transport("the connection was closed".to_owned())
    } else {
        Error::Transport(format!("the connection failed: {e}"))
    }
}

/// An encoded frame ready to write.
pub(crate) type Outgoing = (Vec<u8>, AlignedVec<ALIGN>);

/// Writes one frame.
pub(crate) async fn write_frame<W: AsyncWriteExt + Unpin>(w: &mut W, frame: &Outgoing) -> Result<(), Error> {
    w.write_all(&frame.0).await.map_err(|e| closed(&e))?;
    w.write_all(&frame.1).await.map_err(|e| closed(&e))?;
    Ok(())
}

/// Where compute threads put frames for one link: a queue that the link's
/// writer (a socket task, or the MPI thread) empties. Sending never blocks.
#[derive(Clone)]
pub(crate) struct Outbox {
    sink: Arc<dyn Fn(Outgoing) -> bool + Send + Sync>,
    /// Where frames that may wait go (the writer task), if elsewhere.
    later: Option<Arc<dyn Fn(Outgoing) -> bool + Send + Sync>>,
    cookie: u64,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbox")
    }
}

impl Outbox {
    /// An outbox whose frames go to `sink` (which answers whether the link
    /// is still open).
    pub(crate) fn new(cookie: u64, sink: impl Fn(Outgoing) -> bool + Send + Sync + 'static) -> Outbox {
        Outbox { sink: Arc::new(sink), later: None, cookie }
    }

    /// Queues `message` with `blobs`; never blocks. A closed link drops it
    /// (its closing already failed whatever waited on it).
    pub(crate) fn send(&self, message: &Message, blobs: frame::Blobs) -> Result<(), Error> {
        self.put(&self.sink, message, blobs)
    }

    /// [`send`](Outbox::send) for a frame nobody waits for yet: the link's
    /// writer sends it soon, with whatever else was queued meanwhile, so
    /// that a burst of such frames costs one write (and wakes the peer
    /// once), not one each. Frames sent after it still follow it.
    pub(crate) fn send_soon(&self, message: &Message, blobs: frame::Blobs) -> Result<(), Error> {
        self.put(self.later.as_ref().unwrap_or(&self.sink), message, blobs)
    }

    /// Encodes `message` with `blobs` as a whole frame at the end of `buf`,
    /// for [`send_encoded`](Outbox::send_encoded).
    pub(crate) fn encode_into(&self, message: &Message, blobs: frame::Blobs, buf: &mut Vec<u8>) -> Result<(), Error> {
        let (head, payload) = frame::encode(message, blobs, self.cookie)?;
        buf.extend_from_slice(&head);
        buf.extend_from_slice(&payload);
        Ok(())
    }

    /// Sends whole frames encoded back to back by
    /// [`encode_into`](Outbox::encode_into), as one write.
    pub(crate) fn send_encoded(&self, frames: Vec<u8>) -> Result<(), Error> {
        count(frames.len());
        if (self.sink)((frames, AlignedVec::new())) {
            Ok(())
        } else {
            Err(Error::Transport("the link is closed".to_owned()))
        }
    }

    fn put(
        &self,
        sink: &Arc<dyn Fn(Outgoing) -> bool + Send + Sync>,
        message: &Message,
        blobs: frame::Blobs,
    ) -> Result<(), Error> {
        let frame = frame::encode(message, blobs, self.cookie)?;
        count(frame.0.len() + frame.1.len());
        if sink(frame) { Ok(()) } else { Err(Error::Transport("the link is closed".to_owned())) }
    }
}

/// Reads are buffered this much.
const BATCH: usize = 256 << 10;

/// Starts the reader and writer tasks of a link over `stream`. `handler`
/// gets each valid frame; `closed` is called once when the link ends.
///
/// The socket is watched for reading only: watched for writing too (as a
/// tokio stream is), every frame the peer reads would wake this I/O thread
/// to say there is room. The writer watches it, through a second
/// descriptor, only while it has bytes the socket did not take.
pub(crate) fn start_link(
    io: &tokio::runtime::Handle,
    stream: UnixStream,
    cookie: u64,
    handler: Arc<dyn Fn(Incoming) + Send + Sync>,
    closed: Box<dyn FnOnce(Error) + Send>,
) -> Outbox {
    let split = stream.into_std().and_then(|read| Ok((read.try_clone()?, read)));
    let (write, read) = match split {
        Ok(pair) => pair,
        Err(e) => {
            closed(Error::Transport(format!("the connection failed: {e}")));
            return Outbox::new(cookie, |_| false);
        }
    };
    let writer = Arc::new(Writer {
        half: write,
        state: crate::sync::Mutex::new(Pending::default()),
        wake: tokio::sync::Notify::new(),
    });
    let (stop_writer, stopped) = tokio::sync::oneshot::channel::<()>();
    io.spawn(writer.clone().flush_queue(stopped));
    let w = writer.clone();
    io.spawn(async move {
        // SAFETY: the `UnixStream` owns its descriptor, which stays open
        // until the `AsyncFd` (which owns the stream) deregisters it.
        let why = match unsafe { AsyncFd::register_with_interest(read, Interest::READABLE) } {
            Ok(fd) => {
                let mut reader = tokio::io::BufReader::with_capacity(BATCH, FdReader(fd));
                loop {
                    match read_frame(&mut reader, cookie).await {
                        // A handler that panics leaves its side of the
                        // protocol unknown: the link closes, and its
                        // owner hears why (process 0 loses the worker).
                        Ok(frame) => match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(frame))) {
                            Ok(()) => {}
                            Err(payload) => {
                                let message = crate::error::panic_message(&*payload);
                                break Error::Transport(format!("handling a frame panicked: {message}"));
                            }
                        },
                        Err(e) => break e,
                    }
                }
            }
            Err(e) => Error::Transport(format!("the connection failed: {e}")),
        };
        w.state.lock().closed = true;
        let _ = stop_writer.send(());
        closed(why);
    });
    let later = writer.clone();
    Outbox {
        later: Some(Arc::new(move |frame| later.queue(frame))),
        ..Outbox::new(cookie, move |frame| writer.send(frame))
    }
}

/// The reading end of a link's socket, watched for reading only.
struct FdReader(AsyncFd<std::os::unix::net::UnixStream>);

impl tokio::io::AsyncRead for FdReader {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        loop {
            let mut ready = std::task::ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let want = unfilled.len();
            match ready.try_io(|fd| fd.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    // A short read emptied the socket: wait for more rather
                    // than ask again only to hear that there is none.
                    if n > 0 && n < want {
                        ready.clear_ready();
                    }
                    buf.advance(n);
                    return std::task::Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return std::task::Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

/// The sending side of a link.
///
/// Protocol: a sender writes its frame straight to the socket (a
/// non-blocking write, from whatever thread sends) when nothing is queued
/// and the writer task is not writing; whatever the socket does not take at
/// once is queued, and the writer task (on the I/O runtime) writes the
/// queue in order, waiting for the socket as needed. `flushing` is set
/// while the task writes a chunk it took from the queue, so no direct
/// write can come between queued bytes.
struct Writer {
    /// The socket, for writing (non-blocking).
    half: std::os::unix::net::UnixStream,
    state: crate::sync::Mutex<Pending>,
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct Pending {
    queue: std::collections::VecDeque<Vec<u8>>,
    flushing: bool,
    closed: bool,
}

impl Writer {
    /// Sends or queues one frame; `false` once the link is closed.
    fn send(&self, (head, payload): Outgoing) -> bool {
        let mut state = self.state.lock();
        if state.closed {
            return false;
        }
        let total = head.len() + payload.len();
        let mut written = 0;
        if state.queue.is_empty() && !state.flushing {
            while written < total {
                let slices = if written < head.len() {
                    [std::io::IoSlice::new(&head[written..]), std::io::IoSlice::new(&payload)]
                } else {
                    [std::io::IoSlice::new(&payload[written - head.len()..]), std::io::IoSlice::new(&[])]
                };
                match (&self.half).write_vectored(&slices) {
                    Ok(0) => {
                        state.closed = true;
                        return false;
                    }
                    Ok(n) => written += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        state.closed = true;
                        return false;
                    }
                }
            }
            if written == total {
                return true;
            }
        }
        let mut rest = Vec::with_capacity(total - written);
        if written < head.len() {
            rest.extend_from_slice(&head[written..]);
            rest.extend_from_slice(&payload);
        } else {
            rest.extend_from_slice(&payload[written - head.len()..]);
        }
        state.queue.push_back(rest);
        drop(state);
        self.wake.notify_one();
        true
    }

    /// Queues one frame for the writer task; `false` once the link is closed.
    fn queue(&self, (head, payload): Outgoing) -> bool {
        let mut state = self.state.lock();
        if state.closed {
            return false;
        }
        let mut whole = head;
        whole.extend_from_slice(&payload);
        state.queue.push_back(whole);
        let first = state.queue.len() == 1 && !state.flushing;
        drop(state);
        if first {
            self.wake.notify_one();
        }
        true
    }

    /// Writes `chunks` whole and in order, several per call, waiting for
    /// room as needed: through a second descriptor of the socket, watched
    /// for writing only while this lasts.
    async fn write_all(&self, chunks: &[Vec<u8>]) -> std::io::Result<()> {
        let mut room: Option<AsyncFd<std::os::unix::net::UnixStream>> = None;
        let (mut first, mut at) = (0, 0);
        while first < chunks.len() {
            let slices: SmallVec<[std::io::IoSlice<'_>; 64]> = chunks[first..]
                .iter()
                .take(64)
                .enumerate()
                .map(|(k, c)| std::io::IoSlice::new(if k == 0 { &c[at..] } else { c }))
                .collect();
            match (&self.half).write_vectored(&slices) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(mut n) => {
                    while n > 0 {
                        let left = chunks[first].len() - at;
                        if n >= left {
                            n -= left;
                            (first, at) = (first + 1, 0);
                        } else {
                            at += n;
                            n = 0;
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let fd = match &mut room {
                        Some(fd) => fd,
                        // SAFETY: the cloned `UnixStream` owns its (duplicated)
                        // descriptor, which stays open until the `AsyncFd`
                        // (which owns it) deregisters it.
                        None => room.insert(unsafe {
                            AsyncFd::register_with_interest(self.half.try_clone()?, Interest::WRITABLE)
                        }?),
                    };
                    fd.writable().await?.clear_ready();
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The writer task: writes queued bytes until the link closes.
    async fn flush_queue(self: Arc<Self>, mut stopped: tokio::sync::oneshot::Receiver<()>) {
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = &mut stopped => return,
            }
            loop {
                let chunks: Vec<Vec<u8>> = {
                    let mut state = self.state.lock();
                    if state.queue.is_empty() {
                        state.flushing = false;
                        break;
                    }
                    state.flushing = true;
                    state.queue.drain(..).collect()
                };
                if self.write_all(&chunks).await.is_err() {
                    self.state.lock().closed = true;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    type Handler = Arc<dyn Fn(Incoming) + Send + Sync>;

    /// Starts a link over one end of a socket pair; returns the other end
    /// and where the link's closing reason arrives.
    fn link(io: &Io) -> (std::os::unix::net::UnixStream, std::sync::mpsc::Receiver<Error>) {
        let (theirs, closed, _outbox) = link_with_outbox(io);
        (theirs, closed)
    }

    fn link_with_outbox(io: &Io) -> (std::os::unix::net::UnixStream, std::sync::mpsc::Receiver<Error>, Outbox) {
        link_handled_by(io, Arc::new(|_| {}))
    }

    fn link_handled_by(
        io: &Io,
        handler: Handler,
    ) -> (std::os::unix::net::UnixStream, std::sync::mpsc::Receiver<Error>, Outbox) {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let stream = {
            let _in_io = io.handle().enter();
            UnixStream::from_std(ours).unwrap()
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let closed = Box::new(move |e| {
            let _ = tx.send(e);
        });
        let outbox = start_link(io.handle(), stream, 7, handler, closed);
        (theirs, rx, outbox)
    }

    #[test]
    fn a_handler_that_panics_closes_the_link_and_says_why() {
        let io = Io::start().unwrap();
        let seen = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counted = seen.clone();
        let handler: Handler = Arc::new(move |_| {
            if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                panic!("the second frame is one too many");
            }
        });
        let (mut peer, closed, _outbox) = link_handled_by(&io, handler);
        for object in 0..3 {
            peer.write_all(&frame(&Message::Pull { object })).unwrap();
        }
        let why = closed.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        assert!(matches!(&why, Error::Transport(m) if m.contains("the second frame is one too many")), "{why:?}");
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2, "nothing is handled after the panic");
    }

    /// Reads one whole frame from a blocking stream.
    fn read_whole(peer: &mut std::os::unix::net::UnixStream) -> Message {
        use std::io::Read;
        let mut head = [0u8; HEADER_LEN];
        peer.read_exact(&mut head).unwrap();
        let header = frame::decode_header(&head, 7).unwrap();
        let mut payload = AlignedVec::<ALIGN>::new();
        payload.resize(header.payload_len() as usize, 0);
        peer.read_exact(&mut payload).unwrap();
        let message = frame::decode_payload(&header, &payload).unwrap();
        rkyv::deserialize::<Message, rkyv::rancor::Error>(message).unwrap()
    }

    #[test]
    fn frames_sent_soon_or_at_once_arrive_whole_and_in_order() {
        let io = Io::start().unwrap();
        let (mut peer, _closed, outbox) = link_with_outbox(&io);
        let (tx, got) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let frames: Vec<(u64, usize)> = (0..300u64)
                .map(|_| match read_whole(&mut peer) {
                    Message::Pull { object } => (object, 0),
                    Message::Free { objects } => (objects[0], objects.len()),
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
            let _ = tx.send(frames);
        });
        for i in 0..300u64 {
            let sent = match i % 3 {
                0 => outbox.send(&Message::Pull { object: i }, frame::Blobs::default()),
                1 => outbox.send_soon(&Message::Pull { object: i }, frame::Blobs::default()),
                _ => {
                    // Up to 6 MiB: more than the socket takes, so the
                    // writer must wait for room.
                    let objects = std::iter::once(i).chain(std::iter::repeat_n(0, (i as usize % 7) << 17)).collect();
                    outbox.send_soon(&Message::Free { objects }, frame::Blobs::default())
                }
            };
            sent.unwrap();
        }
        let got = got.recv_timeout(std::time::Duration::from_secs(20)).expect("every frame arrives");
        let expect: Vec<(u64, usize)> =
            (0..300u64).map(|i| if i % 3 == 2 { (i, 1 + ((i as usize % 7) << 17)) } else { (i, 0) }).collect();
        assert_eq!(got, expect);
    }

    fn frame(message: &Message) -> Vec<u8> {
        let (mut head, payload) = frame::encode(message, frame::Blobs::default(), 7).unwrap();
        head.extend_from_slice(&payload);
        head
    }

    #[test]
    fn a_corrupt_frame_closes_the_link_with_a_codec_error() {
        let io = Io::start().unwrap();
        let (mut peer, closed) = link(&io);
        peer.write_all(&frame(&Message::Pull { object: 1 })).unwrap();
        // The archived message's variant tag (its first byte) out of range.
        let mut bad = frame(&Message::Pull { object: 2 });
        bad[frame::HEADER_LEN] = 0xee;
        peer.write_all(&bad).unwrap();
        let why = closed.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        assert!(matches!(why, Error::Codec(_)), "{why:?}");
    }

    #[test]
    fn a_truncated_frame_closes_the_link_with_a_codec_error() {
        let io = Io::start().unwrap();
        let (mut peer, closed) = link(&io);
        let f = frame(&Message::Ready { threads: 2 });
        peer.write_all(&f[..f.len() - 4]).unwrap();
        drop(peer);
        let why = closed.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        assert!(matches!(&why, Error::Codec(m) if m.contains("truncated")), "{why:?}");
    }

    #[test]
    fn a_frame_without_the_cookie_closes_the_link() {
        let io = Io::start().unwrap();
        let (mut peer, closed) = link(&io);
        let (mut head, payload) = frame::encode(&Message::Shutdown, frame::Blobs::default(), 8).unwrap();
        head.extend_from_slice(&payload);
        peer.write_all(&head).unwrap();
        let why = closed.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        assert!(matches!(&why, Error::Codec(m) if m.contains("secret")), "{why:?}");
    }
}
