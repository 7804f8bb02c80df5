//! A worker joining process 0 over its socket: process 0 challenges, the
//! worker proves the cluster secret without sending it and checks process
//! 0's proof in turn (`transport/auth.rs`), then learns its settings.

use std::time::Duration;

use tokio::net::UnixStream;

use crate::transport::auth;
use crate::transport::frame::{self, Blobs, Message};
use crate::transport::socket::{read_frame, write_frame};

pub(super) enum Refusal {
    NoProcess0(String),
    Refused(String),
}

pub(super) async fn handshake(
    path: std::path::PathBuf,
    id: u32,
    secret: [u8; 32],
    cookie: u64,
) -> Result<(UnixStream, usize, usize, String, String), Refusal> {
    let mut stream = tokio::time::timeout(Duration::from_secs(5), UnixStream::connect(&path))
        .await
        .map_err(|_| Refusal::NoProcess0("timed out".to_owned()))?
        .map_err(|e| Refusal::NoProcess0(e.to_string()))?;
    // Process 0 challenges; the answer proves the secret without sending it.
    let challenge = tokio::time::timeout(Duration::from_secs(10), read_frame(&mut stream, cookie))
        .await
        .map_err(|_| Refusal::Refused("no challenge".to_owned()))?
        .map_err(|e| Refusal::Refused(e.to_string()))?;
    let Ok(Message::Challenge { nonce: challenge }) = challenge.owned() else {
        return Err(Refusal::Refused("the first frame was not a challenge".to_owned()));
    };
    let nonce = auth::random().map_err(|e| Refusal::Refused(e.to_string()))?;
    let proof = auth::hello_proof(&secret, &challenge, &nonce, id, 0);
    let hello = Message::Hello { worker: id, pid: std::process::id(), nonce, proof };
    let frame = frame::encode(&hello, Blobs::default(), cookie).map_err(|e| Refusal::Refused(e.to_string()))?;
    write_frame(&mut stream, &frame).await.map_err(|e| Refusal::Refused(e.to_string()))?;
    let welcome = tokio::time::timeout(Duration::from_secs(30), read_frame(&mut stream, cookie))
        .await
        .map_err(|_| Refusal::Refused("no answer".to_owned()))?
        .map_err(|e| Refusal::Refused(e.to_string()))?;
    match welcome.owned() {
        Ok(Message::Welcome { threads, workers, to_worker_ring, to_main_ring, proof }) => {
            if !auth::same(&proof, &auth::welcome_proof(&secret, &challenge, &nonce)) {
                return Err(Refusal::Refused("the process at the socket did not prove the cluster secret".to_owned()));
            }
            Ok((stream, threads as usize, workers as usize, to_worker_ring, to_main_ring))
        }
        Ok(other) => Err(Refusal::Refused(format!("unexpected answer {other:?}"))),
        Err(e) => Err(Refusal::Refused(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{UnixListener, UnixStream};

    use super::{Refusal, handshake};
    use crate::cluster::launch::welcome;
    use crate::sync::Mutex;
    use crate::transport::auth;
    use crate::transport::frame::{self, Blobs, Message};
    use crate::transport::socket::{Io, read_frame, write_frame};

    const SECRET: [u8; 32] = [0xa7; 32];

    fn dir() -> tempdir::Dir {
        tempdir::Dir::new()
    }

    mod tempdir {
        /// A fresh directory, removed when the test ends.
        pub(super) struct Dir(pub(super) std::path::PathBuf);
        impl Dir {
            pub(super) fn new() -> Dir {
                let d = std::env::temp_dir().join(format!("dirk-auth-{}-{:x}", std::process::id(), rand()));
                std::fs::create_dir_all(&d).unwrap();
                Dir(d)
            }
        }
        fn rand() -> u64 {
            u64::from_le_bytes(crate::transport::auth::random().unwrap()[..8].try_into().unwrap())
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    /// Copies bytes from `from` to `to`, keeping a copy of them in `log`.
    async fn pipe(
        mut from: tokio::net::unix::OwnedReadHalf,
        mut to: tokio::net::unix::OwnedWriteHalf,
        log: Arc<Mutex<Vec<u8>>>,
    ) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0 || to.write_all(&buf[..n]).await.is_err() {
                break;
            }
            log.lock().extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn the_handshake_proves_the_secret_without_sending_any_byte_of_it() {
        let io = Io::start().unwrap();
        let d = dir();
        let (main, proxy) = (d.0.join("main.sock"), d.0.join("proxy.sock"));
        let cookie = frame::cookie(&SECRET);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let (threads, workers) = io.block_on(async move {
            let zero = UnixListener::bind(&main).unwrap();
            let middle = UnixListener::bind(&proxy).unwrap();
            // Every byte between the worker and process 0 passes here.
            tokio::spawn(async move {
                let (w, _) = middle.accept().await.unwrap();
                let z = UnixStream::connect(&main).await.unwrap();
                let ((wr, ww), (zr, zw)) = (w.into_split(), z.into_split());
                tokio::spawn(pipe(wr, zw, log.clone()));
                pipe(zr, ww, log).await;
            });
            let rings = vec![("down".to_owned(), "up".to_owned())];
            let zero_side = tokio::spawn(async move {
                let (s, _) = zero.accept().await.unwrap();
                welcome(s, SECRET, cookie, 1, 2, &rings).await
            });
            let Ok((mut stream, threads, workers, down, up)) = handshake(proxy, 1, SECRET, cookie).await else {
                panic!("the worker was refused")
            };
            assert_eq!((down.as_str(), up.as_str()), ("down", "up"));
            let ready = frame::encode(&Message::Ready { threads: 2 }, Blobs::default(), cookie).unwrap();
            write_frame(&mut stream, &ready).await.unwrap();
            let joined = zero_side.await.unwrap().unwrap().expect("process 0 took the worker");
            assert_eq!(joined.0, 1);
            (threads, workers)
        });
        assert_eq!((threads, workers), (2, 1));
        let bytes = seen.lock().clone();
        assert!(bytes.len() > 3 * 32, "the handshake's frames were seen ({} bytes)", bytes.len());
        assert!(!bytes.windows(4).any(|w| w == &SECRET[..4]), "no part of the secret crossed the socket");
    }

    #[test]
    fn a_worker_refuses_a_process_0_that_cannot_prove_the_secret() {
        let io = Io::start().unwrap();
        let d = dir();
        let path = d.0.join("squat.sock");
        let cookie = frame::cookie(&SECRET);
        let refusal = io.block_on(async move {
            let squatter = UnixListener::bind(&path).unwrap();
            // It knows the cookie (say, from an earlier capture) but not the secret.
            tokio::spawn(async move {
                let (mut s, _) = squatter.accept().await.unwrap();
                let challenge =
                    frame::encode(&Message::Challenge { nonce: [1; 32] }, Blobs::default(), cookie).unwrap();
                write_frame(&mut s, &challenge).await.unwrap();
                let _hello = read_frame(&mut s, cookie).await.unwrap();
                let welcome = Message::Welcome {
                    threads: 1,
                    workers: 1,
                    to_worker_ring: String::new(),
                    to_main_ring: String::new(),
                    proof: auth::welcome_proof(&[0; 32], &[1; 32], &[0; 32]),
                };
                write_frame(&mut s, &frame::encode(&welcome, Blobs::default(), cookie).unwrap()).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            });
            handshake(path, 1, SECRET, cookie).await
        });
        match refusal {
            Err(Refusal::Refused(why)) => assert!(why.contains("did not prove the cluster secret"), "{why}"),
            _ => panic!("the worker trusted a process that does not know the secret"),
        }
    }
}
