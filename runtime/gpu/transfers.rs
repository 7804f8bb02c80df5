//! Counting what crosses between host and device, per GPU processor: every
//! upload ([`Gpu::upload`](super::Gpu::upload), a host vector's first use
//! by a kernel) and every download (a host read of device-only data) adds
//! one, with its bytes; an upload a streaming GPU stage started ahead of
//! the element's iteration (see `gpu/prefetch.rs`) counts as a
//! prefetch too. Relaxed counters: a snapshot taken after the tasks
//! that moved data were waited for sees their moves.

use std::sync::atomic::{AtomicU64, Ordering};

/// Transfer counts of one processor.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    uploads: AtomicU64,
    downloads: AtomicU64,
    bytes_uploaded: AtomicU64,
    bytes_downloaded: AtomicU64,
    prefetches: AtomicU64,
}

impl Counters {
    pub(crate) fn uploaded(&self, bytes: usize) {
        self.uploads.fetch_add(1, Ordering::Relaxed);
        self.bytes_uploaded.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn downloaded(&self, bytes: usize) {
        self.downloads.fetch_add(1, Ordering::Relaxed);
        self.bytes_downloaded.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn prefetched(&self) {
        self.prefetches.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Transfers {
        Transfers {
            uploads: self.uploads.load(Ordering::Relaxed),
            downloads: self.downloads.load(Ordering::Relaxed),
            bytes_uploaded: self.bytes_uploaded.load(Ordering::Relaxed),
            bytes_downloaded: self.bytes_downloaded.load(Ordering::Relaxed),
            prefetches: self.prefetches.load(Ordering::Relaxed),
        }
    }
}

/// How much one GPU processor has moved between host and device since its
/// runtime started: see [`Processor::transfers`](super::Processor::transfers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transfers {
    /// Host-to-device copies.
    pub uploads: u64,
    /// Device-to-host copies.
    pub downloads: u64,
    /// Bytes copied host-to-device.
    pub bytes_uploaded: u64,
    /// Bytes copied device-to-host.
    pub bytes_downloaded: u64,
    /// Of the uploads, those a streaming GPU stage started for the element
    /// after the one it was working on, before that element's iteration.
    pub prefetches: u64,
}

impl std::ops::Sub for Transfers {
    type Output = Transfers;

    /// The transfers between an earlier snapshot (`rhs`) and this one.
    fn sub(self, rhs: Transfers) -> Transfers {
        Transfers {
            uploads: self.uploads - rhs.uploads,
            downloads: self.downloads - rhs.downloads,
            bytes_uploaded: self.bytes_uploaded - rhs.bytes_uploaded,
            bytes_downloaded: self.bytes_downloaded - rhs.bytes_downloaded,
            prefetches: self.prefetches - rhs.prefetches,
        }
    }
}
