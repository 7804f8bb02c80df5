//! The single-reader ring: a bounded ring buffer with one writer and one
//! reader, each moving elements in batches (see [`edge`](super::edge) for
//! the protocol both ends follow).
//!
//! Positions are ever-growing `usize` counters; slot `i` is `i & mask`.
//! The writer owns slots in `[head, head + capacity)` that are not yet
//! written, the reader owns slots in `[head, tail)`. Each end keeps a
//! private copy of the other's position and reads the shared one only when
//! its copy says it must wait, so in steady state the two cores touch each
//! other's cache lines once per batch, not once per element.
//!
//! Elements are moved out by the reader. Whatever is left between the
//! published `head` and `tail` when both ends are gone is dropped with the
//! ring; each end publishes its position when it is dropped, so that range
//! is exact.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering, fence};

use crossbeam_utils::CachePadded;

use super::edge::{Input, Output, Poll, Side, Space, Take, Waker};

const WRITER_CLOSED: u8 = 1;
const READER_CLOSED: u8 = 2;

struct Ring<T> {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    reader: CachePadded<Side>,
    writer: CachePadded<Side>,
    closed: AtomicU8,
    mask: usize,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

// SAFETY: a slot is written only by the writer while it owns it and read
// only by the reader while it owns it (module note); ownership passes with
// release/acquire on `head` and `tail`. Elements move between threads, so
// `T: Send` is needed and enough.
unsafe impl<T: Send> Sync for Ring<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Ring<T> {}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        let (head, tail) = (*self.head.get_mut(), *self.tail.get_mut());
        for i in head..tail {
            // SAFETY: slots in [head, tail) hold written, unread elements,
            // and both ends are gone (we are the last owner).
            unsafe { (*self.slots[i & self.mask].get()).assume_init_drop() };
        }
    }
}

/// The writing end of a single-reader ring.
pub struct SpscWriter<T> {
    ring: Arc<Ring<T>>,
    tail: usize,
    head_seen: usize,
    committed: usize,
    batch: usize,
    discard: bool,
    closed: bool,
}

/// The reading end of a single-reader ring.
pub struct SpscReader<T> {
    ring: Arc<Ring<T>>,
    head: usize,
    tail_seen: usize,
    released: usize,
    batch: usize,
    closed: bool,
}

impl<T> std::fmt::Debug for SpscWriter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpscWriter").field("capacity", &(self.ring.mask + 1)).field("written", &self.tail).finish()
    }
}

impl<T> std::fmt::Debug for SpscReader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpscReader").field("capacity", &(self.ring.mask + 1)).field("read", &self.head).finish()
    }
}

/// The batch an end publishes after: a quarter of the ring, at most 64.
pub(crate) fn batch_for(capacity: usize) -> usize {
    (capacity / 4).clamp(1, 64)
}

/// A ring holding at least `capacity` elements (rounded up to a power of two).
pub(crate) fn channel<T>(capacity: usize) -> (SpscWriter<T>, SpscReader<T>) {
    let capacity = capacity.max(1).next_power_of_two();
    let ring = Arc::new(Ring {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        reader: CachePadded::new(Side::default()),
        writer: CachePadded::new(Side::default()),
        closed: AtomicU8::new(0),
        mask: capacity - 1,
        slots: (0..capacity).map(|_| UnsafeCell::new(MaybeUninit::uninit())).collect(),
    });
    let batch = batch_for(capacity);
    let writer =
        SpscWriter { ring: ring.clone(), tail: 0, head_seen: 0, committed: 0, batch, discard: false, closed: false };
    let reader = SpscReader { ring, head: 0, tail_seen: 0, released: 0, batch, closed: false };
    (writer, reader)
}

impl<T> SpscWriter<T> {
    fn capacity(&self) -> usize {
        self.ring.mask + 1
    }

    fn has_room(&self) -> bool {
        self.tail.wrapping_sub(self.head_seen) < self.capacity()
    }
}

impl<T: Send> SpscWriter<T> {
    #[cold]
    fn reserve_slow(&mut self) -> Space {
        self.flush();
        self.head_seen = self.ring.head.load(Ordering::Acquire);
        if self.has_room() {
            Space::Ready
        } else if self.ring.closed.load(Ordering::Acquire) & READER_CLOSED != 0 {
            self.discard = true;
            Space::Closed
        } else {
            Space::Full
        }
    }
}

