//! Values on the wire: the [`Wire`] bound for types that may cross a process
//! boundary, and the writer that serializes them as rkyv archives straight
//! into their destination (a frame being built, or a shared-memory ring).
//!
//! Protocol: a value is archived with rkyv's high-level serializer; the
//! receiver validates the bytes with bytecheck ([`access`]) before it reads
//! them, and then reads them in place (zero-copy) or deserializes them.
//! Archives start at 16-byte aligned addresses on both sides.

use rkyv::api::high::{HighDeserializer, HighSerializer, HighValidator};
use rkyv::rancor;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::ser::{Positional, Writer};
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Portable, Serialize};

use crate::Error;

/// The alignment every archive starts at.
pub(crate) const ALIGN: usize = 16;

/// Types whose values can move between processes: they archive with rkyv,
/// their archives validate with bytecheck, and they deserialize back.
///
/// Implemented for every such type (derive `rkyv::Archive`, `Serialize` and
/// `Deserialize` on your own types); nothing to implement by hand.
pub trait Wire:
    Archive<Archived: Deserialize<Self, HighDeserializer<rancor::Error>> + for<'a> Check<'a>>
    + for<'a> Serialize<HighSerializer<BlobWriter, ArenaHandle<'a>, rancor::Error>>
    + Sized
{
}

impl<T> Wire for T
where
    T: Archive + for<'a> Serialize<HighSerializer<BlobWriter, ArenaHandle<'a>, rancor::Error>>,
    T::Archived: Deserialize<T, HighDeserializer<rancor::Error>> + for<'a> Check<'a>,
{
}

/// An archived type that validates: `bytecheck` for rkyv's high-level validator.
pub trait Check<'a>: Portable + rkyv::bytecheck::CheckBytes<HighValidator<'a, rancor::Error>> {}

impl<'a, T> Check<'a> for T where T: Portable + rkyv::bytecheck::CheckBytes<HighValidator<'a, rancor::Error>> {}

/// Where a serializer writes: a growable aligned buffer, or a fixed region
/// of memory (a reserved stretch of a shared-memory ring). A fixed region
/// that is too small fails the serialization; the caller then falls back
/// to a growable buffer.
#[derive(Debug)]
pub struct BlobWriter {
    target: Target,
}

#[derive(Debug)]
enum Target {
    Grow(AlignedVec<ALIGN>),
    Fixed { start: *mut u8, cap: usize, len: usize },
    Stream(Stream),
}

/// Bytes handed on in chunks as they are written (a file being written
/// while the value is still being archived).
struct Stream {
    sink: Box<dyn FnMut(Vec<u8>) -> Result<(), Error> + Send>,
    buf: Vec<u8>,
    flushed: usize,
    failed: Option<Error>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("flushed", &self.flushed).field("buffered", &self.buf.len()).finish()
    }
}

/// The chunks a streaming writer hands on.
const STREAM_CHUNK: usize = 8 << 20;

// SAFETY: a fixed target is a region reserved for this writer alone (see
// `BlobWriter::fixed`); a growable one is an owned buffer.
unsafe impl Send for BlobWriter {}

impl BlobWriter {
    /// A writer into a new growable buffer.
    pub(crate) fn growable() -> BlobWriter {
        BlobWriter { target: Target::Grow(AlignedVec::new()) }
    }

    /// A writer into `cap` bytes at `start`.
    ///
    /// # Safety
    ///
    /// `start..start + cap` is writable memory that nobody else reads or
    /// writes while this writer is alive, and `start` is `ALIGN`-aligned.
    pub(crate) unsafe fn fixed(start: *mut u8, cap: usize) -> BlobWriter {
        debug_assert_eq!(start as usize % ALIGN, 0);
        BlobWriter { target: Target::Fixed { start, cap, len: 0 } }
    }

