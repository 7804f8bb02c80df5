//! Delay edges: `delay(x, init)` reads, at iteration `k`, the element `x`
//! produced at iteration `k - 1`, and `init` at iteration 0. This is the
//! only way a `streaming!` graph may close a cycle.
//!
//! Two shapes, chosen by the macro:
//!
//! - a stage that reads its *own* previous value keeps it in a carry
//!   ([`DelayMember`](super::stage::DelayMember)): no edge at all;
//! - any other delayed read is an ordinary edge from `x`'s stage whose
//!   reader first yields `init` ([`Delayed`]), so the reader runs one
//!   element behind the writer. Around a cycle, that one element is what
//!   lets the first stage start.

use super::edge::{Input, Poll, Take, Waker};

/// An input that yields `init` first, then what its edge carries.
#[derive(Debug)]
pub struct Delayed<T, R> {
    init: Option<T>,
    inner: R,
    from_init: bool,
}

/// Wraps the reader of a delayed edge.
pub fn delayed<T, R>(init: T, inner: R) -> Delayed<T, R> {
    Delayed { init: Some(init), inner, from_init: false }
}

impl<T, R> Input for Delayed<T, R>
where
    T: Send,
    R: Take<Elem = T>,
{
    type Item<'a>
        = T
    where
        Self: 'a;

    #[inline]
    fn poll(&mut self) -> Poll {
        if self.init.is_some() { Poll::Ready } else { self.inner.poll() }
    }

    #[inline]
    fn get(&mut self) -> T {
        match self.init.take() {
            Some(init) => {
                self.from_init = true;
                init
            }
            None => self.inner.take(),
        }
    }

    #[inline]
    fn advance(&mut self) {
        self.from_init = false;
    }

    fn release(&mut self) {
        self.inner.release();
    }

    fn park(&mut self) -> bool {
        self.init.is_none() && self.inner.park()
    }

    fn close(&mut self) {
        self.inner.close();
    }

    fn bind(&mut self, waker: &Waker) {
        self.inner.bind(waker);
    }
}

impl<T, R> Take for Delayed<T, R>
where
    T: Send,
    R: Take<Elem = T>,
{
    type Elem = T;
    fn take(&mut self) -> T {
        self.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::edge::{Output, Space};
    use crate::stream::spsc;

    #[test]
    fn the_initial_value_comes_first() {
        let (mut w, r) = spsc::channel::<i32>(2);
        let mut d = delayed(-1, r);
        assert_eq!(d.poll(), Poll::Ready);
        assert_eq!(d.get(), -1);
        d.advance();
        assert_eq!(d.poll(), Poll::Empty);
        assert_eq!(w.reserve(), Space::Ready);
        w.push(7);
        w.flush();
        assert_eq!(d.poll(), Poll::Ready);
        assert_eq!(d.get(), 7);
        d.advance();
        w.close();
        assert_eq!(d.poll(), Poll::Closed);
    }
}