impl<T: Send> Output<T> for SpscWriter<T> {
    #[inline]
    fn reserve(&mut self) -> Space {
        if self.discard {
            Space::Closed
        } else if self.has_room() {
            Space::Ready
        } else {
            self.reserve_slow()
        }
    }

    #[inline]
    fn push(&mut self, value: T) {
        if self.discard || self.closed {
            return drop(value);
        }
        debug_assert!(self.has_room(), "push without room");
        let slot = &self.ring.slots[self.tail & self.ring.mask];
        // SAFETY: the slot is in [tail, head_seen + capacity), owned by the
        // writer (module note): the reader released it or never had it.
        unsafe { (*slot.get()).write(value) };
        self.tail = self.tail.wrapping_add(1);
        if self.tail.wrapping_sub(self.committed) >= self.batch {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.tail != self.committed {
            self.ring.tail.store(self.tail, Ordering::Release);
            self.committed = self.tail;
            fence(Ordering::SeqCst);
            self.ring.reader.notify();
        }
        if self.ring.closed.load(Ordering::Relaxed) & READER_CLOSED != 0 {
            self.discard = true;
        }
    }

    fn park(&mut self) -> bool {
        self.ring.writer.announce();
        self.head_seen = self.ring.head.load(Ordering::Acquire);
        if self.has_room() || self.ring.closed.load(Ordering::Acquire) & READER_CLOSED != 0 {
            self.ring.writer.withdraw();
            return false;
        }
        true
    }

    fn close(&mut self) {
        if self.closed {
            return;
        }
        self.flush();
        self.closed = true;
        self.ring.writer.set_waker(None);
        self.ring.closed.fetch_or(WRITER_CLOSED, Ordering::Release);
        fence(Ordering::SeqCst);
        self.ring.reader.notify();
    }

    fn bind(&mut self, waker: &Waker) {
        self.ring.writer.set_waker(Some(waker.clone()));
    }
}

impl<T> Drop for SpscWriter<T> {
    fn drop(&mut self) {
        if !self.closed {
            self.closed = true;
            self.ring.tail.store(self.tail, Ordering::Release);
            self.ring.writer.set_waker(None);
            self.ring.closed.fetch_or(WRITER_CLOSED, Ordering::Release);
            fence(Ordering::SeqCst);
            self.ring.reader.notify();
        }
    }
}

impl<T> SpscReader<T> {
    #[cold]
    fn poll_slow(&mut self) -> Poll {
        self.release_all();
        self.tail_seen = self.ring.tail.load(Ordering::Acquire);
        if self.head != self.tail_seen {
            return Poll::Ready;
        }
        if self.ring.closed.load(Ordering::Acquire) & WRITER_CLOSED != 0 {
            // The writer published its last position before closing.
            self.tail_seen = self.ring.tail.load(Ordering::Acquire);
            return if self.head != self.tail_seen { Poll::Ready } else { Poll::Closed };
        }
        Poll::Empty
    }

    fn release_all(&mut self) {
        if self.head != self.released {
            self.ring.head.store(self.head, Ordering::Release);
            self.released = self.head;
            fence(Ordering::SeqCst);
            self.ring.writer.notify();
        }
    }
}

impl<T: Send> Input for SpscReader<T> {
    type Item<'a>
        = T
    where
        Self: 'a;

    #[inline]
    fn poll(&mut self) -> Poll {
        if self.head != self.tail_seen { Poll::Ready } else { self.poll_slow() }
    }

    #[inline]
    fn get(&mut self) -> T {
        debug_assert_ne!(self.head, self.tail_seen, "get without an element");
        let slot = &self.ring.slots[self.head & self.ring.mask];
        // SAFETY: the slot is in [head, tail_seen): written and published
        // by the writer (acquire on `tail`), owned by the reader, and read
        // once since `head` moves past it at once.
        let value = unsafe { (*slot.get()).assume_init_read() };
        self.head = self.head.wrapping_add(1);
        if self.head.wrapping_sub(self.released) >= self.batch {
            self.release_all();
        }
        value
    }

    #[inline]
    fn advance(&mut self) {}

    fn release(&mut self) {
        self.release_all();
    }

