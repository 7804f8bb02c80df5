//! Frames: what processes of a cluster say to each other, and the checks
//! every frame passes before anything in it is read.
//!
//! A frame is a fixed 32-byte [`Header`] and a payload:
//!
//! ```text
//! header:  magic "dirk" (u32) | version (u16) | kind (u16) | cookie (u64) | message_len (u64) | blobs_len (u64)
//! payload: [ message: rkyv archive of `Message`, padded to 16 ][ blobs: archives of values, each 16-aligned ]
//! ```
//!
//! All integers are little-endian. Validation, in order, each failure an
//! [`Error::Codec`] that closes the connection: the magic, the version, a
//! known kind, the cookie (the cluster secret's tag: a frame from a process
//! outside the cluster is refused), the lengths (at most [`MAX_FRAME`]);
//! then the message archive is checked with bytecheck, its variant must
//! match the header's kind, and every blob it names must lie inside the
//! payload. Values inside blobs are checked with bytecheck when a task
//! reads them ([`wire::access`](super::wire::access)).

use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

use super::wire::{self, ALIGN};
use crate::Error;

pub(crate) const MAGIC: u32 = u32::from_le_bytes(*b"dirk");
pub(crate) const VERSION: u16 = 1;
pub(crate) const HEADER_LEN: usize = 32;
/// The largest payload a frame may carry (4 GiB); larger values travel
/// through the shared-memory ring or are refused.
pub(crate) const MAX_FRAME: u64 = 4 << 30;

/// What a frame says. Each variant is one kind of frame.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) enum Message {
    /// Process 0 to a worker: call `call` was cancelled (its body sees
    /// `dirk::cancelled()`; its answer no longer matters).
    Cancel { call: u64 },
    /// Process 0 to a worker that connected: prove the cluster secret
    /// over this nonce (see `transport/auth.rs`).
    Challenge { nonce: [u8; 32] },
    /// A worker to process 0 (or to a peer), first: who it is, a nonce of
    /// its own, and its proof of the cluster secret.
    Hello { worker: u32, pid: u32, nonce: [u8; 32], proof: [u8; 32] },
    /// Process 0 to a worker, in answer: its settings, its rings, and
    /// process 0's proof of the secret over the worker's nonce.
    Welcome { threads: u32, workers: u32, to_worker_ring: String, to_main_ring: String, proof: [u8; 32] },
    /// Worker to process 0: its runtime is up.
    Ready { threads: u32 },
    /// Run registered task `task` as call `call`, on `thread` if given;
    /// `free` names objects no longer needed (sent along, to save frames).
    Run { call: u64, task: u64, thread: Option<u32>, args: Vec<Arg>, free: Vec<u64> },
    /// A call ended.
    Done { call: u64, micros: u64, outcome: Outcome },
    /// Send the value of `object` (kept by the receiver) to the sender.
    Pull { object: u64 },
    /// The value of `object`, answering a `Pull`.
    Value { object: u64, blob: Blob },
    /// These objects are no longer needed.
    Free { objects: Vec<u64> },
    /// Stop: the worker exits.
    Shutdown,
    /// Process 0 to a worker: run streaming stage `stage` with registered
    /// task `task`: its constant arguments travel here, its streaming
    /// argument (at position `slot`) arrives element by element through the
    /// ring file `input`, results go back through the ring file `output`.
    StageStart {
        stage: u64,
        task: u64,
        thread: Option<u32>,
        consts: Vec<Blob>,
        slot: u32,
        input: String,
        output: String,
    },
    /// The other side of stage `stage` may be parked: look at its rings.
    StageBell { stage: u64 },
    /// Process 0 to a worker: stage `stage` is over (ended or cancelled).
    StageStop { stage: u64 },
    /// A worker to process 0: stage `stage` could not start.
    StageFailed { stage: u64, message: String },
    /// Process 0 to a worker: the value of `object`, for calls sent ahead
    /// that wait for it there (`Arg::Await`); the worker keeps it as that
    /// object until it is freed.
    Give { object: u64, blob: Blob },
    /// Process 0 to a worker: `object` will not come (its task failed,
    /// was cancelled or was lost); calls waiting for it fail.
    Withhold { object: u64 },
    /// Process 0 to a worker: drop these calls sent ahead, unrun; each
    /// comes again as an ordinary `Run` when its inputs are complete.
    Forget { calls: Vec<u64> },
    /// Process 0 to the worker that makes `object` (its call was sent
    /// there): give it to worker `to` directly (`Give` on a link between
    /// the two), when it is small enough to come back with its `Done`.
    Forward { object: u64, to: u32 },
    /// A worker to process 0: `object`, which it could not give to worker
    /// `to` directly; process 0 gives it instead.
    Relay { object: u64, to: u32, blob: Blob },
    /// Process 0 to a worker it has not heard from for a while: answer.
    Ping,
    /// A worker to process 0, answering `Ping`.
    Pong,
}

