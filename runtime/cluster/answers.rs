//! A worker's frames to process 0, where answers to short calls wait a
//! little to go out together.
//!
//! Every frame a worker sends to process 0 wakes process 0's I/O thread;
//! on a machine whose cores the processes share, those wake-ups cost as
//! much as the calls of a fine-grained graph. So the `Done` of a call that
//! ran briefly ([`SHORT`]) and readied calls here, which this worker runs
//! next, is held: it goes out with a later frame, as one write. Values
//! that workers await go to them directly (see `peers`), so holding an
//! answer delays no other worker; it delays only what process 0 learns.
//!
//! Bounds, so that process 0 learns of every call soon: at most
//! [`MOST_HELD`] frames wait; any frame that is not held takes the held
//! ones with it, in order; and a timer on the I/O runtime sends whatever
//! has waited [`HOLD`] (a call readied by a short one may run long).
//! Without a timer (under MPI) nothing is held.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sync::Mutex;
use crate::transport::frame::{Blobs, Message};
use crate::transport::socket::Outbox;

/// Calls that ran at most this long may have their answers held.
pub(crate) const SHORT: Duration = Duration::from_micros(100);
/// The longest an answer waits.
pub(crate) const HOLD: Duration = Duration::from_millis(1);
/// The most answers that wait together.
pub(crate) const MOST_HELD: usize = 32;

pub(crate) struct Answers {
    outbox: Outbox,
    /// Where the timer runs; `None`: nothing is held.
    timer: Option<tokio::runtime::Handle>,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    /// Whole frames, back to back.
    frames: Vec<u8>,
    count: usize,
    /// When the oldest held frame was held.
    since: Option<Instant>,
    /// Whether the timer runs; it goes on while frames were held since
    /// its last look, so that holding often spawns it once.
    armed: bool,
    held_lately: bool,
}

impl Answers {
    pub(crate) fn new(outbox: Outbox, timer: Option<tokio::runtime::Handle>) -> Arc<Answers> {
        Arc::new(Answers { outbox, timer, held: Mutex::new(Held::default()) })
    }

    /// The link's outbox (for what goes its own way: a stage's frames).
    pub(crate) fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Sends `message`, after the frames held.
    pub(crate) fn send(self: &Arc<Self>, message: &Message, blobs: Blobs) {
        self.put(message, blobs, false);
    }

    /// Sends `message` (the answer to a short call that readied calls
    /// here), or holds it within the bounds in the module note.
    pub(crate) fn hold(self: &Arc<Self>, message: &Message, blobs: Blobs) {
        self.put(message, blobs, true);
    }

    fn put(self: &Arc<Self>, message: &Message, blobs: Blobs, hold: bool) {
        let mut held = self.held.lock();
        let timer = self.timer.as_ref().filter(|_| hold && held.count < MOST_HELD);
        if timer.is_none() && held.count == 0 {
            // Nothing waits: sent as any frame (under the lock, so that
            // frames go out in the order they were put).
            let _ = self.outbox.send(message, blobs);
            return;
        }
        // A frame that does not encode is dropped, as `Outbox::send` drops it.
        if self.outbox.encode_into(message, blobs, &mut held.frames).is_err() {
            return;
        }
        held.count += 1;
        let Some(timer) = timer else {
            let frames = take(&mut held);
            let _ = self.outbox.send_encoded(frames);
            return;
        };
        held.since.get_or_insert_with(Instant::now);
        held.held_lately = true;
        if !held.armed {
            held.armed = true;
            timer.spawn(self.clone().expire());
        }
    }

    /// The timer: sends what has waited [`HOLD`]; ends after a look that
    /// finds nothing held since the last one.
    async fn expire(self: Arc<Self>) {
        let mut wait = HOLD;
        loop {
            tokio::time::sleep(wait).await;
            let mut held = self.held.lock();
            wait = HOLD;
            match held.since {
                None if !held.held_lately => {
                    held.armed = false;
                    return;
                }
                None => {}
                Some(since) if since.elapsed() >= HOLD => {
                    let frames = take(&mut held);
                    let _ = self.outbox.send_encoded(frames);
                }
                Some(since) => wait = HOLD - since.elapsed(),
            }
            held.held_lately = false;
        }
    }
}

/// Takes the held frames.
fn take(held: &mut Held) -> Vec<u8> {
    held.count = 0;
    held.since = None;
    std::mem::take(&mut held.frames)
}
