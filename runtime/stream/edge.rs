//! Edges: what a streaming node reads from ([`Input`]) and writes to
//! ([`Output`]), and how the two ends of an edge wake each other.
//!
//! These two traits are the whole contract between a node and an edge, so a
//! new transport (a shared-memory ring between processes, a socket) plugs in
//! by implementing them for its two ends. The in-process rings are
//! [`spsc`](super::spsc) (one reader) and [`broadcast`](super::broadcast)
//! (several readers, each borrowing every element).
//!
//! Protocol, for every edge:
//!
//! 1. Elements move in batches. A writer `push`es into its own view and
//!    publishes with `flush` (every few dozen elements, when its view is
//!    full, at the end of every turn); a reader `get`s from its view and
//!    gives the room back with `release` (likewise). Publishing is one
//!    release store and one `SeqCst` fence per batch, not per element.
//! 2. An end that cannot go on (empty input, full output) *parks*: it sets
//!    its [`Side`]'s waiting flag, issues a `SeqCst` fence and looks at the
//!    other end's published position once more (`park` returns `false` if
//!    that look found progress). The other end publishes, fences, and then
//!    reads the flag; whoever of the two comes second sees the other, so no
//!    wake-up is lost. The end that sees the flag swaps it off and wakes the
//!    parked end's [`Waker`]: a node (its next turn is queued) or a thread
//!    (the [`Stream`](crate::Stream) handle: its signal is set and its
//!    thread unparked).
//! 3. Closing is a published event like any other: a closed writer's readers
//!    drain what was published and then poll `Closed`; a closed reader makes
//!    the writer's `reserve` answer `Closed`, after which pushes are dropped.
//! 4. Wakers are cleared when an end closes, which breaks the reference
//!    cycle between a node and the rings it is parked on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::thread::Thread;

use crate::sync::Mutex;

use super::node::NodeRef;

/// What an input can give now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// An element is ready.
    Ready,
    /// Nothing yet; the writer is still open.
    Empty,
    /// The writer closed and everything it wrote was read.
    Closed,
}

/// What an output can take now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// Room for one more element.
    Ready,
    /// No room until a reader releases some.
    Full,
    /// Every reader has closed: pushes are dropped.
    Closed,
}

/// Who to wake when an edge makes progress for a parked end.
#[derive(Clone, Debug)]
pub struct Waker(WakerKind);

#[derive(Clone, Debug)]
enum WakerKind {
    Node(NodeRef),
    Signal(Arc<Signal>),
}

impl Waker {
    pub(crate) fn node(node: NodeRef) -> Waker {
        Waker(WakerKind::Node(node))
    }

    pub(crate) fn signal(signal: Arc<Signal>) -> Waker {
        Waker(WakerKind::Signal(signal))
    }

    pub(crate) fn wake(self) {
        match self.0 {
            WakerKind::Node(node) => node.wake(),
            WakerKind::Signal(signal) => signal.notify(),
        }
    }
}

/// A flag a thread waits on (the [`Stream`](crate::Stream) handle's), set
/// by an edge or the region, which then unparks the thread.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    set: AtomicBool,
    thread: Mutex<Option<Thread>>,
}

impl Signal {
    /// Prepares for a wait by the calling thread.
    pub(crate) fn arm(&self) {
        *self.thread.lock() = Some(std::thread::current());
        self.set.store(false, Ordering::SeqCst);
    }

    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    pub(crate) fn notify(&self) {
        self.set.store(true, Ordering::Release);
        let thread = self.thread.lock().clone();
        if let Some(thread) = thread {
            thread.unpark();
        }
    }
}

