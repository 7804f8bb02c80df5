//! Links between workers: a value one worker makes and another's call
//! awaits goes straight from the first to the second, not through
//! process 0 (one hop instead of two, and process 0's I/O thread off the
//! path).
//!
//! Protocol:
//!
//! 1. Every worker listens on its own Unix socket beside process 0's
//!    ([`peer_path`]) before it says `Ready`, so a worker that process 0
//!    names as a destination is already listening.
//! 2. Process 0 asks the worker that makes an object to give it to another
//!    worker (`Forward`, see `leader/ahead.rs`). The first time a worker
//!    gives to a given peer it connects ([`Peers::outbox`]) and sends
//!    `Hello` proving the cluster secret (`transport/auth.rs`); the peer
//!    checks it ([`accept`]) and refuses anyone else, and any replay. A link carries frames one
//!    way: the connecting worker's `Give`s. The receiving side takes
//!    nothing else from a peer.
//! 3. A worker that cannot reach a peer (it died, or refused) sends the
//!    value to process 0 instead (`Relay`), which gives it on.
//!
//! Under MPI every rank already reaches every other: a peer's outbox is an
//! MPI outbox, and frames from ranks other than 0 are peer frames.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;

use crate::Error;
use crate::sync::Mutex;
use crate::transport::auth;
use crate::transport::frame::{Blobs, Message};
use crate::transport::socket::{self, Incoming, Outbox, read_frame};

/// Where worker `worker` listens for its peers, beside process 0's socket.
pub(crate) fn peer_path(main: &Path, worker: u32) -> PathBuf {
    let stem = main.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    main.with_file_name(format!("{stem}-w{worker}.sock"))
}

/// Makes the outbox to one peer.
type Connect = Box<dyn Fn(u32) -> Result<Outbox, Error> + Send + Sync>;

/// This worker's links to its peers, made on first use.
pub(crate) struct Peers {
    links: Mutex<HashMap<u32, Outbox>>,
    connect: Connect,
    /// The workers of the cluster, 1 to `workers`.
    workers: u32,
    me: u32,
}

impl Peers {
    #[cfg_attr(not(any(test, feature = "mpi")), allow(dead_code))]
    pub(crate) fn new(me: u32, workers: u32, connect: Connect) -> Arc<Peers> {
        Arc::new(Peers { links: Mutex::new(HashMap::new()), connect, workers, me })
    }

    /// Links to peers over Unix sockets: connects to `peer_path(main, to)`
    /// and introduces itself with the cluster secret.
    pub(crate) fn over_sockets(
        me: u32,
        workers: u32,
        main: PathBuf,
        io: tokio::runtime::Handle,
        secret: [u8; 32],
        cookie: u64,
    ) -> Arc<Peers> {
        Arc::new_cyclic(|peers: &std::sync::Weak<Peers>| {
            let peers = peers.clone();
            let connect = move |to: u32| -> Result<Outbox, Error> {
                let path = peer_path(&main, to);
                let failed = |e: std::io::Error| Error::Transport(format!("could not reach worker {to}: {e}"));
                let std_stream = std::os::unix::net::UnixStream::connect(&path).map_err(failed)?;
                std_stream.set_nonblocking(true).map_err(failed)?;
                let stream = {
                    let _in_io = io.enter();
                    tokio::net::UnixStream::from_std(std_stream).map_err(failed)?
                };
                let peers = peers.clone();
                let closed = Box::new(move |_why: Error| {
                    if let Some(peers) = peers.upgrade() {
                        peers.links.lock().remove(&to);
                    }
                });
                // Nothing comes back on this link.
                let outbox = socket::start_link(&io, stream, cookie, Arc::new(|_| {}), closed);
                // The secret is proved, not sent: over a fresh nonce, for `to` alone.
                let nonce = auth::random()?;
                let proof = auth::hello_proof(&secret, &auth::NO_CHALLENGE, &nonce, me, to);
                outbox.send(&Message::Hello { worker: me, pid: std::process::id(), nonce, proof }, Blobs::default())?;
                Ok(outbox)
            };
            Peers { links: Mutex::new(HashMap::new()), connect: Box::new(connect), workers, me }
        })
    }

    /// Whether `to` names another worker of the cluster.
    pub(crate) fn is_peer(&self, to: u32) -> bool {
        (1..=self.workers).contains(&to) && to != self.me
    }