/// One argument of a call: a value sent along, a value the worker kept,
/// or a value the worker will have (made there by another call, or given
/// by process 0): the call waits for it.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Blob(Blob),
    Object(u64),
    Await(u64),
    /// A dirk file the worker maps itself: its path and the fingerprint
    /// of the type its header must name.
    File {
        path: String,
        fingerprint: u64,
    },
}

/// Where an archived value lies: in this frame's blob area, or in the
/// shared-memory ring the sender writes to the receiver.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub(crate) enum Blob {
    /// `len` bytes at `offset` of the blob area.
    Frame { offset: u64, len: u64 },
    /// `len` bytes at ring position `pos`; `start..pos` is padding released with it.
    Ring { start: u64, pos: u64, len: u64 },
}

/// How a call ended.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// The result, sent along (small results).
    Value { blob: Blob, size: u64 },
    /// The result is kept by the worker as object `call`.
    Kept { size: u64 },
    /// The function panicked.
    Panicked { message: String },
    /// The call could not run (unknown task, undecodable argument, ...).
    Failed { message: String },
}

impl Message {
    pub(crate) fn kind(&self) -> u16 {
        match self {
            Message::Hello { .. } => 1,
            Message::Welcome { .. } => 2,
            Message::Ready { .. } => 3,
            Message::Run { .. } => 4,
            Message::Done { .. } => 5,
            Message::Pull { .. } => 6,
            Message::Value { .. } => 7,
            Message::Free { .. } => 8,
            Message::Shutdown => 9,
            Message::StageStart { .. } => 10,
            Message::StageBell { .. } => 11,
            Message::StageStop { .. } => 12,
            Message::StageFailed { .. } => 13,
            Message::Give { .. } => 14,
            Message::Withhold { .. } => 15,
            Message::Forget { .. } => 16,
            Message::Forward { .. } => 17,
            Message::Relay { .. } => 18,
            Message::Ping => 19,
            Message::Pong => 20,
            Message::Challenge { .. } => 21,
            Message::Cancel { .. } => 22,
        }
    }
}

impl ArchivedMessage {
    fn kind(&self) -> u16 {
        match self {
            ArchivedMessage::Hello { .. } => 1,
            ArchivedMessage::Welcome { .. } => 2,
            ArchivedMessage::Ready { .. } => 3,
            ArchivedMessage::Run { .. } => 4,
            ArchivedMessage::Done { .. } => 5,
            ArchivedMessage::Pull { .. } => 6,
            ArchivedMessage::Value { .. } => 7,
            ArchivedMessage::Free { .. } => 8,
            ArchivedMessage::Shutdown => 9,
            ArchivedMessage::StageStart { .. } => 10,
            ArchivedMessage::StageBell { .. } => 11,
            ArchivedMessage::StageStop { .. } => 12,
            ArchivedMessage::StageFailed { .. } => 13,
            ArchivedMessage::Give { .. } => 14,
            ArchivedMessage::Withhold { .. } => 15,
            ArchivedMessage::Forget { .. } => 16,
            ArchivedMessage::Forward { .. } => 17,
            ArchivedMessage::Relay { .. } => 18,
            ArchivedMessage::Ping => 19,
            ArchivedMessage::Pong => 20,
            ArchivedMessage::Challenge { .. } => 21,
            ArchivedMessage::Cancel { .. } => 22,
        }
    }
}

const KINDS: std::ops::RangeInclusive<u16> = 1..=22;

/// A frame's header, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kind: u16,
    pub(crate) message_len: u64,
    pub(crate) blobs_len: u64,
}

impl Header {
    /// The payload's length: the message padded to 16, then the blobs.
    pub(crate) fn payload_len(&self) -> u64 {
        pad(self.message_len) + self.blobs_len
    }
}

fn pad(n: u64) -> u64 {
    n.div_ceil(ALIGN as u64) * ALIGN as u64
}

/// The cookie every frame of a cluster carries, derived from its secret
/// (no byte of the secret itself).
pub(crate) fn cookie(secret: &[u8; 32]) -> u64 {
    super::auth::cookie(secret)
}

