//! Roots: the variables that places start from.
//!
//! For each variable a `datadeps!` block uses in places, the block borrows
//! the variable once, before the first statement that uses it, for the
//! region's whole `'scope`: mutably when some place writes, shared
//! otherwise. Every place is then derived from that borrow as a raw place,
//! so the borrow checker sees one borrow however many tasks use the
//! variable, and refuses any other use of it until the region ends (the
//! "touched outside a task" rule, enforced by rustc as well as by the
//! macro). Borrowing for `'scope` also refuses variables declared inside the
//! block, which could die before the tasks that use them.
//!
//! The borrow is taken through a method call (`x.dirk_root_mut()`), so a
//! variable that is itself a reference (`r: &mut Vec<f64>`, `self`) is
//! reborrowed through, without needing `mut` on its binding.

use std::cell::RefCell;

use super::place::{Cursor, Read, Write};
use super::tracker::Tracker;

/// The tracker of one root. Made by [`Region::root_mut`](super::region::Region::root_mut)
/// and [`Region::root_ref`](super::region::Region::root_ref).
///
/// A root that no task of the block writes (borrowed shared) is not
/// tracked: reads never wait for reads, and nothing else can write it
/// while the region borrows it, so its places order nothing.
#[derive(Debug)]
pub struct Root {
    tracker: RefCell<Tracker>,
    tracked: bool,
}

impl Root {
    /// The root of a variable some task writes.
    pub(crate) fn tracked() -> Self {
        Root { tracker: RefCell::default(), tracked: true }
    }

    /// The root of a variable tasks only read.
    pub(crate) fn read_only() -> Self {
        Root { tracker: RefCell::default(), tracked: false }
    }

    /// Starts evaluating a place the task reads; `what` is the argument as
    /// written, for messages.
    pub fn read(&self, what: &'static str) -> Cursor<'_, Read> {
        Cursor::new(self.tracked.then_some(&self.tracker), what)
    }

    /// Starts evaluating a place the task writes.
    pub fn write(&self, what: &'static str) -> Cursor<'_, Write> {
        // A written place is always tracked (only a shared root is not, and
        // places of a shared root cannot be written).
        Cursor::new(Some(&self.tracker), what)
    }
}

/// `x.dirk_root_mut()`: `&mut x`, or `&mut *x` when `x` is a `&mut`.
pub trait DirkRootMut {
    /// The root, borrowed mutably.
    fn dirk_root_mut(&mut self) -> &mut Self {
        self
    }
}

impl<T: ?Sized> DirkRootMut for T {}

/// `x.dirk_root_ref()`: `&x`, or `&*x` when `x` is a `&`.
pub trait DirkRootRef {
    /// The root, borrowed shared.
    fn dirk_root_ref(&self) -> &Self {
        self
    }
}

impl<T: ?Sized> DirkRootRef for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_roots_that_tasks_write_are_tracked() {
        let shared = Root::read_only();
        assert!(!shared.read("In(a)").is_tracked(), "reads of a root nobody writes order nothing");
        assert!(shared.write("InOut(a)").is_tracked(), "a written place is always tracked");
        let written = Root::tracked();
        assert!(written.read("In(b)").is_tracked());
        assert!(written.write("InOut(b)").is_tracked());
    }
}