/// One end's parking spot on an edge: its waiting flag and its waker.
#[derive(Debug, Default)]
pub(crate) struct Side {
    waiting: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Side {
    /// Sets (or, with `None`, clears) who is woken.
    pub(crate) fn set_waker(&self, waker: Option<Waker>) {
        *self.waker.lock() = waker;
    }

    /// Step 2 of the protocol, first half: the caller looks at the other
    /// end once more after this returns.
    pub(crate) fn announce(&self) {
        self.waiting.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Takes back an announcement after the second look found progress.
    pub(crate) fn withdraw(&self) {
        self.waiting.store(false, Ordering::Relaxed);
    }

    /// Wakes the end if it is parked. The caller published its progress and
    /// issued a `SeqCst` fence first.
    #[inline]
    pub(crate) fn notify(&self) {
        if self.waiting.load(Ordering::Relaxed) && self.waiting.swap(false, Ordering::AcqRel) {
            self.wake_cold();
        }
    }

    /// Wakes the end whether or not it is parked (a node is then woken for
    /// nothing at worst): used when the other end goes away.
    pub(crate) fn force(&self) {
        self.waiting.store(false, Ordering::Relaxed);
        self.wake_cold();
    }

    #[cold]
    fn wake_cold(&self) {
        // Clone out of the lock: waking may run the woken node at once (on a
        // runtime that shut down), and that node clears its own wakers.
        let waker = self.waker.lock().clone();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The reading end of an edge, as a node sees it. One element per
/// iteration: `poll` says whether there is one, `get` lends it (moving it
/// out for owned items), `advance` moves past it.
pub trait Input: Send {
    /// What one iteration reads: `T` when the element is the reader's own,
    /// `&T` when it is shared with other readers.
    type Item<'a>
    where
        Self: 'a;

    /// Whether an element is ready.
    fn poll(&mut self) -> Poll;
    /// The ready element. Call only after `poll` said `Ready`.
    fn get(&mut self) -> Self::Item<'_>;
    /// Moves past the element `get` gave.
    fn advance(&mut self);
    /// Publishes what was read, waking a writer waiting for room.
    fn release(&mut self);
    /// Parks this end (protocol step 2); `false` if an element or the end
    /// of the stream showed up meanwhile.
    fn park(&mut self) -> bool;
    /// Stops reading: the writer will drop what it writes from now on.
    fn close(&mut self);
    /// Sets who is woken when this end is parked and the writer progresses.
    fn bind(&mut self, waker: &Waker);
    /// The element `get` would give next, if one is ready, looked at
    /// without reading it: a node placed on a GPU starts its upload early
    /// (see `gpu::prefetch`). Rings answer; other inputs need not.
    fn upcoming(&mut self) -> Option<&dyn std::any::Any>
    where
        Self: 'static,
    {
        None
    }
}

/// The writing end of an edge, as a node sees it.
pub trait Output<T>: Send {
    /// Whether one more element fits.
    fn reserve(&mut self) -> Space;
    /// Writes an element. Call only after `reserve` (after `Closed` the
    /// element is dropped).
    fn push(&mut self, value: T);
    /// Publishes what was written, waking readers waiting for elements.
    fn flush(&mut self);
    /// Parks this end (protocol step 2); `false` if room or the end of all
    /// readers showed up meanwhile.
    fn park(&mut self) -> bool;
    /// Ends the stream: readers drain what was written, then see `Closed`.
    fn close(&mut self);
    /// Sets who is woken when this end is parked and a reader progresses.
    fn bind(&mut self, waker: &Waker);
}

/// The output of a stage nobody reads: every element is dropped.
#[derive(Clone, Copy, Debug, Default)]
pub struct Discard;

impl<T> Output<T> for Discard {
    fn reserve(&mut self) -> Space {
        Space::Ready
    }
    fn push(&mut self, value: T) {
        drop(value);
    }
    fn flush(&mut self) {}
    fn park(&mut self) -> bool {
        false
    }
    fn close(&mut self) {}
    fn bind(&mut self, _: &Waker) {}
}

/// An input whose elements are the reader's own: `Item` is the element.
pub trait Take: Input {
    /// The element type.
    type Elem;
    /// The ready element, moved past. Call only after `poll` said `Ready`.
    fn take(&mut self) -> Self::Elem;
}

/// An input whose elements are shared with other readers (`Item = &Elem`).
pub trait Peek: Input {
    /// The element type.
    type Elem;
    /// The ready element, borrowed until `advance`.
    fn peek(&mut self) -> &Self::Elem;
}

/// Reads a shared (`&T`) input as owned values by cloning each element:
/// the input of a stage that takes by value an element other stages read
/// too. The clone function is emitted at the stage's use of the name, so a
/// type that is not `Clone` is reported there.
#[derive(Debug)]
pub struct Cloned<R, C> {
    inner: R,
    clone: C,
}

/// Wraps a shared input so its elements arrive as clones.
pub fn cloned<R, C>(inner: R, clone: C) -> Cloned<R, C>
where
    R: Peek,
    C: FnMut(&R::Elem) -> R::Elem + Send,
{
    Cloned { inner, clone }
}

impl<R, C> Input for Cloned<R, C>
where
    R: Peek,
    C: FnMut(&R::Elem) -> R::Elem + Send,
{
    type Item<'a>
        = R::Elem
    where
        Self: 'a;

    fn poll(&mut self) -> Poll {
        self.inner.poll()
    }
    fn get(&mut self) -> R::Elem {
        let shared = self.inner.peek();
        (self.clone)(shared)
    }
    fn advance(&mut self) {
        self.inner.advance();
    }
    fn release(&mut self) {
        self.inner.release();
    }
    fn park(&mut self) -> bool {
        self.inner.park()
    }
    fn close(&mut self) {
        self.inner.close();
    }
    fn bind(&mut self, waker: &Waker) {
        self.inner.bind(waker);
    }
    fn upcoming(&mut self) -> Option<&dyn std::any::Any>
    where
        Self: 'static,
    {
        self.inner.upcoming()
    }
}

impl<R, C> Take for Cloned<R, C>
where
    R: Peek,
    C: FnMut(&R::Elem) -> R::Elem + Send,
{
    type Elem = R::Elem;
    fn take(&mut self) -> R::Elem {
        let value = self.get();
        self.advance();
        value
    }
}