/// Checks a header against the cluster's `cookie`.
pub(crate) fn decode_header(bytes: &[u8; HEADER_LEN], cookie: u64) -> Result<Header, Error> {
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let magic = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
    if magic != MAGIC {
        return Err(Error::Codec(format!("not a dirk frame (magic {magic:#010x})")));
    }
    let version = u16_at(4);
    if version != VERSION {
        return Err(Error::Codec(format!(
            "frame version {version}, expected {VERSION}: processes of one cluster run one binary"
        )));
    }
    let kind = u16_at(6);
    if !KINDS.contains(&kind) {
        return Err(Error::Codec(format!("unknown frame kind {kind}")));
    }
    if u64_at(8) != cookie {
        return Err(Error::Codec("the frame does not carry this cluster's secret".to_owned()));
    }
    let (message_len, blobs_len) = (u64_at(16), u64_at(24));
    if message_len == 0 || message_len > MAX_FRAME || blobs_len > MAX_FRAME {
        return Err(Error::Codec(format!("frame lengths out of range ({message_len} + {blobs_len} bytes)")));
    }
    Ok(Header { kind, message_len, blobs_len })
}

/// Checks a payload against its header and returns the message, read in place.
pub(crate) fn decode_payload<'p>(header: &Header, payload: &'p [u8]) -> Result<&'p ArchivedMessage, Error> {
    if payload.len() as u64 != header.payload_len() {
        return Err(Error::Codec(format!(
            "truncated frame: {} payload bytes, the header says {}",
            payload.len(),
            header.payload_len()
        )));
    }
    let message = wire::access::<ArchivedMessage>(&payload[..header.message_len as usize])?;
    if message.kind() != header.kind {
        return Err(Error::Codec(format!("frame kind {} holds a message of kind {}", header.kind, message.kind())));
    }
    let blobs_len = header.blobs_len;
    let check = |blob: &ArchivedBlob| match blob {
        ArchivedBlob::Frame { offset, len } => {
            let (offset, len) = (offset.to_native(), len.to_native());
            if offset % ALIGN as u64 != 0 || offset.checked_add(len).is_none_or(|end| end > blobs_len) {
                Err(Error::Codec(format!("a value at {offset}+{len} lies outside the frame's {blobs_len} blob bytes")))
            } else {
                Ok(())
            }
        }
        ArchivedBlob::Ring { .. } => Ok(()), // checked against the ring by its reader
    };
    // Worker ids index 64-bit masks: one out of range is a corrupt frame,
    // never a shift past the mask.
    let worker = |to: u32| {
        if (1..64).contains(&to) {
            Ok(())
        } else {
            Err(Error::Codec(format!("a frame names worker {to}; workers are 1 to 63")))
        }
    };
    match message {
        ArchivedMessage::Relay { to, .. } | ArchivedMessage::Forward { to, .. } => worker(to.to_native())?,
        _ => {}
    }
    match message {
        ArchivedMessage::Run { args, .. } => {
            for arg in args.iter() {
                if let ArchivedArg::Blob(blob) = arg {
                    check(blob)?;
                }
            }
        }
        ArchivedMessage::Done { outcome: ArchivedOutcome::Value { blob, .. }, .. } => check(blob)?,
        ArchivedMessage::Value { blob, .. }
        | ArchivedMessage::Give { blob, .. }
        | ArchivedMessage::Relay { blob, .. } => check(blob)?,
        ArchivedMessage::StageStart { consts, .. } => {
            for blob in consts.iter() {
                check(blob)?;
            }
        }
        _ => {}
    }
    Ok(message)
}

/// The blob area of a validated payload.
pub(crate) fn blobs<'p>(header: &Header, payload: &'p [u8]) -> &'p [u8] {
    &payload[pad(header.message_len) as usize..]
}

/// A frame being built: the message, and the values that travel in it.
#[derive(Debug, Default)]
pub(crate) struct Blobs {
    bytes: AlignedVec<ALIGN>,
}

impl Blobs {
    /// Appends an archive (16-aligned) and returns where it lies.
    pub(crate) fn push(&mut self, archive: &[u8]) -> Blob {
        let offset = pad(self.bytes.len() as u64);
        self.bytes.reserve(offset as usize - self.bytes.len() + archive.len());
        self.bytes.resize(offset as usize, 0);
        self.bytes.extend_from_slice(archive);
        Blob::Frame { offset, len: archive.len() as u64 }
    }
}

