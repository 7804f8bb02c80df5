//! A worker's run queue: a fixed-capacity Chase-Lev deque.
//!
//! The owner pushes and pops at the back (last in, first out); thieves take
//! from the front with a compare-and-swap. The algorithm and its orderings
//! follow Lê, Pop, Cohen and Zappa Nardelli, "Correct and efficient
//! work-stealing for weak memory models" (PPoPP 2013), with two changes that
//! matter for spawning:
//!
//! - The buffer never grows (a worker bounds its queue and sends the
//!   overflow to the shared queue), so a thief needs no epoch pin to read a
//!   slot, and nothing is ever reclaimed while the deque lives.
//! - The owner keeps a copy of `front` and reads the real one only when that
//!   copy says the buffer may be full. `front` is written by every steal, so
//!   reading it on every push would cost a cache miss whenever a thief is
//!   busy on this queue.
//!
//! Slots hold pointers in atomics: a thief may read a slot the owner is
//! overwriting (it saw an old `front`); its compare-and-swap then fails and
//! the value is dropped unread, and no data race ever happens.

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicPtr, Ordering, fence};

use crossbeam_utils::CachePadded;

/// A value a deque can hold: an owning pointer.
pub(crate) trait Pointer: Send {
    fn into_raw(self) -> NonNull<()>;
    /// # Safety
    ///
    /// `ptr` came from `into_raw` of a value not taken back since.
    unsafe fn from_raw(ptr: NonNull<()>) -> Self;
}

/// What a steal found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Steal<T> {
    Success(T),
    Empty,
    /// Another thread took the front first; trying again may succeed.
    Retry,
}

/// The injector and pinned queues stay crossbeam's; their steals read alike.
impl<T> From<crossbeam_deque::Steal<T>> for Steal<T> {
    fn from(steal: crossbeam_deque::Steal<T>) -> Self {
        match steal {
            crossbeam_deque::Steal::Success(value) => Steal::Success(value),
            crossbeam_deque::Steal::Empty => Steal::Empty,
            crossbeam_deque::Steal::Retry => Steal::Retry,
        }
    }
}

struct Inner<T: Pointer> {
    front: CachePadded<AtomicIsize>,
    back: CachePadded<AtomicIsize>,
    slots: Box<[AtomicPtr<()>]>,
    mask: isize,
    _values: PhantomData<T>,
}

impl<T: Pointer> Inner<T> {
    fn slot(&self, index: isize) -> &AtomicPtr<()> {
        // `mask` is `slots.len() - 1`, so the index is in bounds.
        &self.slots[(index & self.mask) as usize]
    }

    /// Takes the value of a slot a successful claim made ours.
    fn take(ptr: *mut ()) -> T {
        // SAFETY: a slot between `front` and `back` holds a pointer from
        // `into_raw`, and the claim (by the owner's position, or a won
        // compare-and-swap of `front`) makes the caller its only taker.
        unsafe { T::from_raw(NonNull::new_unchecked(ptr)) }
    }
}

impl<T: Pointer> Drop for Inner<T> {
    fn drop(&mut self) {
        let (front, back) = (*self.front.get_mut(), *self.back.get_mut());
        for index in front..back {
            drop(Self::take(self.slot(index).load(Ordering::Relaxed)));
        }
    }
}

/// The owner's end. Not `Sync`: one thread pushes and pops.
pub(crate) struct Local<T: Pointer> {
    inner: Arc<Inner<T>>,
    /// A value `front` had; the real one is never smaller.
    front: Cell<isize>,
}

// SAFETY: the owner's end may move to another thread (a worker is built
// before its thread starts); the values it holds are `Send`.
unsafe impl<T: Pointer> Send for Local<T> {}

/// A thief's end; any number of threads may steal through clones of it.
pub(crate) struct Stealer<T: Pointer> {
    inner: Arc<Inner<T>>,
}

// SAFETY: a stealer only takes values through atomic claims on `front`;
// the values are `Send`.
unsafe impl<T: Pointer> Send for Stealer<T> {}
// SAFETY: as above.
unsafe impl<T: Pointer> Sync for Stealer<T> {}

impl<T: Pointer> Clone for Stealer<T> {
    fn clone(&self) -> Self {
        Stealer { inner: Arc::clone(&self.inner) }
    }
}

/// The most values one `steal_batch_and_pop` takes.
const MAX_BATCH: isize = 32;

/// A deque holding at most `capacity` values (rounded up to a power of two).
pub(crate) fn new<T: Pointer>(capacity: usize) -> (Local<T>, Stealer<T>) {
    let capacity = capacity.max(2).next_power_of_two();
    let inner = Arc::new(Inner {
        front: CachePadded::new(AtomicIsize::new(0)),
        back: CachePadded::new(AtomicIsize::new(0)),
        slots: empty_slots(capacity),
        mask: capacity as isize - 1,
        _values: PhantomData,
    });
    (Local { inner: Arc::clone(&inner), front: Cell::new(0) }, Stealer { inner })
}