    /// The outbox to worker `to`, connecting the first time.
    pub(crate) fn outbox(&self, to: u32) -> Result<Outbox, Error> {
        if !self.is_peer(to) {
            return Err(Error::Transport(format!("worker {to} is not a peer of worker {}", self.me)));
        }
        let mut links = self.links.lock();
        if let Some(outbox) = links.get(&to) {
            return Ok(outbox.clone());
        }
        // Connected under the lock (a local connect, once per peer), so
        // that two threads giving to a new peer at once open one link.
        let outbox = (self.connect)(to)?;
        Ok(links.entry(to).or_insert(outbox).clone())
    }
}

/// What a worker does with a peer's frames: `from` sent `frame`.
pub(crate) type PeerHandler = Arc<dyn Fn(u32, Incoming) + Send + Sync>;

/// Hellos a worker checks at once; a connection beyond them is closed.
const HANDSHAKES: usize = 64;

/// Accepts peers on `listener` (protocol step 2): each must say `Hello`
/// with a proof of the cluster secret over a nonce not seen before, for
/// `me`, from a worker id of the cluster other than `me`, within 10 s, or
/// its connection is closed.
pub(crate) async fn accept(
    listener: UnixListener,
    me: u32,
    workers: u32,
    secret: [u8; 32],
    cookie: u64,
    handler: PeerHandler,
) {
    let seen = Arc::new(auth::Seen::default());
    let open = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES));
    while let Ok((mut stream, _)) = listener.accept().await {
        let Ok(permit) = open.clone().try_acquire_owned() else { continue };
        let (handler, seen) = (handler.clone(), seen.clone());
        tokio::spawn(async move {
            let hello = tokio::time::timeout(Duration::from_secs(10), read_frame(&mut stream, cookie)).await;
            drop(permit);
            let Ok(Ok(hello)) = hello else { return };
            let Ok(Message::Hello { worker, nonce, proof, .. }) = hello.owned() else { return };
            let proved = auth::same(&proof, &auth::hello_proof(&secret, &auth::NO_CHALLENGE, &nonce, worker, me));
            if !proved || !(1..=workers).contains(&worker) || worker == me || !seen.first(&nonce) {
                return; // refused: the stream drops, closing the connection
            }
            let on_frame = Arc::new(move |frame| handler(worker, frame));
            // What a peer's link ending means is settled by process 0.
            let _ = socket::start_link(&tokio::runtime::Handle::current(), stream, cookie, on_frame, Box::new(|_| {}));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::frame::{ArchivedMessage, Blob};
    use crate::transport::socket::{Io, write_frame};
    use std::sync::mpsc::{Receiver, channel};

    const SECRET: [u8; 32] = [9; 32];
    const COOKIE: u64 = 0x0909_0909_0909_0909;

    #[test]
    fn peers_listen_beside_process_0() {
        let main = Path::new("/tmp/dirk-12-abcdef.sock");
        assert_eq!(peer_path(main, 3), Path::new("/tmp/dirk-12-abcdef-w3.sock"));
    }

    #[test]
    fn only_other_workers_of_the_cluster_are_peers() {
        let peers = Peers::new(2, 3, Box::new(|_| Err(Error::Transport("no link in this test".to_owned()))));
        assert!(peers.is_peer(1) && peers.is_peer(3));
        assert!(!peers.is_peer(0) && !peers.is_peer(2) && !peers.is_peer(4));
        assert!(matches!(peers.outbox(2), Err(Error::Transport(m)) if m.contains("not a peer")));
        assert!(matches!(peers.outbox(3), Err(Error::Transport(m)) if m.contains("no link")));
    }

    /// A fresh directory, removed when the test ends (also by a panic).
    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Worker 2 of 3 listening beside a process 0 socket in a fresh
    /// directory: where process 0 would listen, and the (sender, object)
    /// of every `Give` worker 2 accepts.
    fn listening(io: &Io) -> (Dir, PathBuf, Receiver<(u32, u64)>) {
        use std::hash::{BuildHasher, RandomState};
        let salt = RandomState::new().hash_one(std::time::Instant::now());
        let dir = std::env::temp_dir().join(format!("dirk-peers-test-{}-{salt:x}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let main = dir.join("p0.sock");
        let listener = {
            let _in_io = io.handle().enter();
            UnixListener::bind(peer_path(&main, 2)).unwrap()
        };
        let (tx, rx) = channel();
        let tx = std::sync::Mutex::new(tx);
        let handler: PeerHandler = Arc::new(move |from, frame: Incoming| {
            if let ArchivedMessage::Give { object, .. } = frame.message() {
                let _ = tx.lock().unwrap().send((from, object.to_native()));
            }
        });
        io.handle().spawn(accept(listener, 2, 3, SECRET, COOKIE, handler));
        (Dir(dir), main, rx)
    }

    fn give(object: u64) -> (Message, Blobs) {
        let mut blobs = Blobs::default();
        let blob: Blob = blobs.push(&crate::transport::wire::to_vec(&vec![object; 4]).unwrap());
        (Message::Give { object, blob }, blobs)
    }

    #[test]
    fn a_worker_gives_to_its_peer_over_a_link_it_opens_once() {
        let io = Io::start().unwrap();
        let (_dir, main, given) = listening(&io);
        let peers = Peers::over_sockets(1, 3, main.clone(), io.handle().clone(), SECRET, COOKIE);
        for object in [7, 8] {
            let (m, b) = give(object);
            peers.outbox(2).unwrap().send(&m, b).unwrap();
        }
        let wait = std::time::Duration::from_secs(10);
        assert_eq!(given.recv_timeout(wait).unwrap(), (1, 7));
        assert_eq!(given.recv_timeout(wait).unwrap(), (1, 8));
        assert_eq!(peers.links.lock().len(), 1, "one link, made once");
        // Worker 3 does not listen: reaching it fails (the caller relays).
        assert!(matches!(peers.outbox(3), Err(Error::Transport(m)) if m.contains("could not reach worker 3")));
    }

    #[test]
    fn a_peer_without_the_secret_with_a_foreign_id_or_replaying_is_refused() {
        let io = Io::start().unwrap();
        let (_dir, main, given) = listening(&io);
        let path = peer_path(&main, 2);
        let proof = |secret: &[u8; 32], nonce: &[u8; 32], from: u32, to: u32| {
            auth::hello_proof(secret, &auth::NO_CHALLENGE, nonce, from, to)
        };
        // A genuine hello, accepted once (below): sent again, a replay.
        let genuine = Message::Hello { worker: 1, pid: 1, nonce: [1; 32], proof: proof(&SECRET, &[1; 32], 1, 2) };
        let io2 = &io;
        let sent = io2.block_on({
            let path = path.clone();
            let genuine = genuine.clone();
            async move {
                let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
                write_frame(&mut s, &crate::transport::frame::encode(&genuine, Blobs::default(), COOKIE).unwrap())
                    .await
                    .unwrap();
                let (m, b) = give(6);
                write_frame(&mut s, &crate::transport::frame::encode(&m, b, COOKIE).unwrap()).await.unwrap();
                s
            }
        });
        assert_eq!(given.recv_timeout(std::time::Duration::from_secs(10)).unwrap(), (1, 6), "a genuine peer is heard");
        drop(sent);
        let hellos = [
            Message::Hello { worker: 1, pid: 1, nonce: [2; 32], proof: proof(&[8; 32], &[2; 32], 1, 2) },
            Message::Hello { worker: 1, pid: 1, nonce: [3; 32], proof: proof(&SECRET, &[3; 32], 1, 3) },
            Message::Hello { worker: 2, pid: 1, nonce: [4; 32], proof: proof(&SECRET, &[4; 32], 2, 2) },
            Message::Hello { worker: 4, pid: 1, nonce: [5; 32], proof: proof(&SECRET, &[5; 32], 4, 2) },
            genuine,
            Message::Ready { threads: 1 },
        ];
        for hello in hellos {
            let path = path.clone();
            let refused = io.block_on(async move {
                let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
                write_frame(&mut s, &crate::transport::frame::encode(&hello, Blobs::default(), COOKIE).unwrap())
                    .await
                    .unwrap();
                let (m, b) = give(5);
                let _ = write_frame(&mut s, &crate::transport::frame::encode(&m, b, COOKIE).unwrap()).await;
                // Refused: the peer closes the connection without reading on.
                let mut byte = [0u8; 1];
                let read = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    tokio::io::AsyncReadExt::read(&mut s, &mut byte),
                )
                .await;
                matches!(read, Ok(Ok(0)) | Ok(Err(_)))
            });
            assert!(refused, "the connection is closed");
        }
        assert!(given.try_recv().is_err(), "no refused peer's frame was taken");
    }
}
