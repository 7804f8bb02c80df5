//! Stages: one statement of a `streaming!` block, called once per
//! iteration, and chains of stages fused into one loop.
//!
//! A stage's closure (emitted by the macro around the user's expression)
//! returns a [`Flow`]. The runtime wraps it in a [`Member`] (or a
//! [`DelayMember`] when the stage reads its own previous value) that keeps
//! the stage's books: iterations against `max_evals`, the
//! [`finish_stream`](crate::finish_stream) request, allocations when the
//! region reports them, and whether the stage is still live.
//!
//! A fused group is a head member (reading the group's inputs) followed by
//! a [`Chain`] of members, each reading the one before it. Liveness rules:
//!
//! - a member that ends (`?` on `None`, `max_evals`, `finish_stream`, its
//!   input ended) delivers its last value, if it has one, to the next
//!   member, which then ends too: the end travels down the chain within the
//!   same iteration;
//! - the members *before* an ended member have nobody to feed: with
//!   teardown the group stops; with `teardown = false` they keep running
//!   (their values are dropped) until they end themselves. The group ends
//!   when its head does.

use std::cell::Cell;
use std::fmt::Display;
use std::marker::PhantomData;

use super::region::Region;
use crate::alloc;

/// What one call of a stage produced.
#[derive(Debug)]
pub enum Flow<T> {
    /// A value; the stage goes on.
    Item(T),
    /// A value, after which the stage's stream ends.
    Last(T),
    /// No value, and the stage's stream ends (`?` on `None`).
    End,
    /// No value this iteration; the stream already ended but a stage
    /// before it in the same loop still runs.
    Skip,
    /// The stage failed (`?` on `Err`) with this message.
    Fail(String),
}

/// What `?` accepts at the end of a `streaming!` stage: an `Option` ends
/// the stage's stream on `None`, a `Result` fails the region on `Err`
/// ([`Error::Failed`](crate::Error::Failed) with the error's text). dirk
/// implements it for these two; a compile error that names it says that a
/// stage ends with `?` on another type.
#[diagnostic::on_unimplemented(
    message = "`?` at the end of a stage needs an `Option` or a `Result`, not `{Self}`",
    label = "this returns `{Self}`",
    note = "`?` ends the stream on `None` and fails the region on `Err`; remove it to stream the value as it is"
)]
pub trait StageOutcome<T> {
    /// The flow for this outcome (used by the code `streaming!` emits).
    #[doc(hidden)]
    fn into_flow(self) -> Flow<T>;
}

// The element type is a parameter, not an associated type: a value that
// is neither an `Option` nor a `Result` then gives one error (the missing
// impl), not a second one for the element type it would have had.

#[diagnostic::do_not_recommend]
impl<T> StageOutcome<T> for Option<T> {
    #[inline]
    fn into_flow(self) -> Flow<T> {
        match self {
            Some(v) => Flow::Item(v),
            None => Flow::End,
        }
    }
}

#[diagnostic::do_not_recommend]
impl<T, E: Display> StageOutcome<T> for Result<T, E> {
    #[inline]
    fn into_flow(self) -> Flow<T> {
        match self {
            Ok(v) => Flow::Item(v),
            Err(e) => Flow::Fail(e.to_string()),
        }
    }
}

thread_local! {
    /// Whether a stage runs on this thread, and whether it asked to finish.
    static STAGE: Cell<(bool, bool)> = const { Cell::new((false, false)) };
}

/// Ends the streaming stage that calls it after the current iteration: the
/// value this iteration returns is still delivered, then the stage's stream
/// ends (its consumers drain what is buffered and end too, and with
/// `teardown` on the region winds down). Outside a streaming stage it does
/// nothing.
///
/// ```
/// use dirk::prelude::*;
///
/// let mut n = 0;
/// let out = streaming! {
///     let x = {
///         n += 1;
///         if n == 3 { dirk::finish_stream(); }
///         n
///     };
///     x
/// };
/// assert_eq!(out.iter().collect::<Vec<_>>(), [1, 2, 3]);
/// out.wait()?;
/// # Ok::<(), dirk::Error>(())
/// ```
pub fn finish_stream() {
    STAGE.with(|s| {
        let (inside, _) = s.get();
        if inside {
            s.set((true, true));
        }
    });
}

/// Marks the thread as running stages for the life of the guard; restores
/// what it was before (a node's turn may run nested inside another's wait).
pub(crate) fn enter_stages() -> impl Drop {
    let prev = STAGE.with(|s| s.replace((true, false)));
    Restore(prev)
}

struct Restore((bool, bool));

impl Drop for Restore {
    fn drop(&mut self) {
        STAGE.with(|s| s.set(self.0));
    }
}

