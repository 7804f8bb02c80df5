//! Fuzzing the frame decoder: every input, however broken, decodes to a
//! message or to `Error::Codec`, never a panic.
//!
//! The corpus in `tests/corpus/frames/` holds valid frames of every kind
//! and broken ones found interesting; proptest mutates them (flipped
//! bytes, cuts, garbage appended, lengths rewritten) and also feeds pure
//! noise. `DIRK_WRITE_CORPUS=1 cargo test --lib fuzz` rewrites the seed
//! files from [`seeds`].

use std::path::PathBuf;

use proptest::prelude::*;

use super::frame::{Arg, Blob, Blobs, Message, Outcome, decode_frame, encode};
use super::wire;
use crate::Error;

const COOKIE: u64 = 0x5eed_c0de_d1e4_0001;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/frames")
}

fn whole(message: &Message, blobs: Blobs) -> Vec<u8> {
    let (mut head, payload) = encode(message, blobs, COOKIE).expect("seed frames encode");
    head.extend_from_slice(&payload);
    head
}

/// One valid frame of every kind, some with values.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut blobs = Blobs::default();
    let values = blobs.push(&wire::to_vec(&vec![0.5f64, 1.5, 2.5]).unwrap());
    let text = blobs.push(&wire::to_vec(&String::from("dirk")).unwrap());
    let run = Message::Run {
        call: 42,
        task: 0xfeed,
        thread: Some(1),
        args: vec![
            Arg::Blob(values),
            Arg::Blob(text),
            Arg::Object(7),
            Arg::Await(8),
            Arg::File { path: "/data/v.dirk".into(), fingerprint: 9 },
        ],
        free: vec![3],
    };
    let mut done_blobs = Blobs::default();
    let result = done_blobs.push(&wire::to_vec(&17u64).unwrap());
    let mut give_blobs = Blobs::default();
    let given = give_blobs.push(&wire::to_vec(&vec![1u32, 2, 3]).unwrap());
    let mut relay_blobs = Blobs::default();
    let relayed = relay_blobs.push(&wire::to_vec(&vec![4u32, 5]).unwrap());
    vec![
        ("challenge", whole(&Message::Challenge { nonce: [3; 32] }, Blobs::default())),
        ("cancel", whole(&Message::Cancel { call: 42 }, Blobs::default())),
        ("hello", whole(&Message::Hello { worker: 1, pid: 1234, nonce: [6; 32], proof: [7; 32] }, Blobs::default())),
        (
            "welcome",
            whole(
                &Message::Welcome {
                    threads: 2,
                    workers: 3,
                    to_worker_ring: "/dev/shm/a".into(),
                    to_main_ring: "/dev/shm/b".into(),
                    proof: [8; 32],
                },
                Blobs::default(),
            ),
        ),
        ("ready", whole(&Message::Ready { threads: 2 }, Blobs::default())),
        ("run", whole(&run, blobs)),
        (
            "done_value",
            whole(
                &Message::Done { call: 42, micros: 10, outcome: Outcome::Value { blob: result, size: 8 } },
                done_blobs,
            ),
        ),
        (
            "done_kept",
            whole(&Message::Done { call: 43, micros: 10, outcome: Outcome::Kept { size: 1 << 20 } }, Blobs::default()),
        ),
        (
            "done_panicked",
            whole(
                &Message::Done { call: 44, micros: 1, outcome: Outcome::Panicked { message: "boom".into() } },
                Blobs::default(),
            ),
        ),
        ("pull", whole(&Message::Pull { object: 9 }, Blobs::default())),
        (
            "value_ring",
            whole(&Message::Value { object: 9, blob: Blob::Ring { start: 0, pos: 64, len: 4096 } }, Blobs::default()),
        ),
        ("free", whole(&Message::Free { objects: vec![9, 10] }, Blobs::default())),
        ("shutdown", whole(&Message::Shutdown, Blobs::default())),
        ("give", whole(&Message::Give { object: 8, blob: given }, give_blobs)),
        ("withhold", whole(&Message::Withhold { object: 8 }, Blobs::default())),
        ("forget", whole(&Message::Forget { calls: vec![42, 43] }, Blobs::default())),
        ("forward", whole(&Message::Forward { object: 8, to: 2 }, Blobs::default())),
        ("relay", whole(&Message::Relay { object: 8, to: 2, blob: relayed }, relay_blobs)),
    ]
}

