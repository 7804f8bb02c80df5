//! Entry points for the cargo-fuzz targets in `fuzz/` (not an API): each
//! takes arbitrary bytes and must return without a panic, whatever they
//! are. Every byte here stands for something another process or the disk
//! could hand the runtime.

use crate::Error;
use crate::transport::{auth, frame, records, shm};

/// The cookie the fuzz corpora's frames carry.
pub const COOKIE: u64 = 0x5eed_c0de_d1e4_0001;

/// A frame from a socket: decoded, and rebuilt as an owned message.
pub fn frame(bytes: &[u8]) {
    match frame::decode_frame(bytes, COOKIE) {
        Ok(_) | Err(Error::Codec(_)) => {}
        Err(other) => panic!("a bad frame gave {other:?}, not a codec error"),
    }
}

/// A handshake as process 0 or a worker checks it: the first 32 bytes are
/// the secret, then the nonces, then a frame whose proof is checked.
pub fn handshake(bytes: &[u8]) {
    let Some((secret, rest)) = bytes.split_first_chunk::<32>() else { return };
    let Some((challenge, rest)) = rest.split_first_chunk::<32>() else { return };
    let cookie = auth::cookie(secret);
    let Ok(message) = frame::decode_frame(rest, cookie) else { return };
    match message {
        frame::Message::Hello { worker, nonce, proof, .. } => {
            let _ = auth::same(&proof, &auth::hello_proof(secret, challenge, &nonce, worker, 0));
        }
        frame::Message::Welcome { proof, .. } => {
            let _ = auth::same(&proof, &auth::welcome_proof(secret, challenge, challenge));
        }
        _ => {}
    }
}

/// A ring file another process wrote: the first byte picks the reader
/// (streaming records or the value ring), the next 24 the position a
/// `Run` frame would name for a value, the rest is the file.
pub fn ring(bytes: &[u8]) {
    let Some((&which, rest)) = bytes.split_first() else { return };
    let Some((position, file)) = rest.split_first_chunk::<24>() else { return };
    let word = |i: usize| u64::from_le_bytes(position[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let path = std::env::temp_dir().join(format!("dirk-fuzz-ring-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    if std::fs::write(&path, file).is_err() {
        return;
    }
    if which % 2 == 0 {
        if let Ok(mut reader) = records::RecordReader::open(&path) {
            for _ in 0..64 {
                match reader.peek() {
                    Ok(Some(_)) => reader.advance(),
                    Ok(None) | Err(_) => break,
                }
            }
        }
    } else if let Ok(consumer) = shm::Consumer::open(&path) {
        let _ = consumer.read(word(0), word(1), word(2));
    }
    let _ = std::fs::remove_file(&path);
}

/// Seeds for the ring target: valid files with records and values in them.
pub fn ring_seeds() -> Vec<Vec<u8>> {
    let dir = std::env::temp_dir().join(format!("dirk-fuzz-seeds-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let mut out = Vec::new();
    let path = dir.join("records");
    let _ = std::fs::remove_file(&path);
    if let Ok(_reader) = records::RecordReader::create(&path, 4096)
        && let Ok(mut writer) = records::RecordWriter::open(&path)
    {
        for k in 0..5u8 {
            writer.push(records::Kind::Value, &[k; 40]);
        }
        if let Ok(file) = std::fs::read(&path) {
            let mut seed = vec![0u8; 25];
            seed.extend(file);
            out.push(seed);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    out
}
