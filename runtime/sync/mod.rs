//! Synchronization primitives the layers share: the runtime's mutex
//! (parking_lot's, except under Miri) and the [`latch`]es a thread waits on
//! for work done elsewhere.
//!
//! Miri checks the types of c-variadic arguments (rust-lang/rust#161734,
//! nightlies from 2026-09-11), and parking_lot_core 0.9.12 passes an
//! `&AtomicI32` to `syscall(SYS_futex, ..)` when a contended lock parks,
//! which Miri reports as undefined behaviour whenever its interleaving
//! makes a lock contended. Under Miri a thin wrapper over std's mutex,
//! whose futex calls are typed as Miri expects, stands in with the same
//! methods, so the lock-free pieces' tests run there unchanged.

pub(crate) mod latch;

#[cfg(not(miri))]
pub(crate) use parking_lot::Mutex;

#[cfg(miri)]
pub(crate) use self::std_backed::Mutex;

#[cfg(miri)]
mod std_backed {
    use std::sync::{MutexGuard, PoisonError};

    /// `std::sync::Mutex` with parking_lot's signatures (no poisoning).
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T: ?Sized>(std::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) const fn new(value: T) -> Self {
            Mutex(std::sync::Mutex::new(value))
        }

        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner().unwrap_or_else(PoisonError::into_inner)
        }
    }

    impl<T: ?Sized> Mutex<T> {
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }
}
