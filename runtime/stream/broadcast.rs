//! The fan-out ring: one writer, several readers, every reader sees every
//! element (see [`edge`](super::edge) for the protocol both ends follow).
//!
//! Readers *borrow* elements (`Item = &T`); a stage that takes one by value
//! reads through [`Cloned`](super::edge::Cloned). An element is dropped
//! when the writer reuses its slot, which it does only once every open
//! reader has moved past it; a reader that closes stops counting. So no
//! element is cloned unless a stage asks for its own copy, and nothing is
//! allocated per element.
//!
//! Positions are ever-growing counters as in [`spsc`](super::spsc). The
//! writer's room is `capacity - (tail - min(open readers' heads))`; it keeps
//! a private copy of that minimum and recomputes it only when its copy says
//! the ring is full. Elements are shared between reader threads, hence
//! `T: Sync`.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};

use crossbeam_utils::CachePadded;

use super::edge::{Input, Output, Peek, Poll, Side, Space, Waker};
use super::spsc::batch_for;

struct Cursor {
    head: AtomicUsize,
    closed: AtomicBool,
    side: Side,
}

struct Ring<T> {
    tail: CachePadded<AtomicUsize>,
    writer: CachePadded<Side>,
    writer_closed: AtomicBool,
    readers: Box<[CachePadded<Cursor>]>,
    mask: usize,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

// SAFETY: the writer writes a slot only when no open reader can read it
// (module note), readers only read (`&T`) published slots; ownership passes
// with release/acquire on `tail` and the heads. Readers on several threads
// share `&T`, so `T: Sync`; the writer's thread drops them, so `T: Send`.
unsafe impl<T: Send + Sync> Sync for Ring<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Send for Ring<T> {}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        let tail = *self.tail.get_mut();
        let capacity = self.mask + 1;
        for i in tail.saturating_sub(capacity)..tail {
            // SAFETY: every slot below `tail` was written once; slots are
            // dropped only when rewritten, so the last `capacity` written
            // still hold their elements, and we are the last owner.
            unsafe { (*self.slots[i & self.mask].get()).assume_init_drop() };
        }
    }
}

/// The writing end of a fan-out ring.
pub struct BroadcastWriter<T> {
    ring: Arc<Ring<T>>,
    tail: usize,
    min_seen: usize,
    committed: usize,
    batch: usize,
    discard: bool,
    closed: bool,
}

/// One reading end of a fan-out ring.
pub struct BroadcastReader<T> {
    ring: Arc<Ring<T>>,
    index: usize,
    head: usize,
    tail_seen: usize,
    released: usize,
    batch: usize,
    closed: bool,
}

impl<T> std::fmt::Debug for BroadcastWriter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BroadcastWriter")
            .field("readers", &self.ring.readers.len())
            .field("written", &self.tail)
            .finish()
    }
}

impl<T> std::fmt::Debug for BroadcastReader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BroadcastReader").field("index", &self.index).field("read", &self.head).finish()
    }
}

/// A ring holding at least `capacity` elements, read by `N` readers.
pub(crate) fn channel<T, const N: usize>(capacity: usize) -> (BroadcastWriter<T>, [BroadcastReader<T>; N]) {
    let capacity = capacity.max(1).next_power_of_two();
    let ring = Arc::new(Ring {
        tail: CachePadded::new(AtomicUsize::new(0)),
        writer: CachePadded::new(Side::default()),
        writer_closed: AtomicBool::new(false),
        readers: (0..N)
            .map(|_| {
                CachePadded::new(Cursor {
                    head: AtomicUsize::new(0),
                    closed: AtomicBool::new(false),
                    side: Side::default(),
                })
            })
            .collect(),
        mask: capacity - 1,
        slots: (0..capacity).map(|_| UnsafeCell::new(MaybeUninit::uninit())).collect(),
    });
    let batch = batch_for(capacity);
    let readers = std::array::from_fn(|index| BroadcastReader {
        ring: ring.clone(),
        index,
        head: 0,
        tail_seen: 0,
        released: 0,
        batch,
        closed: false,
    });
    let writer = BroadcastWriter { ring, tail: 0, min_seen: 0, committed: 0, batch, discard: false, closed: false };
    (writer, readers)
}

impl<T> Ring<T> {
    /// The smallest head of an open reader, or `None` when all are closed.
    fn min_head(&self) -> Option<usize> {
        self.readers.iter().filter(|c| !c.closed.load(Ordering::Acquire)).map(|c| c.head.load(Ordering::Acquire)).min()
    }