    fn park(&mut self) -> bool {
        self.ring.reader.announce();
        self.tail_seen = self.ring.tail.load(Ordering::Acquire);
        if self.head != self.tail_seen || self.ring.closed.load(Ordering::Acquire) & WRITER_CLOSED != 0 {
            self.ring.reader.withdraw();
            return false;
        }
        true
    }

    fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.release_all();
        self.ring.reader.set_waker(None);
        self.ring.closed.fetch_or(READER_CLOSED, Ordering::Release);
        fence(Ordering::SeqCst);
        self.ring.writer.force();
    }

    fn bind(&mut self, waker: &Waker) {
        self.ring.reader.set_waker(Some(waker.clone()));
    }

    fn upcoming(&mut self) -> Option<&dyn std::any::Any>
    where
        Self: 'static,
    {
        if self.poll() != Poll::Ready {
            return None;
        }
        let slot = &self.ring.slots[self.head & self.ring.mask];
        // SAFETY: `poll` said the slot is in [head, tail_seen): written,
        // published and owned by the reader; it is only borrowed here, and
        // the borrow of `self` keeps `get` from moving it out meanwhile.
        Some(unsafe { (*slot.get()).assume_init_ref() })
    }
}

impl<T: Send> Take for SpscReader<T> {
    type Elem = T;
    #[inline]
    fn take(&mut self) -> T {
        self.get()
    }
}

impl<T> Drop for SpscReader<T> {
    fn drop(&mut self) {
        if !self.closed {
            self.closed = true;
            self.ring.head.store(self.head, Ordering::Release);
            self.ring.reader.set_waker(None);
            self.ring.closed.fetch_or(READER_CLOSED, Ordering::Release);
            fence(Ordering::SeqCst);
            self.ring.writer.force();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn elements_arrive_in_order_and_closing_ends_the_stream() {
        let (mut w, mut r) = channel::<u32>(4);
        for i in 0..4 {
            assert_eq!(w.reserve(), Space::Ready);
            w.push(i);
        }
        assert_eq!(w.reserve(), Space::Full);
        let got: Vec<u32> = (0..4).map(|_| (r.poll(), r.get()).1).collect();
        assert_eq!(got, [0, 1, 2, 3]);
        assert_eq!(r.poll(), Poll::Empty);
        assert_eq!(w.reserve(), Space::Ready, "the reader released its room when it ran dry");
        w.push(9);
        w.close();
        assert_eq!(r.poll(), Poll::Ready);
        assert_eq!(r.get(), 9);
        assert_eq!(r.poll(), Poll::Closed);
    }

    #[test]
    fn a_closed_reader_makes_the_writer_discard() {
        let (mut w, mut r) = channel::<String>(2);
        w.push("a".into());
        w.push("b".into());
        r.close();
        assert_eq!(w.reserve(), Space::Closed);
        w.push("dropped".into());
    }

    #[test]
    fn unread_elements_are_dropped_with_the_ring() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        struct Counted;
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Ordering::Relaxed);
            }
        }
        let (mut w, mut r) = channel::<Counted>(8);
        for _ in 0..5 {
            w.push(Counted);
        }
        w.flush();
        assert_eq!(r.poll(), Poll::Ready);
        drop(r.get());
        assert_eq!(DROPS.load(Ordering::Relaxed), 1);
        drop(w);
        drop(r);
        assert_eq!(DROPS.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn elements_cross_threads_intact() {
        let (mut w, mut r) = channel::<u64>(64);
        let n = if cfg!(miri) { 2_000 } else { 1_000_000u64 };
        let writer = std::thread::spawn(move || {
            for i in 0..n {
                while w.reserve() != Space::Ready {
                    std::hint::spin_loop();
                }
                w.push(i);
            }
            w.close();
        });
        let (mut sum, mut count) = (0u64, 0u64);
        loop {
            match r.poll() {
                Poll::Ready => {
                    let v = r.get();
                    assert_eq!(v, count);
                    sum += v;
                    count += 1;
                }
                Poll::Empty => std::hint::spin_loop(),
                Poll::Closed => break,
            }
        }
        writer.join().unwrap();
        assert_eq!(count, n);
        assert_eq!(sum, n * (n - 1) / 2);
    }
}
