//! Memory for task cells: per-thread bump allocation from 4 KiB chunks.
//!
//! Tasks are made on one thread and usually freed on another (the worker
//! that ran them, or the consumer that held the last handle). With the
//! system allocator that pattern makes both threads queue on one arena lock,
//! which costs more than everything else a trivial task does. Instead, each
//! thread carves cells out of its current chunk with a pointer bump, and a
//! chunk counts its live cells: freeing a cell, on any thread, is one atomic
//! decrement, and the chunk's memory goes back to the system allocator when
//! its last cell is freed.
//!
//! Counting protocol: a new chunk's count starts at a large guard. Frees
//! subtract one each. When the owning thread moves on to a new chunk (or
//! exits), it subtracts the guard less the number of cells it handed out.
//! Whoever brings the count to zero frees the chunk, so a chunk is freed
//! exactly once, after its owner retired it and all its cells were freed.
//!
//! Freed chunks go to a small shared pool (a bounded lock-free queue) that
//! new chunks are taken from, so in steady state no thread calls the
//! system allocator: chunks circulate from the threads that free tasks to
//! the threads that make them.
//!
//! Cost of the scheme: a chunk stays allocated while any of its cells is
//! alive, so a program that keeps one task handle out of every few dozen
//! pins up to 4 KiB per kept handle. Cells too large or too aligned for a
//! chunk use the global allocator directly.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::cell::Cell;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_queue::ArrayQueue;

const CHUNK_SIZE: usize = 4096;
const CHUNK_ALIGN: usize = 64;
/// Cells bigger than this use the global allocator.
const MAX_CELL: usize = 1024;
const GUARD: usize = usize::MAX / 2;
/// Free chunks kept for reuse (1 MiB), so that bursts of spawning reuse
/// chunks instead of going back to `malloc` and fresh pages.
const POOL: usize = 256;

/// A free chunk's address, as the pool holds it.
struct FreeChunk(NonNull<Chunk>);

// SAFETY: a free chunk is plain memory owned by whoever holds this value.
unsafe impl Send for FreeChunk {}

fn pool() -> &'static ArrayQueue<FreeChunk> {
    static POOL_QUEUE: std::sync::OnceLock<ArrayQueue<FreeChunk>> = std::sync::OnceLock::new();
    POOL_QUEUE.get_or_init(|| ArrayQueue::new(POOL))
}

/// The head of a chunk; cells follow it in the same allocation.
#[repr(C, align(64))]
pub(crate) struct Chunk {
    live: AtomicUsize,
}

fn chunk_layout() -> Layout {
    // CHUNK_SIZE is a non-zero multiple of CHUNK_ALIGN, a power of two.
    Layout::from_size_align(CHUNK_SIZE, CHUNK_ALIGN).expect("valid chunk layout")
}

/// The chunk a thread is carving from: cells are carved at `chunk + used`.
#[derive(Clone, Copy)]
struct Bump {
    chunk: *mut Chunk,
    used: usize,
    handed_out: usize,
}

const EMPTY: Bump = Bump { chunk: ptr::null_mut(), used: 0, handed_out: 0 };

struct ThreadBump(Cell<Bump>);

impl Drop for ThreadBump {
    fn drop(&mut self) {
        retire(self.0.replace(EMPTY));
    }
}

thread_local! {
    static BUMP: ThreadBump = const { ThreadBump(Cell::new(EMPTY)) };
}

/// Where a cell's memory came from, needed to free it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Origin(*const Chunk);

// SAFETY: an origin is an address used only to free the cell through
// `free`, whose counting is atomic; it may be used from any thread.
unsafe impl Send for Origin {}
// SAFETY: as above.
unsafe impl Sync for Origin {}

/// Allocates memory for one cell of `layout`.
pub(crate) fn allocate(layout: Layout) -> (NonNull<u8>, Origin) {
    if layout.size() > MAX_CELL || layout.align() > CHUNK_ALIGN || layout.size() == 0 {
        return (global(layout), Origin(ptr::null()));
    }
    let carved = BUMP.try_with(|slot| {
        let mut bump = slot.0.get();
        // Chunks are aligned to CHUNK_ALIGN >= layout.align(), so aligning
        // the offset aligns the address.
        let mut offset = bump.used.next_multiple_of(layout.align());
        if bump.chunk.is_null() || offset + layout.size() > CHUNK_SIZE {
            retire(bump);
            bump = fresh_chunk();
            offset = bump.used.next_multiple_of(layout.align());
        }
        bump.used = offset + layout.size();
        bump.handed_out += 1;
        slot.0.set(bump);
        // SAFETY: `offset + size <= CHUNK_SIZE`, so the cell lies inside the
        // chunk's allocation.
        let start = unsafe { bump.chunk.cast::<u8>().add(offset) };
        (start, Origin(bump.chunk))
    });
    match carved {
        // SAFETY: `start` lies inside a live chunk allocation, so it is non-null.
        Ok((start, origin)) => (unsafe { NonNull::new_unchecked(start) }, origin),
        // The thread is exiting and its bump is gone: use the global allocator.
        Err(_) => (global(layout), Origin(ptr::null())),
    }
}