    fn notify_readers(&self) {
        for cursor in self.readers.iter() {
            cursor.side.notify();
        }
    }
}

impl<T> BroadcastWriter<T> {
    fn has_room(&self) -> bool {
        self.tail.wrapping_sub(self.min_seen) <= self.ring.mask
    }

    /// Looks at the readers again; `false` when none is open.
    fn refresh(&mut self) -> bool {
        match self.ring.min_head() {
            Some(min) => {
                self.min_seen = min;
                true
            }
            None => false,
        }
    }
}

impl<T: Send + Sync> BroadcastWriter<T> {
    #[cold]
    fn reserve_slow(&mut self) -> Space {
        self.flush();
        if !self.refresh() {
            self.discard = true;
            return Space::Closed;
        }
        if self.has_room() { Space::Ready } else { Space::Full }
    }
}

impl<T> BroadcastWriter<T> {
    fn publish_close(&mut self) {
        self.closed = true;
        self.ring.tail.store(self.tail, Ordering::Release);
        self.ring.writer.set_waker(None);
        self.ring.writer_closed.store(true, Ordering::Release);
        fence(Ordering::SeqCst);
        self.ring.notify_readers();
    }
}

impl<T: Send + Sync> Output<T> for BroadcastWriter<T> {
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
        let slot = self.ring.slots[self.tail & self.ring.mask].get();
        if self.tail > self.ring.mask {
            // SAFETY: the slot held element `tail - capacity`, which every
            // open reader has moved past (`has_room`), and nobody else drops it.
            unsafe { (*slot).assume_init_drop() };
        }
        // SAFETY: no open reader can read this slot until `tail` is published.
        unsafe { (*slot).write(value) };
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
            self.ring.notify_readers();
        }
        if !self.discard && self.ring.min_head().is_none() {
            self.discard = true;
        }
    }

    fn park(&mut self) -> bool {
        self.ring.writer.announce();
        if !self.refresh() || self.has_room() {
            self.ring.writer.withdraw();
            return false;
        }
        true
    }

    fn close(&mut self) {
        if !self.closed {
            self.publish_close();
        }
    }

    fn bind(&mut self, waker: &Waker) {
        self.ring.writer.set_waker(Some(waker.clone()));
    }
}

impl<T> Drop for BroadcastWriter<T> {
    fn drop(&mut self) {
        if !self.closed {
            self.publish_close();
        }
    }
}

impl<T> BroadcastReader<T> {
    fn cursor(&self) -> &Cursor {
        &self.ring.readers[self.index]
    }

    #[cold]
    fn poll_slow(&mut self) -> Poll {
        self.release_all();
        self.tail_seen = self.ring.tail.load(Ordering::Acquire);
        if self.head != self.tail_seen {
            return Poll::Ready;
        }
        if self.ring.writer_closed.load(Ordering::Acquire) {
            self.tail_seen = self.ring.tail.load(Ordering::Acquire);
            return if self.head != self.tail_seen { Poll::Ready } else { Poll::Closed };
        }
        Poll::Empty
    }

    fn release_all(&mut self) {
        if self.head != self.released {
            self.cursor().head.store(self.head, Ordering::Release);
            self.released = self.head;
            fence(Ordering::SeqCst);
            self.ring.writer.notify();
        }
    }

    fn publish_close(&mut self) {
        self.closed = true;
        self.cursor().head.store(self.head, Ordering::Release);
        self.cursor().side.set_waker(None);
        self.cursor().closed.store(true, Ordering::Release);
        fence(Ordering::SeqCst);
        self.ring.writer.force();
    }
}

impl<T: Send + Sync> Input for BroadcastReader<T> {
    type Item<'a>
        = &'a T
    where
        Self: 'a;

    #[inline]
    fn poll(&mut self) -> Poll {
        if self.head != self.tail_seen { Poll::Ready } else { self.poll_slow() }
    }

    #[inline]
    fn get(&mut self) -> &T {
        debug_assert_ne!(self.head, self.tail_seen, "get without an element");
        let slot = &self.ring.slots[self.head & self.ring.mask];
        // SAFETY: the slot is below the published tail (acquire) and not
        // below this reader's head, so the writer will not touch it before
        // this reader releases it; the borrow ends before `advance`.
        unsafe { (*slot.get()).assume_init_ref() }
    }