#[inline]
fn take_finish() -> bool {
    STAGE.with(|s| {
        let (inside, finish) = s.get();
        if finish {
            s.set((inside, false));
        }
        finish
    })
}

/// What stages see of the turn running them.
pub struct Cx<'a> {
    pub(crate) region: &'a Region,
    /// The stage being called, so a panic can be attributed to it.
    pub(crate) current: usize,
}

impl std::fmt::Debug for Cx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cx").field("current", &self.current).finish_non_exhaustive()
    }
}

/// A stage's books.
#[derive(Debug)]
pub struct Core {
    index: usize,
    max: u64,
    evals: u64,
    elements: u64,
    allocs: u64,
    published: (u64, u64),
    count_allocs: bool,
    live: bool,
}

impl Core {
    pub(crate) fn new(index: usize, max: u64, count_allocs: bool) -> Core {
        Core { index, max, evals: 0, elements: 0, allocs: 0, published: (0, 0), count_allocs, live: true }
    }

    /// Calls the stage once and applies `max_evals` and `finish_stream`.
    #[inline]
    pub(crate) fn run<O>(&mut self, cx: &mut Cx<'_>, call: impl FnOnce() -> Flow<O>) -> Flow<O> {
        cx.current = self.index;
        let flow = if self.count_allocs {
            let before = alloc::thread_allocations();
            let flow = call();
            self.allocs += alloc::thread_allocations() - before;
            flow
        } else {
            call()
        };
        self.evals += 1;
        let finish = take_finish() || self.evals >= self.max;
        match flow {
            Flow::Item(v) if !finish => {
                self.elements += 1;
                Flow::Item(v)
            }
            Flow::Item(v) | Flow::Last(v) => {
                self.elements += 1;
                self.end(cx);
                Flow::Last(v)
            }
            Flow::End => {
                self.end(cx);
                Flow::End
            }
            Flow::Skip => Flow::Skip,
            Flow::Fail(message) => {
                self.live = false;
                Flow::Fail(message)
            }
        }
    }

    /// The stage ends (also when it ends without a call: its input ended).
    pub(crate) fn end(&mut self, _: &Cx<'_>) {
        self.live = false;
    }

    fn publish(&mut self, region: &Region) {
        let (elements, allocs) = self.published;
        region.add_counts(self.index, self.elements - elements, self.allocs - allocs);
        self.published = (self.elements, self.allocs);
    }
}

/// A stage called with its inputs: the closure `f` takes the stage's input
/// tuple and returns its flow.
pub struct Member<F, O> {
    core: Core,
    f: F,
    out: PhantomData<fn() -> O>,
}

impl<F, O> Member<F, O> {
    pub(crate) fn new(core: Core, f: F) -> Self {
        Member { core, f, out: PhantomData }
    }
}

impl<F, O> std::fmt::Debug for Member<F, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member").field("core", &self.core).finish_non_exhaustive()
    }
}

/// What to do with a stage's value that its own next iteration reads
/// through `delay`: keep a copy (other stages read it too), or keep the
/// value itself (nobody else does).
pub trait Keep<O>: Send {
    /// What the stage passes on.
    type Out;
    /// Stores the carry for the next iteration and returns what goes on.
    fn keep(&mut self, value: O, carry: &mut Option<O>) -> Self::Out;
}

/// Keeps a clone as the carry and passes the value on.
#[derive(Debug)]
pub struct KeepCopy<C>(pub(crate) C);

/// Keeps the value itself as the carry; nothing goes on.
#[derive(Debug)]
pub struct KeepOnly;

impl<O, C: FnMut(&O) -> O + Send> Keep<O> for KeepCopy<C> {
    type Out = O;
    fn keep(&mut self, value: O, carry: &mut Option<O>) -> O {
        *carry = Some((self.0)(&value));
        value
    }
}

impl<O> Keep<O> for KeepOnly {
    type Out = ();
    fn keep(&mut self, value: O, carry: &mut Option<O>) {
        *carry = Some(value);
    }
}

/// A stage that reads its own previous value (`delay(x, init)` inside the
/// statement defining `x`): the closure takes its inputs and that value.
pub struct DelayMember<F, O, K> {
    core: Core,
    f: F,
    carry: Option<O>,
    keep: K,
}

impl<F, O, K> DelayMember<F, O, K> {
    pub(crate) fn new(core: Core, init: O, keep: K, f: F) -> Self {
        DelayMember { core, f, carry: Some(init), keep }
    }
}

impl<F, O, K> std::fmt::Debug for DelayMember<F, O, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelayMember").field("core", &self.core).finish_non_exhaustive()
    }
}