    /// A writer that hands its bytes to `sink` in chunks of 8 MiB (the
    /// last one shorter, by [`finish`](BlobWriter::finish)).
    pub(crate) fn streaming(sink: Box<dyn FnMut(Vec<u8>) -> Result<(), Error> + Send>) -> BlobWriter {
        let buf = Vec::with_capacity(STREAM_CHUNK);
        BlobWriter { target: Target::Stream(Stream { sink, buf, flushed: 0, failed: None }) }
    }

    /// Hands a streaming writer's last bytes on; the number written in all.
    pub(crate) fn finish(self) -> Result<usize, Error> {
        match self.target {
            Target::Stream(mut s) => {
                if let Some(e) = s.failed.take() {
                    return Err(e);
                }
                let n = s.flushed + s.buf.len();
                if !s.buf.is_empty() {
                    (s.sink)(std::mem::take(&mut s.buf))?;
                }
                Ok(n)
            }
            other => Ok(BlobWriter { target: other }.len()),
        }
    }

    /// The bytes written so far.
    pub(crate) fn len(&self) -> usize {
        match &self.target {
            Target::Grow(v) => v.len(),
            Target::Fixed { len, .. } => *len,
            Target::Stream(s) => s.flushed + s.buf.len(),
        }
    }

    /// The growable buffer, if this writer has one.
    pub(crate) fn into_vec(self) -> Option<AlignedVec<ALIGN>> {
        match self.target {
            Target::Grow(v) => Some(v),
            Target::Fixed { .. } | Target::Stream(_) => None,
        }
    }
}

impl Positional for BlobWriter {
    fn pos(&self) -> usize {
        self.len()
    }
}

