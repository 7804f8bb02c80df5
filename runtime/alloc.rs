//! Counting allocations, so a program can prove its own pipeline
//! allocation-free.
//!
//! [`Counting`] is a global allocator that forwards to the system allocator
//! and counts every allocation (`alloc`, `alloc_zeroed` and `realloc` each
//! count one; frees are not counted): per thread, in a thread-local counter
//! read by [`thread_allocations`], and per process, read by [`allocations`].
//! A streaming region with `#![dirk(report_allocs)]` reads the thread-local
//! counter around each call of each stage, so [`Stream::stats`] reports
//! allocations per element for every stage.
//!
//! Install it once in the binary (or test binary) that should count:
//!
//! ```
//! #[global_allocator]
//! static ALLOC: dirk::alloc::Counting = dirk::alloc::Counting;
//!
//! let before = dirk::alloc::allocations();
//! let v: Vec<u64> = Vec::with_capacity(16);
//! assert!(dirk::alloc::allocations() > before);
//! assert!(dirk::alloc::is_counting());
//! # drop(v);
//! ```
//!
//! Without it the counters stay at zero and [`is_counting`] is `false`;
//! stage statistics then report no allocation figures rather than wrong ones.
//!
//! [`Stream::stats`]: crate::Stream::stats

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static TOTAL: AtomicU64 = AtomicU64::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    // A const-initialised `Cell` without a destructor: reading or writing it
    // never allocates, so the allocator itself may use it.
    static THREAD: Cell<u64> = const { Cell::new(0) };
}

/// A global allocator that counts allocations: install it with
/// `#[global_allocator] static A: dirk::alloc::Counting = dirk::alloc::Counting;`.
///
/// It adds a thread-local increment and one relaxed atomic increment to
/// every allocation, and nothing to frees.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counting;

#[inline]
fn count() {
    let _ = THREAD.try_with(|c| c.set(c.get() + 1));
    TOTAL.fetch_add(1, Ordering::Relaxed);
    if !INSTALLED.load(Ordering::Relaxed) {
        INSTALLED.store(true, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are `Counting`'s; counting touches
// only atomics and a destructor-free thread-local, never the heap.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations made by the whole process since it started (zero unless
/// [`Counting`] is the global allocator).
pub fn allocations() -> u64 {
    TOTAL.load(Ordering::Relaxed)
}

/// Allocations made by the calling thread since it started (zero unless
/// [`Counting`] is the global allocator).
#[inline]
pub fn thread_allocations() -> u64 {
    THREAD.try_with(Cell::get).unwrap_or(0)
}

/// Whether [`Counting`] is the global allocator: it has counted at least
/// one allocation.
pub fn is_counting() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}
