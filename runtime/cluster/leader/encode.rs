//! Archiving a call's arguments for a worker: small ones into the frame
//! through a scratch buffer, large ones into the shared-memory ring (or the
//! frame when the ring has no room).

use super::{Cluster, INLINE_MAX, Link};
use crate::Error;
use crate::sync::Mutex;
use crate::transport::frame::{Blob, Blobs};
use crate::transport::shm::Producer;
use crate::transport::wire::BlobWriter;

/// Arguments up to this size are archived in a scratch buffer first.
const SMALL: usize = 4096;

/// Copies `bytes` into `ring` when they are too large for a frame and the
/// ring has room; into the frame's `blobs` otherwise. Used by both ends of
/// a link.
pub(crate) fn copy_out(ring: Option<&Mutex<Producer>>, blobs: &mut Blobs, bytes: &[u8]) -> Blob {
    if bytes.len() > INLINE_MAX
        && let Some(ring) = ring
    {
        let mut ring = ring.lock();
        let region = ring.reserve(bytes.len());
        if let Some(short) = ring.short() {
            eprintln!("dirk: {short}: values over 64 KiB go through the socket while it lasts");
        }
        if let Some(region) = region.filter(|r| r.len >= bytes.len()) {
            // SAFETY: the reserved region is free and at least this long.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), region.ptr, bytes.len()) };
            ring.commit(&region, bytes.len());
            return Blob::Ring { start: region.start, pos: region.pos, len: bytes.len() as u64 };
        }
    }
    blobs.push(bytes)
}

impl Cluster {
    /// Archives one argument for `link`: into the ring when it is large.
    pub(super) fn encode(
        &self,
        link: &Link,
        blobs: &mut Blobs,
        value: &dyn std::any::Any,
        encode: crate::task::remote::Encode,
    ) -> Result<Blob, Error> {
        // Most arguments are small: try a scratch buffer before the ring.
        if let Some(blob) = encode_within(blobs, value, encode, SMALL) {
            return Ok(blob);
        }
        let mut ring = link.ring_out.as_ref().map(|r| r.lock());
        if let Some(ring) = ring.as_mut()
            && let Some(region) = ring.reserve(INLINE_MAX + 1).filter(|r| r.len > INLINE_MAX)
        {
            // SAFETY: the reserved region is free, aligned and ours until committed.
            let writer = unsafe { BlobWriter::fixed(region.ptr, region.len) };
            if let Ok(written) = (encode.write)(value, writer) {
                let len = written.len();
                if len > INLINE_MAX {
                    ring.commit(&region, len);
                    return Ok(Blob::Ring { start: region.start, pos: region.pos, len: len as u64 });
                }
                // SAFETY: `len` bytes were just written at `region.ptr`, which
                // nobody else touches (not committed).
                let bytes = unsafe { std::slice::from_raw_parts(region.ptr, len) };
                return Ok(blobs.push(bytes));
            }
        }
        drop(ring);
        // Larger than the ring's reserved room (or the ring is full): archived
        // aside, then into the ring (reserving for its exact size) or the frame.
        let written = (encode.write)(value, BlobWriter::growable())?;
        let bytes = written.into_vec().expect("a growable writer");
        Ok(copy_out(link.ring_out.as_ref(), blobs, &bytes))
    }
}

/// Archives a value of at most `cap` (up to [`INLINE_MAX`]) bytes into
/// `blobs`, through a scratch buffer; `None` when it is larger (found out
/// as soon as the writer runs out of room) or does not archive.
pub(super) fn encode_within(
    blobs: &mut Blobs,
    value: &dyn std::any::Any,
    encode: crate::task::remote::Encode,
    cap: usize,
) -> Option<Blob> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<rkyv::util::AlignedVec<16>> = std::cell::RefCell::new({
            let mut v = rkyv::util::AlignedVec::with_capacity(INLINE_MAX);
            v.resize(INLINE_MAX, 0);
            v
        });
    }
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        // SAFETY: the scratch buffer is this thread's, aligned, INLINE_MAX
        // bytes long (at least `cap`), and borrowed mutably for the
        // writer's whole life.
        let writer = unsafe { BlobWriter::fixed(scratch.as_mut_ptr(), cap.min(INLINE_MAX)) };
        (encode.write)(value, writer).ok().map(|w| blobs.push(&scratch[..w.len()]))
    })
}
