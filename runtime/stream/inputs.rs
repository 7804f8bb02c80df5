//! The inputs of a group's head stage, as one tuple of [`Input`]s: one
//! element from each per iteration.
//!
//! An iteration can start when every input has an element. An input that
//! ended (its writer closed and it is drained) ends the stage, even if the
//! others still have elements: the stage can never read a full set again.

use super::edge::{Input, Poll, Waker};

/// Whether all inputs of a stage have an element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Polled {
    /// Every input has an element.
    Ready,
    /// Input `i` has none yet.
    Empty(usize),
    /// An input ended.
    Closed,
}

/// A tuple of inputs read together.
pub trait Inputs: Send {
    /// One element of each input.
    type Items<'a>
    where
        Self: 'a;
    /// Whether every input has an element.
    fn poll(&mut self) -> Polled;
    /// One element of each. Call only after `poll` said `Ready`.
    fn get(&mut self) -> Self::Items<'_>;
    /// Moves every input past the elements `get` gave.
    fn advance(&mut self);
    /// Publishes what was read.
    fn release(&mut self);
    /// Parks on input `which`.
    fn park(&mut self, which: usize) -> bool;
    /// Stops reading all inputs.
    fn close(&mut self);
    /// Sets who is woken for every input.
    fn bind(&mut self, waker: &Waker);
    /// Shows `each` the next element of every input that has one ready,
    /// without reading it (see [`Input::upcoming`]).
    fn upcoming(&mut self, each: &mut dyn FnMut(&dyn std::any::Any))
    where
        Self: 'static,
    {
        let _ = each;
    }
}

impl Inputs for () {
    type Items<'a> = ();
    #[inline]
    fn poll(&mut self) -> Polled {
        Polled::Ready
    }
    #[inline]
    fn get(&mut self) {}
    #[inline]
    fn advance(&mut self) {}
    fn release(&mut self) {}
    fn park(&mut self, _: usize) -> bool {
        false
    }
    fn close(&mut self) {}
    fn bind(&mut self, _: &Waker) {}
}

macro_rules! tuple_inputs {
    ($($name:ident $index:tt),+) => {
        impl<$($name: Input),+> Inputs for ($($name,)+) {
            type Items<'a> = ($($name::Item<'a>,)+) where Self: 'a;

            #[inline]
            fn poll(&mut self) -> Polled {
                let mut empty = None;
                $(
                    match self.$index.poll() {
                        Poll::Ready => {}
                        Poll::Empty => { empty.get_or_insert($index); }
                        Poll::Closed => return Polled::Closed,
                    }
                )+
                match empty {
                    None => Polled::Ready,
                    Some(i) => Polled::Empty(i),
                }
            }

            #[inline]
            fn get(&mut self) -> Self::Items<'_> {
                ($(self.$index.get(),)+)
            }

            #[inline]
            fn advance(&mut self) {
                $(self.$index.advance();)+
            }

            fn release(&mut self) {
                $(self.$index.release();)+
            }

            fn park(&mut self, which: usize) -> bool {
                match which {
                    $($index => self.$index.park(),)+
                    _ => false,
                }
            }

            fn close(&mut self) {
                $(self.$index.close();)+
            }

            fn bind(&mut self, waker: &Waker) {
                $(self.$index.bind(waker);)+
            }

            fn upcoming(&mut self, each: &mut dyn FnMut(&dyn std::any::Any))
            where
                Self: 'static,
            {
                $(if let Some(next) = self.$index.upcoming() { each(next) })+
            }
        }
    };
}

tuple_inputs!(A 0);
tuple_inputs!(A 0, B 1);
tuple_inputs!(A 0, B 1, C 2);
tuple_inputs!(A 0, B 1, C 2, D 3);
tuple_inputs!(A 0, B 1, C 2, D 3, E 4);
tuple_inputs!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_inputs!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_inputs!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple_inputs!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple_inputs!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple_inputs!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple_inputs!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);