/// `capacity` null slots, from zeroed memory: the allocator hands out
/// fresh pages already zeroed, so a deque costs memory only for the slots
/// it ever uses (a runtime makes one for every spare it may start).
fn empty_slots(capacity: usize) -> Box<[AtomicPtr<()>]> {
    let layout = std::alloc::Layout::array::<AtomicPtr<()>>(capacity).expect("a deque of a sane size");
    assert!(layout.size() > 0, "a deque has room for two values at least");
    // SAFETY: the layout's size is not zero.
    let memory = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<AtomicPtr<()>>();
    if memory.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    // SAFETY: `memory` holds `capacity` zeroed slots, allocated by the
    // global allocator with the layout of such a slice, and a null
    // `AtomicPtr` is all zero bits.
    unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(memory, capacity)) }
}

impl<T: Pointer> Local<T> {
    fn capacity(&self) -> isize {
        self.inner.mask + 1
    }

    /// Queues `value` at the back; hands it back when the deque is full.
    #[inline]
    pub(crate) fn push(&self, value: T) -> Result<(), T> {
        let inner = &*self.inner;
        let back = inner.back.load(Ordering::Relaxed);
        if back - self.front.get() >= self.capacity() {
            self.front.set(inner.front.load(Ordering::Acquire));
            if back - self.front.get() >= self.capacity() {
                return Err(value);
            }
        }
        // SAFETY: checked just above.
        unsafe { self.push_unchecked(value) };
        Ok(())
    }

    /// Queues `value` at the back without checking for room.
    ///
    /// # Safety
    ///
    /// The deque holds fewer than its capacity.
    unsafe fn push_unchecked(&self, value: T) {
        let inner = &*self.inner;
        let back = inner.back.load(Ordering::Relaxed);
        debug_assert!(back - inner.front.load(Ordering::Relaxed) < self.capacity());
        // The slot at `back` is free: with fewer than `capacity` values,
        // every index at or below `back - capacity` was taken.
        inner.slot(back).store(value.into_raw().as_ptr(), Ordering::Relaxed);
        // Release: a thief that sees the new `back` sees the slot and the
        // value behind it.
        inner.back.store(back + 1, Ordering::Release);
    }