    #[inline]
    fn advance(&mut self) {
        self.head = self.head.wrapping_add(1);
        if self.head.wrapping_sub(self.released) >= self.batch {
            self.release_all();
        }
    }

    fn release(&mut self) {
        self.release_all();
    }

    fn park(&mut self) -> bool {
        self.cursor().side.announce();
        self.tail_seen = self.ring.tail.load(Ordering::Acquire);
        if self.head != self.tail_seen || self.ring.writer_closed.load(Ordering::Acquire) {
            self.cursor().side.withdraw();
            return false;
        }
        true
    }

    fn close(&mut self) {
        if !self.closed {
            self.publish_close();
        }
    }

    fn bind(&mut self, waker: &Waker) {
        self.cursor().side.set_waker(Some(waker.clone()));
    }

    fn upcoming(&mut self) -> Option<&dyn std::any::Any>
    where
        Self: 'static,
    {
        if self.poll() != Poll::Ready {
            return None;
        }
        Some(self.get())
    }
}

impl<T: Send + Sync> Peek for BroadcastReader<T> {
    type Elem = T;
    #[inline]
    fn peek(&mut self) -> &T {
        self.get()
    }
}

impl<T> Drop for BroadcastReader<T> {
    fn drop(&mut self) {
        if !self.closed {
            self.publish_close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all<T: Clone + Send + Sync>(r: &mut BroadcastReader<T>) -> Vec<T> {
        let mut out = Vec::new();
        while r.poll() == Poll::Ready {
            out.push(r.get().clone());
            r.advance();
        }
        out
    }

    #[test]
    fn every_reader_sees_every_element() {
        let (mut w, [mut a, mut b]) = channel::<String, 2>(4);
        for s in ["x", "y", "z"] {
            assert_eq!(w.reserve(), Space::Ready);
            w.push(s.to_owned());
        }
        w.close();
        assert_eq!(read_all(&mut a), ["x", "y", "z"]);
        assert_eq!(read_all(&mut b), ["x", "y", "z"]);
        assert_eq!(a.poll(), Poll::Closed);
    }

    #[test]
    fn the_slowest_reader_holds_the_writer() {
        let (mut w, [mut fast, mut slow]) = channel::<u32, 2>(2);
        w.push(1);
        w.push(2);
        assert_eq!(w.reserve(), Space::Full);
        assert_eq!(read_all(&mut fast), [1, 2]);
        assert_eq!(w.reserve(), Space::Full, "the slow reader has not moved");
        assert_eq!(slow.poll(), Poll::Ready);
        slow.advance();
        slow.release();
        assert_eq!(w.reserve(), Space::Ready);
        slow.close();
        fast.close();
        w.flush();
        assert_eq!(w.reserve(), Space::Closed, "a flush notices that every reader left");
    }

    #[test]
    fn readers_on_other_threads_see_every_element() {
        let n = if cfg!(miri) { 500 } else { 200_000u64 };
        let (mut w, readers) = channel::<Box<u64>, 2>(16);
        let handles: Vec<_> = readers
            .into_iter()
            .map(|mut r| {
                std::thread::spawn(move || {
                    let (mut sum, mut next) = (0u64, 0u64);
                    loop {
                        match r.poll() {
                            Poll::Ready => {
                                let v = **r.get();
                                assert_eq!(v, next, "in order, each once");
                                next += 1;
                                sum += v;
                                r.advance();
                            }
                            Poll::Empty => std::thread::yield_now(),
                            Poll::Closed => return sum,
                        }
                    }
                })
            })
            .collect();
        for i in 0..n {
            while w.reserve() != Space::Ready {
                std::thread::yield_now();
            }
            w.push(Box::new(i));
        }
        w.close();
        for h in handles {
            assert_eq!(h.join().unwrap(), n * (n - 1) / 2);
        }
    }

    #[test]
    fn elements_are_dropped_exactly_once() {
        let counter = Arc::new(());
        let (mut w, [mut a, mut b]) = channel::<Arc<()>, 2>(2);
        for _ in 0..10 {
            while w.reserve() != Space::Ready {
                read_all(&mut a);
                read_all(&mut b);
            }
            w.push(counter.clone());
        }
        drop((w, a, b));
        assert_eq!(Arc::strong_count(&counter), 1);
    }
}