/// Encodes a whole frame (header, then payload) for `cookie`.
pub(crate) fn encode(message: &Message, blobs: Blobs, cookie: u64) -> Result<(Vec<u8>, AlignedVec<ALIGN>), Error> {
    let archived = wire::to_vec(message)?;
    let mut payload = AlignedVec::<ALIGN>::with_capacity(pad(archived.len() as u64) as usize + blobs.bytes.len());
    payload.extend_from_slice(&archived);
    payload.resize(pad(archived.len() as u64) as usize, 0);
    payload.extend_from_slice(&blobs.bytes);
    // Room for the payload too: a queued frame is sent as one piece.
    let mut header = Vec::with_capacity(HEADER_LEN + payload.len());
    header.extend_from_slice(&MAGIC.to_le_bytes());
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&message.kind().to_le_bytes());
    header.extend_from_slice(&cookie.to_le_bytes());
    header.extend_from_slice(&(archived.len() as u64).to_le_bytes());
    header.extend_from_slice(&(blobs.bytes.len() as u64).to_le_bytes());
    Ok((header, payload))
}

/// Decodes one frame held whole in `bytes` (header then payload): the path
/// the fuzz tests and targets drive. Connections read the header and
/// payload apart.
pub(crate) fn decode_frame(bytes: &[u8], cookie: u64) -> Result<Message, Error> {
    let head: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| Error::Codec(format!("truncated frame: {} bytes, a header has {HEADER_LEN}", bytes.len())))?;
    let header = decode_header(head, cookie)?;
    let mut payload = AlignedVec::<ALIGN>::new();
    payload.extend_from_slice(&bytes[HEADER_LEN..]);
    let message = decode_payload(&header, &payload)?;
    rkyv::deserialize::<Message, rkyv::rancor::Error>(message).map_err(|e| Error::Codec(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(message: &Message, blobs: Blobs, cookie: u64) -> Vec<u8> {
        let (mut h, p) = encode(message, blobs, cookie).unwrap();
        h.extend_from_slice(&p);
        h
    }

    #[test]
    fn frames_round_trip() {
        let mut blobs = Blobs::default();
        let blob = blobs.push(&wire::to_vec(&vec![1.5f64; 10]).unwrap());
        let m = Message::Run {
            call: 7,
            task: 99,
            thread: Some(1),
            args: vec![Arg::Blob(blob), Arg::Object(3), Arg::Await(4)],
            free: vec![],
        };
        assert_eq!(decode_frame(&whole(&m, blobs, 42), 42).unwrap(), m);
    }

    #[test]
    fn a_wrong_cookie_truncation_or_bad_blob_is_a_codec_error() {
        let m = Message::Pull { object: 5 };
        let bytes = whole(&m, Blobs::default(), 42);
        assert!(matches!(decode_frame(&bytes, 43), Err(Error::Codec(e)) if e.contains("secret")));
        for cut in [0, 10, HEADER_LEN, bytes.len() - 1] {
            assert!(matches!(decode_frame(&bytes[..cut], 42), Err(Error::Codec(_))), "cut at {cut}");
        }
        let bad = Message::Value { object: 1, blob: Blob::Frame { offset: 0, len: 64 } };
        let bytes = whole(&bad, Blobs::default(), 42);
        assert!(matches!(decode_frame(&bytes, 42), Err(Error::Codec(e)) if e.contains("outside")));
        let bad = Message::Give { object: 1, blob: Blob::Frame { offset: 0, len: 64 } };
        let bytes = whole(&bad, Blobs::default(), 42);
        assert!(matches!(decode_frame(&bytes, 42), Err(Error::Codec(e)) if e.contains("outside")));
        let bad = Message::Relay { object: 1, to: 2, blob: Blob::Frame { offset: 16, len: 1 } };
        let bytes = whole(&bad, Blobs::default(), 42);
        assert!(matches!(decode_frame(&bytes, 42), Err(Error::Codec(e)) if e.contains("outside")));
    }

    #[test]
    fn a_worker_id_outside_the_masks_is_a_codec_error() {
        for to in [0, 64, 65, u32::MAX] {
            let relay = Message::Relay { object: 1, to, blob: Blob::Frame { offset: 0, len: 0 } };
            let forward = Message::Forward { object: 1, to };
            for m in [relay, forward] {
                let bytes = whole(&m, Blobs::default(), 42);
                let err = decode_frame(&bytes, 42).unwrap_err();
                assert!(matches!(&err, Error::Codec(e) if e.contains(&format!("names worker {to}"))), "{err}");
            }
        }
        for to in [1, 63] {
            let m = Message::Forward { object: 1, to };
            assert!(decode_frame(&whole(&m, Blobs::default(), 42), 42).is_ok(), "worker {to}");
        }
    }
}