impl Writer<rancor::Error> for BlobWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<(), rancor::Error> {
        match &mut self.target {
            Target::Grow(v) => {
                v.extend_from_slice(bytes);
                Ok(())
            }
            Target::Fixed { start, cap, len } => {
                if bytes.len() > *cap - *len {
                    return Err(<rancor::Error as rancor::Source>::new(RegionFull));
                }
                // SAFETY: `len + bytes.len() <= cap`, and the region is ours
                // alone (see `BlobWriter::fixed`); `bytes` cannot overlap it
                // since nobody else holds a reference into the region.
                unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), start.add(*len), bytes.len()) };
                *len += bytes.len();
                Ok(())
            }
            Target::Stream(s) => {
                let mut rest = bytes;
                while !rest.is_empty() {
                    let room = STREAM_CHUNK - s.buf.len();
                    let (now, later) = rest.split_at(rest.len().min(room));
                    s.buf.extend_from_slice(now);
                    rest = later;
                    if s.buf.len() == STREAM_CHUNK {
                        let full = std::mem::replace(&mut s.buf, Vec::with_capacity(STREAM_CHUNK));
                        s.flushed += full.len();
                        if let Err(e) = (s.sink)(full) {
                            let message = e.to_string();
                            s.failed = Some(e);
                            return Err(<rancor::Error as rancor::Source>::new(StreamFailed(message)));
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

#[derive(Debug)]
struct StreamFailed(String);

impl std::fmt::Display for StreamFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StreamFailed {}

#[derive(Debug)]
struct RegionFull;

impl std::fmt::Display for RegionFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the reserved region is full")
    }
}

impl std::error::Error for RegionFull {}

/// Archives `value` into `writer`.
pub(crate) fn serialize_into<T: Wire>(value: &T, writer: BlobWriter) -> Result<BlobWriter, Error> {
    rkyv::api::high::to_bytes_in::<_, rancor::Error>(value, writer)
        .map_err(|e| Error::Codec(format!("could not archive a `{}`: {e}", std::any::type_name::<T>())))
}

/// Archives `value` into a new aligned buffer.
pub(crate) fn to_vec<T: Wire>(value: &T) -> Result<AlignedVec<ALIGN>, Error> {
    // Most archives (frames' messages, small values) fit the first allocation.
    let writer = BlobWriter { target: Target::Grow(AlignedVec::with_capacity(256)) };
    Ok(serialize_into(value, writer)?.into_vec().expect("a growable writer"))
}

/// Validates `bytes` as an archived `A` and returns a reference into them.
pub(crate) fn access<A>(bytes: &[u8]) -> Result<&A, Error>
where
    A: for<'a> Check<'a>,
{
    if !(bytes.as_ptr() as usize).is_multiple_of(ALIGN) {
        return Err(Error::Codec("an archive does not start at a 16-byte boundary".to_owned()));
    }
    rkyv::access::<A, rancor::Error>(bytes)
        .map_err(|e| Error::Codec(format!("bytes from another process are not a valid `{}`: {e}", short::<A>())))
}

/// Validates and deserializes an archived `T`.
pub(crate) fn decode<T: Wire>(bytes: &[u8]) -> Result<T, Error> {
    let archived = access::<T::Archived>(bytes)?;
    rkyv::deserialize::<T, rancor::Error>(archived)
        .map_err(|e| Error::Codec(format!("could not rebuild a `{}`: {e}", std::any::type_name::<T>())))
}

fn short<A>() -> &'static str {
    let full = std::any::type_name::<A>();
    full.rsplit("::").next().unwrap_or(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streaming_writer_hands_on_the_same_bytes_in_chunks() {
        let v: Vec<u64> = (0..3_000_000).collect(); // 24 MB: three chunks and a tail
        let whole = to_vec(&v).unwrap();
        let chunks = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
        let seen = chunks.clone();
        let writer = BlobWriter::streaming(Box::new(move |c| {
            seen.lock().unwrap().push(c);
            Ok(())
        }));
        let n = serialize_into(&v, writer).unwrap().finish().unwrap();
        let chunks = chunks.lock().unwrap();
        assert_eq!(n, whole.len());
        assert!(chunks[..chunks.len() - 1].iter().all(|c| c.len() == STREAM_CHUNK));
        assert_eq!(chunks.concat(), whole.as_slice());
        // A sink that fails fails the archiving.
        let failing = BlobWriter::streaming(Box::new(|_| Err(Error::Io("disk full".into()))));
        assert!(serialize_into(&v, failing).is_err());
    }

    #[test]
    fn values_round_trip_through_both_writers() {
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        let bytes = to_vec(&v).unwrap();
        assert_eq!(decode::<Vec<f64>>(&bytes).unwrap(), v);

        let mut region = AlignedVec::<ALIGN>::with_capacity(16 << 10);
        region.resize(16 << 10, 0);
        // SAFETY: `region` is ours, aligned, and outlives the writer.
        let w = unsafe { BlobWriter::fixed(region.as_mut_ptr(), region.len()) };
        let n = serialize_into(&v, w).unwrap().len();
        assert_eq!(decode::<Vec<f64>>(&region[..n]).unwrap(), v);
    }

    #[test]
    fn pointer_sized_numbers_keep_all_64_bits() {
        // An address or a length above 4 GiB, as a task might return it.
        let wide: (usize, isize) = ((1 << 40) + 7, -(1 << 40) - 7);
        assert_eq!(decode::<(usize, isize)>(&to_vec(&wide).unwrap()).unwrap(), wide);
    }

    #[test]
    fn a_full_region_fails_instead_of_overflowing() {
        let mut region = AlignedVec::<ALIGN>::with_capacity(64);
        region.resize(64, 0);
        // SAFETY: as above.
        let w = unsafe { BlobWriter::fixed(region.as_mut_ptr(), region.len()) };
        assert!(serialize_into(&vec![1u64; 100], w).is_err());
    }

    #[test]
    fn garbage_is_a_codec_error() {
        let mut bytes = to_vec(&vec![String::from("a"), String::from("b")]).unwrap();
        let n = bytes.len();
        bytes[n - 4..].copy_from_slice(&[0xff; 4]);
        assert!(matches!(decode::<Vec<String>>(&bytes), Err(Error::Codec(_))));
        assert!(matches!(decode::<Vec<String>>(&bytes[..3]), Err(Error::Codec(_))));
    }
}
