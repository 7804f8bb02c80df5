//! Heartbeats: process 0 notices a worker that stopped answering.
//!
//! A worker whose process died closes its connection, and its loss is
//! seen at once. One that hangs (stopped, wedged in the kernel, cut off
//! by the network while its socket stays open) says nothing; without a
//! check, the calls it was running would wait forever.
//!
//! Every frame from a worker marks its link as heard. Every quarter of the
//! timeout, the I/O thread looks at each live link: one heard since the
//! last look is fine; one not heard is sent a `Ping` (the worker's I/O
//! thread answers `Pong` at once, whatever its compute threads are
//! doing); one not heard for the whole timeout is lost, as if its
//! connection had ended (`Error::WorkerLost` for its calls, retries run
//! elsewhere), and its process, when this one started it, is killed so
//! that it cannot come back half-way.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Cluster;
use crate::Error;
use crate::transport::frame::{Blobs, Message};

/// How many looks a worker may stay silent before it is lost.
const LOOKS: u32 = 4;

impl Cluster {
    /// Starts watching the links (on the I/O thread); a timeout of zero
    /// watches nothing.
    pub(crate) fn watch(&'static self, timeout: Duration) {
        if timeout.is_zero() {
            return;
        }
        let look = (timeout / LOOKS).max(Duration::from_millis(1));
        self.io.handle().spawn(async move {
            let mut silent = vec![0u32; self.links().len()];
            let mut every = tokio::time::interval(look);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if self.stopping.load(Ordering::Acquire) {
                    return;
                }
                for (i, link) in self.links().iter().enumerate() {
                    if !link.alive.load(Ordering::Acquire) {
                        continue;
                    }
                    if link.heard.swap(false, Ordering::Relaxed) {
                        silent[i] = 0;
                        continue;
                    }
                    silent[i] += 1;
                    if silent[i] < LOOKS {
                        let _ = link.outbox.send(&Message::Ping, Blobs::default());
                    } else {
                        self.silenced(i as u32 + 1, timeout);
                    }
                }
            }
        });
    }

    /// `worker` said nothing for `timeout`, pinged: it is lost.
    fn silenced(&'static self, worker: u32, timeout: Duration) {
        let why = Error::Transport(format!("it did not answer for {} ms", timeout.as_millis()));
        self.on_lost(worker, why);
        if let Some((_, child)) = self.children.lock().iter_mut().find(|(w, _)| *w == worker) {
            let _ = child.kill();
        }
    }
}
