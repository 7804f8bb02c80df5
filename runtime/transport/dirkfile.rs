//! The dirk file format's header, shared by `fs` (which writes and reads
//! files) and the worker processes (which map a file a task was given):
//!
//! | bytes | what |
//! |---|---|
//! | 0..8 | `dirkfile` |
//! | 8..10 | format version (1) |
//! | 10..12 | payload format: 1 rkyv, 2 raw little-endian elements |
//! | 16..24 | fingerprint of the value's type |
//! | 24..32 | payload length in bytes |
//!
//! The payload starts at byte [`HEADER`], so a memory map of the file holds
//! it at a 16-byte boundary and an rkyv archive is read in place.

use std::fs::File as StdFile;
use std::path::Path;

use crate::Error;

const MAGIC: &[u8; 8] = b"dirkfile";
const VERSION: u16 = 1;
/// Where the payload starts.
pub(crate) const HEADER: usize = 64;
/// The payload format code of an rkyv archive.
pub(crate) const RKYV: u16 = 1;
/// The payload format code of raw little-endian elements.
pub(crate) const RAW: u16 = 2;

/// A fingerprint of the type named `type_name`, kept in the header: a file
/// written for one type is not read as another.
pub(crate) fn fingerprint_of(type_name: &str) -> u64 {
    let hash = blake3::hash(type_name.as_bytes());
    u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"))
}

pub(crate) fn io_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Io(format!("{}: {what}: {e}", path.display()))
}

pub(crate) fn codec_error(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Codec(format!("{}: {what}", path.display()))
}

/// The header of a file of `format` for the type `fingerprint` names, with
/// `len` payload bytes.
pub(crate) fn header(format: u16, fingerprint: u64, len: u64) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..8].copy_from_slice(MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    h[10..12].copy_from_slice(&format.to_le_bytes());
    h[16..24].copy_from_slice(&fingerprint.to_le_bytes());
    h[24..32].copy_from_slice(&len.to_le_bytes());
    h
}

/// Checks `h` (the first bytes of `path`, `size` bytes in all) as a header
/// of `format` for the type `want` fingerprints (`type_name` for the
/// message); the payload length.
pub(crate) fn check(path: &Path, h: &[u8], size: u64, format: u16, want: u64, type_name: &str) -> Result<u64, Error> {
    if h.len() < HEADER || &h[..8] != MAGIC {
        return Err(codec_error(path, "not a dirk file (no `dirkfile` header)"));
    }
    let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
    let u64_at = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().expect("8 bytes"));
    if u16_at(8) != VERSION {
        return Err(codec_error(path, format_args!("file format version {}, expected {VERSION}", u16_at(8))));
    }
    if u16_at(10) != format {
        let name = |f: u16| match f {
            RKYV => "rkyv",
            RAW => "raw",
            _ => "unknown",
        };
        return Err(codec_error(path, format_args!("holds a {} payload, not {}", name(u16_at(10)), name(format))));
    }
    if u64_at(16) != want {
        return Err(codec_error(
            path,
            format_args!("was not written as a `{type_name}` (its type fingerprint differs)"),
        ));
    }
    let len = u64_at(24);
    if HEADER as u64 + len != size {
        return Err(codec_error(
            path,
            format_args!("is {size} bytes, its header says {} (truncated or grown)", HEADER as u64 + len),
        ));
    }
    Ok(len)
}

pub(crate) fn open_std(path: &Path) -> Result<(StdFile, u64), Error> {
    let f = StdFile::open(path).map_err(|e| io_error(path, "cannot open", e))?;
    let size = f.metadata().map_err(|e| io_error(path, "cannot read its size", e))?.len();
    Ok((f, size))
}

/// Maps the rkyv file at `path` for the type `want` fingerprints, its
/// header checked (`type_name` names the type in a message).
pub(crate) fn map_checked(path: &Path, want: u64, type_name: &str) -> Result<memmap2::Mmap, Error> {
    let (f, size) = open_std(path)?;
    // SAFETY: the map is read-only and private; a file changed under it
    // while mapped would be the user's race (as with any memory map), which
    // validation before reading cannot prevent; `tofile` replaces files by
    // renaming, which leaves maps intact.
    let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| io_error(path, "cannot map", e))?;
    check(path, &map, size, RKYV, want, type_name)?;
    Ok(map)
}