fn corpus() -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = seeds().into_iter().map(|(_, b)| b).collect();
    if let Ok(dir) = std::fs::read_dir(corpus_dir()) {
        let mut files: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        files.sort();
        all.extend(files.into_iter().filter_map(|p| std::fs::read(p).ok()));
    }
    all
}

/// Decodes without panicking; an error must be a codec error.
fn check(bytes: &[u8]) {
    match std::panic::catch_unwind(|| decode_frame(bytes, COOKIE)) {
        Ok(Ok(_)) | Ok(Err(Error::Codec(_))) => {}
        Ok(Err(other)) => panic!("a bad frame gave {other:?}, not a codec error"),
        Err(_) => panic!("the decoder panicked on {} bytes: {:02x?}", bytes.len(), &bytes[..bytes.len().min(64)]),
    }
}

#[test]
fn the_corpus_decodes_and_its_seeds_round_trip() {
    if std::env::var_os("DIRK_WRITE_CORPUS").is_some() {
        std::fs::create_dir_all(corpus_dir()).unwrap();
        for (name, bytes) in seeds() {
            std::fs::write(corpus_dir().join(format!("{name}.bin")), bytes).unwrap();
        }
    }
    for (name, bytes) in seeds() {
        assert!(decode_frame(&bytes, COOKIE).is_ok(), "seed {name}");
    }
    let files = std::fs::read_dir(corpus_dir()).map(|d| d.count()).unwrap_or(0);
    assert!(files >= seeds().len(), "the corpus in {} has {files} files", corpus_dir().display());
    for bytes in corpus() {
        check(&bytes);
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bits: u8 },
    Cut { at: usize },
    Append { bytes: Vec<u8> },
    Length { field: usize, value: u64 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, bits)| Mutation::Flip { at, bits }),
        any::<usize>().prop_map(|at| Mutation::Cut { at }),
        proptest::collection::vec(any::<u8>(), 1..64).prop_map(|bytes| Mutation::Append { bytes }),
        (0..2usize, prop_oneof![Just(0u64), Just(u64::MAX), 0..4096u64, any::<u64>()])
            .prop_map(|(field, value)| Mutation::Length { field, value }),
    ]
}

fn apply(mut frame: Vec<u8>, m: &Mutation) -> Vec<u8> {
    match m {
        Mutation::Flip { at, bits } if !frame.is_empty() => {
            let at = at % frame.len();
            frame[at] ^= bits;
        }
        Mutation::Cut { at } => frame.truncate(at % (frame.len() + 1)),
        Mutation::Append { bytes } => frame.extend_from_slice(bytes),
        Mutation::Length { field, value } if frame.len() >= 32 => {
            let at = 16 + 8 * field;
            frame[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }
        _ => {}
    }
    frame
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_frames_never_panic(seed in any::<prop::sample::Index>(), ms in proptest::collection::vec(mutation(), 1..4)) {
        let corpus = corpus();
        let mut frame = corpus[seed.index(corpus.len())].clone();
        for m in &ms {
            frame = apply(frame, m);
        }
        check(&frame);
    }

    #[test]
    fn noise_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes);
        // With a valid header in front, the payload is the noise.
        let mut framed = whole(&Message::Shutdown, Blobs::default())[..32].to_vec();
        framed[16..24].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
        framed[24..32].copy_from_slice(&0u64.to_le_bytes());
        framed.extend_from_slice(&bytes);
        check(&framed);
    }
}