/// A stage as the loop drives it, for one input type `In` and output `Out`.
pub trait Step<In, Out>: Send {
    /// One call.
    fn step(&mut self, input: In, cx: &mut Cx<'_>) -> Flow<Out>;
    /// The books of this stage (and of the stages after it, for chains).
    fn core(&mut self) -> &mut Core;
}

impl<In, O, F> Step<In, O> for Member<F, O>
where
    F: FnMut(In) -> Flow<O> + Send,
{
    #[inline]
    fn step(&mut self, input: In, cx: &mut Cx<'_>) -> Flow<O> {
        let f = &mut self.f;
        self.core.run(cx, || f(input))
    }
    fn core(&mut self) -> &mut Core {
        &mut self.core
    }
}

impl<In, O, F, K> Step<In, K::Out> for DelayMember<F, O, K>
where
    F: FnMut(In, O) -> Flow<O> + Send,
    O: Send,
    K: Keep<O>,
{
    #[inline]
    fn step(&mut self, input: In, cx: &mut Cx<'_>) -> Flow<K::Out> {
        let prev = self.carry.take().expect("a live stage with a delay always holds its carry");
        let f = &mut self.f;
        match self.core.run(cx, || f(input, prev)) {
            Flow::Item(v) => Flow::Item(self.keep.keep(v, &mut self.carry)),
            Flow::Last(v) => Flow::Last(self.keep.keep(v, &mut self.carry)),
            Flow::End => Flow::End,
            Flow::Skip => Flow::Skip,
            Flow::Fail(m) => Flow::Fail(m),
        }
    }
    fn core(&mut self) -> &mut Core {
        &mut self.core
    }
}

/// The stages after a group's head, each reading the one before.
pub trait Chain<In>: Send {
    /// What the last stage produces.
    type Out;
    /// Passes the head's flow down the chain (liveness rules in the module note).
    fn feed(&mut self, flow: Flow<In>, cx: &mut Cx<'_>) -> Flow<Self::Out>;
    /// Publishes every stage's counts.
    fn publish(&mut self, region: &Region);
    /// Ends every stage still live (the group stops).
    fn end_all(&mut self, cx: &Cx<'_>);
}

/// The empty chain: the head's flow is the group's.
#[derive(Debug, Default)]
pub struct Head;

impl<In> Chain<In> for Head {
    type Out = In;
    #[inline]
    fn feed(&mut self, flow: Flow<In>, _: &mut Cx<'_>) -> Flow<In> {
        flow
    }
    fn publish(&mut self, _: &Region) {}
    fn end_all(&mut self, _: &Cx<'_>) {}
}

/// A chain `prev` followed by one more stage.
#[derive(Debug)]
pub struct Link<C, M, Mid> {
    prev: C,
    member: M,
    mid: PhantomData<fn() -> Mid>,
}

impl<C, M, Mid> Link<C, M, Mid> {
    pub(crate) fn new(prev: C, member: M) -> Self {
        Link { prev, member, mid: PhantomData }
    }
}

impl<In, C, M, O> Chain<In> for Link<C, M, O>
where
    C: Chain<In>,
    M: Step<(C::Out,), O>,
{
    type Out = O;

    #[inline]
    fn feed(&mut self, flow: Flow<In>, cx: &mut Cx<'_>) -> Flow<O> {
        let upstream = self.prev.feed(flow, cx);
        if !self.member.core().live {
            return match upstream {
                Flow::Fail(m) => Flow::Fail(m),
                _ => Flow::Skip,
            };
        }
        match upstream {
            Flow::Item(v) => self.member.step((v,), cx),
            Flow::Last(v) => match self.member.step((v,), cx) {
                Flow::Item(w) | Flow::Last(w) => {
                    self.member.core().end(cx);
                    Flow::Last(w)
                }
                Flow::End | Flow::Skip => {
                    self.member.core().end(cx);
                    Flow::End
                }
                Flow::Fail(m) => Flow::Fail(m),
            },
            Flow::End | Flow::Skip => {
                self.member.core().end(cx);
                Flow::End
            }
            Flow::Fail(m) => Flow::Fail(m),
        }
    }

    fn publish(&mut self, region: &Region) {
        self.prev.publish(region);
        self.member.core().publish(region);
    }

    fn end_all(&mut self, cx: &Cx<'_>) {
        self.prev.end_all(cx);
        self.member.core().end(cx);
    }
}

impl Core {
    pub(crate) fn is_live(&self) -> bool {
        self.live
    }

    pub(crate) fn publish_to(&mut self, region: &Region) {
        self.publish(region);
    }
}