/// Frees a cell allocated with `layout` at `ptr` from `origin`.
///
/// # Safety
///
/// `ptr` and `origin` come from one call of [`allocate`] with `layout`, and
/// the cell is freed once; its contents were already dropped.
pub(crate) unsafe fn free(ptr: NonNull<u8>, layout: Layout, origin: Origin) {
    if origin.0.is_null() {
        // SAFETY: the caller passes the pointer and layout of a global allocation.
        unsafe { dealloc(ptr.as_ptr(), layout) };
    } else {
        // SAFETY: the chunk is alive until its count reaches zero, which
        // cannot happen before this cell's own decrement.
        unsafe { release(origin.0, 1) };
    }
}

fn global(layout: Layout) -> NonNull<u8> {
    let layout = if layout.size() == 0 { Layout::from_size_align(1, layout.align()).unwrap_or(layout) } else { layout };
    // SAFETY: `layout` has a non-zero size.
    NonNull::new(unsafe { alloc(layout) }).unwrap_or_else(|| handle_alloc_error(layout))
}

fn fresh_chunk() -> Bump {
    let memory = match pool().pop() {
        Some(FreeChunk(chunk)) => chunk,
        None => global(chunk_layout()).cast::<Chunk>(),
    };
    // SAFETY: `memory` is a fresh allocation of CHUNK_SIZE bytes, aligned
    // for `Chunk`, which fits at its start.
    unsafe { memory.as_ptr().write(Chunk { live: AtomicUsize::new(GUARD) }) };
    Bump { chunk: memory.as_ptr(), used: size_of::<Chunk>(), handed_out: 0 }
}

/// The owning thread is done carving from `bump`'s chunk.
fn retire(bump: Bump) {
    if !bump.chunk.is_null() {
        // SAFETY: the owner still holds its guard, so the chunk is alive.
        unsafe { release(bump.chunk, GUARD - bump.handed_out) };
    }
}

/// Subtracts `n` from a chunk's count, freeing it on reaching zero.
///
/// # Safety
///
/// The chunk is alive: the caller holds `n` of its count.
unsafe fn release(chunk: *const Chunk, n: usize) {
    // SAFETY: the caller holds part of the count, so the chunk is alive.
    let live = unsafe { &(*chunk).live };
    if live.fetch_sub(n, Ordering::AcqRel) == n {
        // The count reached zero: no cell and no owner refers to the chunk.
        let chunk = NonNull::from(live).cast::<Chunk>();
        if let Err(FreeChunk(chunk)) = pool().push(FreeChunk(chunk)) {
            // SAFETY: the pool is full and nobody refers to the chunk; it
            // was allocated with `chunk_layout()`.
            unsafe { dealloc(chunk.as_ptr().cast(), chunk_layout()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_from_one_chunk_are_disjoint_and_aligned() {
        let layout = Layout::from_size_align(100, 16).unwrap();
        let cells: Vec<_> = (0..100).map(|_| allocate(layout)).collect();
        let mut starts: Vec<usize> = cells.iter().map(|(p, _)| p.as_ptr() as usize).collect();
        assert!(starts.iter().all(|s| s % 16 == 0));
        starts.sort_unstable();
        assert!(starts.windows(2).all(|w| w[1] - w[0] >= 100), "cells overlap");
        for (ptr, origin) in cells {
            // SAFETY: each cell was allocated above with `layout` and is freed once.
            unsafe { free(ptr, layout, origin) };
        }
    }

    #[test]
    fn cells_freed_on_another_thread_release_their_chunk() {
        let layout = Layout::from_size_align(200, 8).unwrap();
        let cells: Vec<_> = (0..1000).map(|_| allocate(layout)).map(|(p, o)| (p.as_ptr() as usize, o)).collect();
        std::thread::spawn(move || {
            for (ptr, origin) in cells {
                // SAFETY: allocated above with `layout`; freed once.
                unsafe { free(NonNull::new(ptr as *mut u8).unwrap(), layout, origin) };
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn large_cells_use_the_global_allocator() {
        let layout = Layout::from_size_align(MAX_CELL + 1, 8).unwrap();
        let (ptr, origin) = allocate(layout);
        assert!(origin.0.is_null());
        // SAFETY: allocated above with `layout`; freed once.
        unsafe { free(ptr, layout, origin) };
    }
}
