//! Who may join a cluster: proof of the cluster secret by challenge and
//! response, so that the secret itself never crosses a socket (as Erlang's
//! distribution authenticates its nodes).
//!
//! - Process 0 and a worker it started: process 0 sends `Challenge` with a
//!   fresh nonce; the worker answers `Hello` with a nonce of its own and
//!   `hello_proof` over both; process 0 answers `Welcome` with
//!   `welcome_proof`, so the worker knows it reached process 0 and not a
//!   squatter. A proof binds both nonces, the worker's id and who it is
//!   addressed to, so it is worth nothing on another connection.
//! - A link between two workers (and an MPI rank's first message) carries
//!   no challenge: the `Hello` proves the secret over the sender's nonce,
//!   and the receiver refuses a nonce it has seen before (a replay).
//!
//! The proof is BLAKE3 in keyed mode (a MAC) with the secret as the key.
//! The frame cookie, the first check on every frame, is derived the same
//! way, so no frame carries any byte of the secret.

use std::collections::HashSet;
use std::io::Read;

use crate::Error;
use crate::sync::Mutex;

/// The nonce of a connection without a challenge (worker to worker, MPI).
pub(crate) const NO_CHALLENGE: [u8; 32] = [0; 32];

/// 32 random bytes from the kernel.
pub(crate) fn random() -> Result<[u8; 32], Error> {
    let mut s = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut s))
        .map_err(|e| Error::Config(format!("could not read /dev/urandom: {e}")))?;
    Ok(s)
}

fn mac(secret: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(secret);
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    *h.finalize().as_bytes()
}

/// The cookie every frame of the cluster carries in its header.
pub(crate) fn cookie(secret: &[u8; 32]) -> u64 {
    let tag = mac(secret, &[b"dirk frame cookie"]);
    u64::from_le_bytes(tag[..8].try_into().expect("8 bytes"))
}

/// What worker `worker` sends to prove the secret to `to`, answering
/// `challenge` ([`NO_CHALLENGE`] on a link without one) with its `nonce`.
pub(crate) fn hello_proof(secret: &[u8; 32], challenge: &[u8; 32], nonce: &[u8; 32], worker: u32, to: u32) -> [u8; 32] {
    mac(secret, &[b"dirk hello", challenge, nonce, &worker.to_le_bytes(), &to.to_le_bytes()])
}

/// What process 0 sends back to prove the secret to the worker whose
/// `Hello` carried `nonce`.
pub(crate) fn welcome_proof(secret: &[u8; 32], challenge: &[u8; 32], nonce: &[u8; 32]) -> [u8; 32] {
    mac(secret, &[b"dirk welcome", challenge, nonce])
}

/// Compares two proofs in time independent of where they differ.
pub(crate) fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The nonces a listener without challenges has accepted: a `Hello` seen
/// before is a replay.
#[derive(Default)]
pub(crate) struct Seen(Mutex<HashSet<[u8; 32]>>);

impl Seen {
    /// Whether `nonce` is new (and remembers it).
    pub(crate) fn first(&self, nonce: &[u8; 32]) -> bool {
        self.0.lock().insert(*nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; 32] = [0x5a; 32];

    #[test]
    fn a_proof_holds_for_its_own_connection_only() {
        let (c, n) = ([1; 32], [2; 32]);
        let proof = hello_proof(&SECRET, &c, &n, 3, 0);
        assert!(same(&proof, &hello_proof(&SECRET, &c, &n, 3, 0)));
        assert!(!same(&proof, &hello_proof(&[0x5b; 32], &c, &n, 3, 0)), "another secret");
        assert!(!same(&proof, &hello_proof(&SECRET, &[9; 32], &n, 3, 0)), "another challenge");
        assert!(!same(&proof, &hello_proof(&SECRET, &c, &n, 4, 0)), "another worker");
        assert!(!same(&proof, &hello_proof(&SECRET, &c, &n, 3, 2)), "addressed to another");
        assert!(!same(&proof, &welcome_proof(&SECRET, &c, &n)), "a welcome is no hello");
    }

    #[test]
    fn the_cookie_is_no_part_of_the_secret() {
        let secret: [u8; 32] = std::array::from_fn(|i| i as u8 * 7 + 1);
        let c = cookie(&secret).to_le_bytes();
        assert!(!secret.windows(8).any(|w| w == c));
        assert_ne!(cookie(&secret), cookie(&SECRET));
    }

    #[test]
    fn a_nonce_is_accepted_once() {
        let seen = Seen::default();
        assert!(seen.first(&[4; 32]));
        assert!(!seen.first(&[4; 32]));
        assert!(seen.first(&[5; 32]));
    }
}