/// The cargo-fuzz corpora in `fuzz/corpus/`: frames (the seeds above, with
/// the targets' cookie), handshakes and ring files.
fn fuzz_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    use super::auth;
    let mut out: Vec<(&'static str, String, Vec<u8>)> = Vec::new();
    for (name, bytes) in seeds() {
        out.push(("frame", name.to_owned(), bytes));
    }
    let secret = [0x42u8; 32];
    let challenge = [0x17u8; 32];
    let cookie = auth::cookie(&secret);
    let nonce = [0x99u8; 32];
    let hello =
        Message::Hello { worker: 1, pid: 7, nonce, proof: auth::hello_proof(&secret, &challenge, &nonce, 1, 0) };
    let welcome = Message::Welcome {
        threads: 2,
        workers: 1,
        to_worker_ring: String::new(),
        to_main_ring: String::new(),
        proof: auth::welcome_proof(&secret, &challenge, &challenge),
    };
    for (name, m) in [("hello", hello), ("welcome", welcome), ("challenge", Message::Challenge { nonce })] {
        let (mut head, payload) = encode(&m, Blobs::default(), cookie).expect("seed frames encode");
        head.extend_from_slice(&payload);
        let mut seed = secret.to_vec();
        seed.extend_from_slice(&challenge);
        seed.extend(head);
        out.push(("handshake", name.to_owned(), seed));
    }
    // A ring file whose header names no data at all: a capacity of zero
    // once divided every position by zero.
    let mut empty_ring = vec![1u8];
    empty_ring.extend([0u8; 24]);
    let mut page = vec![0u8; 4096];
    page[..8].copy_from_slice(b"dirkring");
    page[64..72].copy_from_slice(&64u64.to_le_bytes()); // a head past the (empty) data
    empty_ring.extend(&page);
    out.push(("ring", "zero-capacity-values".to_owned(), empty_ring.clone()));
    empty_ring[0] = 0;
    out.push(("ring", "zero-capacity-records".to_owned(), empty_ring));
    // A record ring of one region whose only record is a wrap, with the
    // writer far ahead: the reader went round it for ever.
    let mut wrap_loop = vec![0u8; 25];
    let mut file = vec![0u8; 4096 + 64];
    file[..8].copy_from_slice(b"dirkring");
    file[8..16].copy_from_slice(&64u64.to_le_bytes());
    file[64..72].copy_from_slice(&u64::MAX.to_le_bytes());
    file[4096 + 8..4096 + 16].copy_from_slice(&5u64.to_le_bytes());
    wrap_loop.extend(file);
    out.push(("ring", "wrap-at-start".to_owned(), wrap_loop));
    for (i, seed) in crate::__fuzz::ring_seeds().into_iter().enumerate() {
        let mut value = seed.clone();
        value[0] = 1; // the value ring's reader, at position 0
        out.push(("ring", format!("records{i}"), seed));
        out.push(("ring", format!("values{i}"), value));
    }
    out
}

fn fuzz_corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target)
}

#[test]
fn the_fuzz_targets_take_their_corpora_without_a_panic() {
    let seeds = fuzz_seeds();
    if std::env::var_os("DIRK_WRITE_CORPUS").is_some() {
        for (target, name, bytes) in &seeds {
            std::fs::create_dir_all(fuzz_corpus_dir(target)).unwrap();
            std::fs::write(fuzz_corpus_dir(target).join(format!("{name}.bin")), bytes).unwrap();
        }
    }
    let run = |target: &str, bytes: &[u8]| match target {
        "frame" => crate::__fuzz::frame(bytes),
        "handshake" => crate::__fuzz::handshake(bytes),
        _ => crate::__fuzz::ring(bytes),
    };
    for target in ["frame", "handshake", "ring"] {
        let files: Vec<PathBuf> =
            std::fs::read_dir(fuzz_corpus_dir(target)).unwrap().flatten().map(|e| e.path()).collect();
        assert!(!files.is_empty(), "the {target} corpus is empty");
        for f in files {
            run(target, &std::fs::read(f).unwrap());
        }
    }
    for (target, _, bytes) in &seeds {
        run(target, bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn mutated_ring_files_never_panic(ms in proptest::collection::vec(mutation(), 1..4), which in 0u8..2) {
        let seeds = crate::__fuzz::ring_seeds();
        let mut file = seeds[0].clone();
        file[0] = which;
        for m in &ms {
            file = apply(file, m);
        }
        crate::__fuzz::ring(&file);
    }
}
