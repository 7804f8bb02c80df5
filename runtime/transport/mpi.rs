//! Frames over MPI, for processes started by `mpirun` or `srun`: one MPI
//! thread per process (`dirk-mpi`) makes every MPI call, beside the compute
//! threads, never on them.
//!
//! Protocol:
//! 1. The MPI thread initializes MPI (threading "funneled": only it calls
//!    MPI), and rank 0's secret is broadcast to every rank, so frames carry
//!    the cluster's cookie as they do over sockets.
//! 2. A frame is one MPI message (header then payload), sent with an
//!    immediate send from a buffer the thread owns until the send
//!    completes. Queued frames come from [`Outbox`]es (one per peer rank)
//!    through a channel.
//! 3. The thread probes for messages from any rank, validates each frame
//!    ([`Incoming::from_frame`]) and hands it, or the error, to the
//!    current handler (frames that arrive before one is set wait for it).
//! 4. [`Mpi::finish`] sends what is queued, waits for the sends, stops the
//!    thread and finalizes MPI.
//!
//! A lost rank is not detected here: MPI launchers end the whole job when
//! a rank dies.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use mpi::request::StaticScope;
use mpi::traits::*;

use super::socket::{Incoming, Outbox, Outgoing};
use crate::Error;

/// What receives frames: the rank they came from, and the frame or why it
/// was refused.
pub(crate) type Handler = Arc<dyn Fn(u32, Result<Incoming, Error>) + Send + Sync>;

enum Dispatch {
    Queue(VecDeque<(u32, Result<Incoming, Error>)>),
    To(Handler),
}

/// This process's part of an MPI job.
pub(crate) struct Mpi {
    pub(crate) rank: u32,
    pub(crate) size: u32,
    pub(crate) secret: [u8; 32],
    out: Mutex<Sender<(u32, Outgoing)>>,
    dispatch: Arc<Mutex<Dispatch>>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpi").field("rank", &self.rank).field("size", &self.size).finish()
    }
}

impl Mpi {
    /// Starts the MPI thread; `secret` is rank 0's (others receive it).
    pub(crate) fn start(secret: [u8; 32]) -> Result<Mpi, Error> {
        let (out, outgoing) = channel::<(u32, Outgoing)>();
        let (ready_tx, ready) = channel::<Result<Joined, Error>>();
        let dispatch = Arc::new(Mutex::new(Dispatch::Queue(VecDeque::new())));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s) = (dispatch.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("dirk-mpi".to_owned())
            .spawn(move || run(secret, outgoing, ready_tx, d, s))
            .map_err(|e| Error::Transport(format!("could not start the MPI thread: {e}")))?;
        let (rank, size, secret) =
            ready.recv().map_err(|_| Error::Transport("the MPI thread stopped while MPI started".to_owned()))??;
        Ok(Mpi { rank, size, secret, out: Mutex::new(out), dispatch, stop, thread: Mutex::new(Some(thread)) })
    }

    /// An outbox for frames to `rank`.
    pub(crate) fn outbox(&self, rank: u32, cookie: u64) -> Outbox {
        let out = Mutex::new(self.out.lock().unwrap_or_else(|e| e.into_inner()).clone());
        Outbox::new(cookie, move |frame| out.lock().unwrap_or_else(|e| e.into_inner()).send((rank, frame)).is_ok())
    }

    /// Sends every frame received from now on (and those waiting) to `handler`.
    pub(crate) fn set_handler(&self, handler: Handler) {
        let queued = {
            let mut d = self.dispatch.lock().unwrap_or_else(|e| e.into_inner());
            match std::mem::replace(&mut *d, Dispatch::To(handler.clone())) {
                Dispatch::Queue(q) => q,
                Dispatch::To(_) => VecDeque::new(),
            }
        };
        for (rank, frame) in queued {
            handler(rank, frame);
        }
    }

    /// Sends what is queued, stops the MPI thread and finalizes MPI.
    pub(crate) fn finish(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

/// This rank, the job's size, and rank 0's secret.
type Joined = (u32, u32, [u8; 32]);

/// A send in flight and the buffer it reads.
struct Sending {
    request: Option<mpi::request::Request<'static, [u8], StaticScope>>,
    buffer: *mut [u8],
}

impl Sending {
    /// Whether the send completed (then its buffer is freed).
    fn done(&mut self) -> bool {
        let Some(request) = self.request.take() else { return true };
        match request.test() {
            Ok(_) => {
                // SAFETY: the buffer was leaked from a `Box<[u8]>` for this
                // send, which completed, so MPI no longer reads it.
                drop(unsafe { Box::from_raw(self.buffer) });
                true
            }
            Err(request) => {
                self.request = Some(request);
                false
            }
        }
    }
}

fn deliver(dispatch: &Mutex<Dispatch>, rank: u32, frame: Result<Incoming, Error>) {
    let handler = {
        let mut d = dispatch.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *d {
            Dispatch::Queue(q) => {
                q.push_back((rank, frame));
                return;
            }
            Dispatch::To(h) => h.clone(),
        }
    };
    handler(rank, frame);
}

/// The MPI thread (protocol steps 1 to 4).
fn run(
    mut secret: [u8; 32],
    outgoing: Receiver<(u32, Outgoing)>,
    ready: Sender<Result<Joined, Error>>,
    dispatch: Arc<Mutex<Dispatch>>,
    stop: Arc<AtomicBool>,
) {
    let Some((universe, _)) = mpi::initialize_with_threading(mpi::Threading::Funneled) else {
        let _ = ready.send(Err(Error::Transport("MPI could not be initialized (was it already?)".to_owned())));
        return;
    };
    let world = universe.world();
    world.process_at_rank(0).broadcast_into(&mut secret[..]);
    let cookie = super::frame::cookie(&secret);
    let _ = ready.send(Ok((world.rank() as u32, world.size() as u32, secret)));
    let mut sending: Vec<Sending> = Vec::new();
    loop {
        // Read first: every frame queued before `finish` is then drained below.
        let stopping = stop.load(Ordering::Acquire);
        let mut busy = false;
        while let Ok((rank, (head, payload))) = outgoing.try_recv() {
            busy = true;
            let mut bytes = Vec::with_capacity(head.len() + payload.len());
            bytes.extend_from_slice(&head);
            bytes.extend_from_slice(&payload);
            let buffer: &'static mut [u8] = Box::leak(bytes.into_boxed_slice());
            let ptr: *mut [u8] = buffer;
            let request = world.process_at_rank(rank as i32).immediate_send(StaticScope, &*buffer);
            sending.push(Sending { request: Some(request), buffer: ptr });
        }
        sending.retain_mut(|s| !s.done());
        if let Some(probed) = world.any_process().immediate_matched_probe() {
            busy = true;
            let rank = probed.1.source_rank() as u32;
            let (bytes, _) = probed.matched_receive_vec::<u8>();
            deliver(&dispatch, rank, Incoming::from_frame(&bytes, cookie));
        }
        if stopping && !busy && sending.is_empty() {
            break;
        }
        if !busy {
            std::thread::sleep(Duration::from_micros(20));
        }
    }
    drop(universe); // MPI_Finalize
}