    /// Takes the most recently pushed value.
    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        let inner = &*self.inner;
        let back = inner.back.load(Ordering::Relaxed) - 1;
        inner.back.store(back, Ordering::Release);
        // Orders the store above before the load of `front`, against the
        // thieves' fence between their loads of `front` and `back`.
        fence(Ordering::SeqCst);
        let front = inner.front.load(Ordering::Relaxed);
        self.front.set(front);
        if front > back {
            // Empty.
            inner.back.store(back + 1, Ordering::Release);
            return None;
        }
        let ptr = inner.slot(back).load(Ordering::Relaxed);
        if front < back {
            // More than one value: no thief can reach this one.
            return Some(Inner::<T>::take(ptr));
        }
        // The last value: race the thieves for it.
        let won = inner.front.compare_exchange(front, front + 1, Ordering::SeqCst, Ordering::Relaxed).is_ok();
        inner.back.store(back + 1, Ordering::Release);
        self.front.set(front + 1);
        won.then(|| Inner::<T>::take(ptr))
    }

    /// How many values the deque holds at most (exact when no thief is
    /// taking one meanwhile).
    pub(crate) fn len(&self) -> usize {
        let back = self.inner.back.load(Ordering::Relaxed);
        let front = self.inner.front.load(Ordering::Acquire);
        self.front.set(front);
        (back - front).max(0) as usize
    }

    /// An upper bound of [`len`](Self::len) that reads no shared state
    /// written by thieves.
    #[inline]
    pub(crate) fn len_at_most(&self) -> usize {
        (self.inner.back.load(Ordering::Relaxed) - self.front.get()).max(0) as usize
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Pointer> Stealer<T> {
    pub(crate) fn is_empty(&self) -> bool {
        let front = self.inner.front.load(Ordering::Acquire);
        fence(Ordering::SeqCst);
        self.inner.back.load(Ordering::Acquire) <= front
    }

    /// Takes the oldest value.
    pub(crate) fn steal(&self) -> Steal<T> {
        let inner = &*self.inner;
        let front = inner.front.load(Ordering::Acquire);
        // Orders the load of `front` before that of `back`, against the
        // owner's fence in `pop`.
        fence(Ordering::SeqCst);
        let back = inner.back.load(Ordering::Acquire);
        if front >= back {
            return Steal::Empty;
        }
        let ptr = inner.slot(front).load(Ordering::Relaxed);
        match inner.front.compare_exchange(front, front + 1, Ordering::SeqCst, Ordering::Relaxed) {
            Ok(_) => Steal::Success(Inner::<T>::take(ptr)),
            Err(_) => Steal::Retry,
        }
    }

    /// Takes the oldest value and moves up to half of the rest (at most a
    /// few dozen) to `dest`, oldest first, one claim at a time.
    pub(crate) fn steal_batch_and_pop(&self, dest: &Local<T>) -> Steal<T> {
        let first = match self.steal() {
            Steal::Success(value) => value,
            other => return other,
        };
        let inner = &*self.inner;
        let room = (dest.capacity() - dest.len_at_most() as isize).max(0);
        let start = inner.front.load(Ordering::Acquire);
        let batch = ((inner.back.load(Ordering::Acquire) - start) / 2).min(MAX_BATCH).min(room);
        for front in start..start + batch {
            fence(Ordering::SeqCst);
            if inner.back.load(Ordering::Acquire) <= front {
                break;
            }
            let ptr = inner.slot(front).load(Ordering::Relaxed);
            if inner.front.compare_exchange(front, front + 1, Ordering::SeqCst, Ordering::Relaxed).is_err() {
                break;
            }
            // SAFETY: at most `room` values are moved, and `room` is at
            // most the free space of `dest` (its length only shrinks
            // meanwhile: this thread is its owner).
            unsafe { dest.push_unchecked(Inner::<T>::take(ptr)) };
        }
        Steal::Success(first)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    impl Pointer for Box<usize> {
        fn into_raw(self) -> NonNull<()> {
            NonNull::from(Box::leak(self)).cast()
        }

        unsafe fn from_raw(ptr: NonNull<()>) -> Self {
            // SAFETY: the caller passes a pointer from `into_raw`.
            unsafe { Box::from_raw(ptr.cast::<usize>().as_ptr()) }
        }
    }

    #[test]
    fn the_owner_pops_last_in_first_out_and_thieves_take_the_oldest() {
        let (local, stealer) = new::<Box<usize>>(4);
        for i in 0..4 {
            local.push(Box::new(i)).unwrap();
        }
        assert_eq!(*local.push(Box::new(9)).unwrap_err(), 9, "a full deque hands the value back");
        assert_eq!(local.len(), 4);
        assert_eq!(stealer.steal(), Steal::Success(Box::new(0)));
        assert_eq!(local.pop(), Some(Box::new(3)));
        local.push(Box::new(4)).unwrap();
        local.push(Box::new(5)).unwrap();
        assert_eq!(local.push(Box::new(6)), Err(Box::new(6)));
        let (dest, _) = new::<Box<usize>>(8);
        assert_eq!(stealer.steal_batch_and_pop(&dest), Steal::Success(Box::new(1)));
        assert_eq!(dest.pop(), Some(Box::new(2)), "half the rest moved over");
        assert_eq!(dest.pop(), None);
        assert_eq!(local.pop(), Some(Box::new(5)));
        assert_eq!(local.pop(), Some(Box::new(4)));
        assert_eq!(local.pop(), None);
        assert!(stealer.is_empty() && local.is_empty());
        assert_eq!(stealer.steal(), Steal::Empty);
        local.push(Box::new(7)).unwrap();
        drop(stealer);
        drop(local); // the left value is freed (Miri checks it)
    }

    #[test]
    fn every_value_is_taken_exactly_once_under_concurrent_steals() {
        let (per_thief, values) = if cfg!(miri) { (2, 200) } else { (3, 100_000) };
        let (local, stealer) = new::<Box<usize>>(64);
        let seen: Arc<Vec<AtomicUsize>> = Arc::new((0..values).map(|_| AtomicUsize::new(0)).collect());
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thieves: Vec<_> = (0..per_thief)
            .map(|t| {
                let (stealer, seen, done) = (stealer.clone(), Arc::clone(&seen), Arc::clone(&done));
                std::thread::spawn(move || {
                    let (mine, _) = new::<Box<usize>>(64);
                    loop {
                        let finished = done.load(Ordering::Acquire);
                        let got = if t % 2 == 0 { stealer.steal() } else { stealer.steal_batch_and_pop(&mine) };
                        if let Steal::Success(v) = got {
                            seen[*v].fetch_add(1, Ordering::Relaxed);
                        }
                        while let Some(v) = mine.pop() {
                            seen[*v].fetch_add(1, Ordering::Relaxed);
                        }
                        if finished && stealer.is_empty() {
                            break;
                        }
                    }
                })
            })
            .collect();
        let mut next = 0;
        while next < values {
            match local.push(Box::new(next)) {
                Ok(()) => next += 1,
                Err(v) => {
                    seen[*v].fetch_add(1, Ordering::Relaxed);
                    next += 1;
                }
            }
            if next % 3 == 0
                && let Some(v) = local.pop()
            {
                seen[*v].fetch_add(1, Ordering::Relaxed);
            }
        }
        while let Some(v) = local.pop() {
            seen[*v].fetch_add(1, Ordering::Relaxed);
        }
        done.store(true, Ordering::Release);
        for t in thieves {
            t.join().unwrap();
        }
        let counts: Vec<usize> = seen.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        assert!(counts.iter().all(|&c| c == 1), "a value was lost or taken twice");
    }
}
