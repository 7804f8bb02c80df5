//! The streaming node: one fused group of stages, run cooperatively in
//! *turns* on the runtime's worker threads.
//!
//! A node is one long-lived task cell (the runtime's [`Header`] followed by
//! the node's state and its group), queued like a task each time it has a
//! turn to run. A turn runs iterations until one of:
//!
//! 1. an input is empty or the output is full: the node publishes what it
//!    did and, if its worker has nothing else to run, looks at the edge
//!    again for a few microseconds (the neighbour on another core is
//!    usually about to publish); then it *parks* on that edge (see
//!    [`edge`](super::edge)) and goes idle, and the neighbour that makes
//!    progress on that edge queues its next turn;
//! 2. its budget of iterations is used: it queues itself behind the work
//!    already queued (`Shared::schedule_yielded`), so nodes sharing a thread
//!    take turns; the budget adapts so a turn lasts between 0.1 and 1 ms.
//!    Within a turn the node publishes its output every `flush_every`
//!    iterations, chosen from the last full turn so that an element waits
//!    at most about [`FLUSH_LATENCY`] to be published: a source paced by
//!    the outside world (one element every 20 µs) publishes each element,
//!    a fast one leaves publishing to its rings' batches;
//! 3. it ends (its head stage ended, nobody reads its output any more, the
//!    region was cancelled, a stage failed or panicked): it closes its
//!    edges, which wakes its neighbours, drops its stages (and what they
//!    captured), and only then tells the region.
//!
//! So any graph runs on one thread, and a node with nothing to do costs
//! nothing: no thread waits for it and nobody polls it.
//!
//! Scheduling state (one atomic): `IDLE` (parked, not queued), `QUEUED`,
//! `RUNNING`, `NOTIFIED` (woken while running: it runs another turn instead
//! of going idle), `DONE`. [`NodeRef::wake`] moves `IDLE` to `QUEUED` and
//! queues the node, or `RUNNING` to `NOTIFIED`; only the queue's holder runs
//! a turn, so a group is touched by one thread at a time.
//!
//! Teardown (on unless the region says `teardown = false`): a group whose
//! output nobody reads any more (every reader closed, or its own last stage
//! ended while earlier ones still run) stops, which closes its inputs in
//! turn; so ending a consumer winds down everything that only fed it.
//! Without teardown such a group keeps running and its values are dropped.
//!
//! Interruption: cancelling the region marks every node's header
//! cancelled, so a stage waiting in [`dirk::sleep`](crate::sleep) returns
//! at once and
//! [`dirk::cancelled`](crate::cancelled) says so. A node found in a queue
//! when its runtime shuts down is run with its header already failed; it
//! then fails the region with [`Error::Cancelled`](crate::Error::Cancelled).

use std::alloc::Layout;
use std::borrow::Cow;
use std::cell::UnsafeCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::edge::{Output, Space, Waker};
use super::inputs::{Inputs, Polled};
use super::region::Region;
use super::stage::{self, Chain, Cx, Flow, Step};
use crate::error::Error;
use crate::exec::{Shared, context};
use crate::sched::Placement;
use crate::task::TaskId;
use crate::task::alloc;
use crate::task::cell::tell;
use crate::task::raw::{Header, HeaderInit, InputVisitor, TaskRef, VTable};
use crate::task::state::{CANCEL, FINISHING};

const IDLE: u8 = 0;
const QUEUED: u8 = 1;
const RUNNING: u8 = 2;
const NOTIFIED: u8 = 3;
const DONE: u8 = 4;

const MIN_BUDGET: u32 = 1;
const MAX_BUDGET: u32 = 1 << 20;
const FIRST_BUDGET: u32 = 1024;
/// Turns shorter than this double the budget; longer than `SLOW_TURN` halve it.
const FAST_TURN: Duration = Duration::from_micros(100);
const SLOW_TURN: Duration = Duration::from_millis(1);
/// How long a node with an idle worker looks again before it parks.
const SPIN: Duration = Duration::from_micros(5);
/// About the longest an element waits inside a turn before it is published.
const FLUSH_LATENCY: Duration = Duration::from_micros(2);

/// How a turn ended.
#[derive(Debug)]
pub(crate) enum TurnEnd {
    Budget,
    Blocked(Blocked),
    Done,
    Failed(String),
}

/// Which edge a node waits on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Blocked {
    Input(usize),
    Output,
}

/// What a node does with the next element of each input after every
/// iteration: a node placed on a GPU starts uploading it while the
/// iteration's kernels run (see `gpu/prefetch.rs`); `None` elsewhere.
pub(crate) type Ahead<'a> = Option<&'a mut dyn FnMut(&dyn std::any::Any)>;

/// A group of stages as its node drives it.
pub(crate) trait Turn: Send + 'static {
    /// Whether the node publishes within a turn (module note, 2). A node
    /// whose `flush` is a system call (a stage on another process rings
    /// its worker) publishes at the end of each turn only.
    const FLUSH_WITHIN_TURN: bool = true;
    /// Runs up to `budget` iterations, showing `ahead` the next input
    /// elements after each.
    fn turn(&mut self, cx: &mut Cx<'_>, budget: u32, ahead: Ahead<'_>) -> TurnEnd;
    /// Publishes what the turn wrote and read.
    fn flush(&mut self);
    /// Parks on `on`; `false` if it is ready again.
    fn park(&mut self, on: Blocked) -> bool;
    /// Whether `on` is ready again (without parking).
    fn ready(&mut self, on: Blocked) -> bool;
    /// Publishes the stages' counts to the region.
    fn publish(&mut self, region: &Region);
    /// Ends every stage and closes every edge.
    fn finish(&mut self, cx: &Cx<'_>);
    /// Sets who is woken for every edge.
    fn bind(&mut self, waker: &Waker);
}

/// A group: the head stage reading `inputs`, the fused `chain` after it,
/// and the `output` its last stage writes.
pub struct GroupBody<I, H, M, C, W> {
    pub(crate) inputs: I,
    pub(crate) head: H,
    pub(crate) chain: C,
    pub(crate) output: W,
    pub(crate) output_open: bool,
    pub(crate) mid: std::marker::PhantomData<fn() -> M>,
}

impl<I, H, M, C, W> std::fmt::Debug for GroupBody<I, H, M, C, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupBody").field("output_open", &self.output_open).finish_non_exhaustive()
    }
}

impl<I, H, M, C, W> GroupBody<I, H, M, C, W>
where
    I: Inputs,
    H: for<'a> Step<I::Items<'a>, M>,
    C: Chain<M>,
    W: Output<C::Out>,
{
    fn deliver(&mut self, flow: Flow<C::Out>) -> Option<TurnEnd> {
        match flow {
            Flow::Item(v) => self.output.push(v),
            Flow::Last(v) => {
                self.output.push(v);
                self.close_output();
            }
            Flow::End => self.close_output(),
            Flow::Skip => {}
            Flow::Fail(message) => return Some(TurnEnd::Failed(message)),
        }
        None
    }

    fn close_output(&mut self) {
        if self.output_open {
            self.output_open = false;
            self.output.close();
        }
    }
}

impl<I, H, M, C, W> Turn for GroupBody<I, H, M, C, W>
where
    I: Inputs + 'static,
    H: for<'a> Step<I::Items<'a>, M> + 'static,
    M: 'static,
    C: Chain<M> + 'static,
    W: Output<C::Out> + 'static,
{
    fn turn(&mut self, cx: &mut Cx<'_>, budget: u32, mut ahead: Ahead<'_>) -> TurnEnd {
        let teardown = cx.region.teardown;
        for _ in 0..budget {
            if cx.region.is_cancelled() {
                return TurnEnd::Done;
            }
            if self.output_open {
                match self.output.reserve() {
                    Space::Ready => {}
                    Space::Full => return TurnEnd::Blocked(Blocked::Output),
                    // Nobody reads what this group makes any more.
                    Space::Closed if teardown => return TurnEnd::Done,
                    Space::Closed => {}
                }
            }
            match self.inputs.poll() {
                Polled::Ready => {}
                Polled::Empty(i) => return TurnEnd::Blocked(Blocked::Input(i)),
                Polled::Closed => {
                    // An input ended: the head ends, and the end travels down.
                    self.head.core().end(cx);
                    let flow = self.chain.feed(Flow::End, cx);
                    if let Some(failed) = self.deliver(flow) {
                        return failed;
                    }
                    return TurnEnd::Done;
                }
            }
            let flow = {
                let items = self.inputs.get();
                self.head.step(items, cx)
            };
            self.inputs.advance();
            let flow = self.chain.feed(flow, cx);
            if let Some(failed) = self.deliver(flow) {
                return failed;
            }
            if !self.head.core().is_live() || (teardown && !self.output_open) {
                return TurnEnd::Done;
            }
            if let Some(ahead) = ahead.as_deref_mut() {
                self.inputs.upcoming(ahead);
            }
        }
        TurnEnd::Budget
    }

    fn flush(&mut self) {
        self.output.flush();
        self.inputs.release();
    }

    fn park(&mut self, on: Blocked) -> bool {
        match on {
            Blocked::Input(i) => self.inputs.park(i),
            Blocked::Output => self.output.park(),
        }
    }

    fn ready(&mut self, on: Blocked) -> bool {
        match on {
            Blocked::Input(_) => !matches!(self.inputs.poll(), Polled::Empty(_)),
            Blocked::Output => self.output.reserve() != Space::Full,
        }
    }

    fn publish(&mut self, region: &Region) {
        self.head.core().publish_to(region);
        self.chain.publish(region);
    }

    fn finish(&mut self, cx: &Cx<'_>) {
        self.head.core().end(cx);
        self.chain.end_all(cx);
        self.close_output();
        self.output.flush();
        self.inputs.close();
    }

    fn bind(&mut self, waker: &Waker) {
        self.inputs.bind(waker);
        self.output.bind(waker);
    }
}

/// What a node shares with the edges that wake it and the region.
pub(crate) struct Node {
    state: AtomicU8,
    budget: AtomicU32,
    /// Iterations between publishes inside a turn (module note, 2).
    flush_every: AtomicU32,
    pub(crate) region: Arc<Region>,
    /// The stages of the group, by their index in the region.
    pub(crate) stages: Box<[usize]>,
}

#[repr(C)]
struct Prefix {
    header: Header,
    node: Node,
}

#[repr(C)]
struct NodeCell<B> {
    prefix: Prefix,
    /// `None` once the node ended: its stages (and what they captured)
    /// are dropped before the region hears that the node is done.
    body: UnsafeCell<Option<B>>,
}

impl<B: Turn> NodeCell<B> {
    const VTABLE: VTable =
        // Streaming nodes run where their region placed them; none is sent
        // whole to another process.
        VTable { run: run::<B>, for_each_input: no_inputs, remote: None, dealloc: dealloc::<B> };
}

/// A counted reference to a node.
#[derive(Clone)]
pub struct NodeRef(TaskRef);

impl std::fmt::Debug for NodeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("NodeRef").field(&self.0.header().name).finish()
    }
}

/// Builds a node (not yet queued) for `body`, binding its edges to it.
pub(crate) fn new_node<B: Turn>(
    rt: &'static Shared,
    placement: Placement,
    name: Cow<'static, str>,
    node: Node,
    body: B,
) -> NodeRef {
    let layout = Layout::new::<NodeCell<B>>();
    let (memory, origin) = alloc::allocate(layout);
    let init =
        HeaderInit { id: TaskId::next(), rt, placement, group: None, options: context::options(), name, spawned_at: 0 };
    let header = Header::new(init, &NodeCell::<B>::VTABLE, origin, 0, 0);
    let cell = memory.cast::<NodeCell<B>>();
    // SAFETY: `memory` is fresh, sized and aligned for `NodeCell<B>`.
    unsafe { cell.as_ptr().write(NodeCell { prefix: Prefix { header, node }, body: UnsafeCell::new(Some(body)) }) };
    // SAFETY: the header starts the cell (`repr(C)`) and counts two
    // references: the first is this node's own, the second is dropped.
    let (first, second) = unsafe { (TaskRef::from_raw(cell.cast()), TaskRef::from_raw(cell.cast())) };
    drop(second);
    let node = NodeRef(first);
    let waker = Waker::node(node.clone());
    // SAFETY: the node is not queued yet, so nobody else touches its body;
    // the reference to the cell is kept alive by `node`.
    if let Some(body) = unsafe { (*cell.as_ref().body.get()).as_mut() } {
        body.bind(&waker);
    }
    node
}

impl NodeRef {
    fn prefix(&self) -> &Prefix {
        // SAFETY: a `NodeRef` is only made by `new_node` for a `NodeCell`,
        // which starts with a `Prefix` (`repr(C)`), and it keeps the cell alive.
        unsafe { self.0.as_ptr().cast::<Prefix>().as_ref() }
    }

    pub(crate) fn node(&self) -> &Node {
        &self.prefix().node
    }

    /// Queues the node's next turn if it is idle, or makes it run another
    /// turn if it is running.
    pub(crate) fn wake(&self) {
        let state = &self.node().state;
        let mut s = state.load(Ordering::Acquire);
        loop {
            let next = match s {
                IDLE => QUEUED,
                RUNNING => NOTIFIED,
                _ => return,
            };
            match state.compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) if next == QUEUED => {
                    let task = self.0.clone();
                    let rt = task.header().rt;
                    return rt.schedule(task);
                }
                Ok(_) => return,
                Err(actual) => s = actual,
            }
        }
    }

    /// Asks a stage waiting in `dirk::sleep` to return, and wakes the node.
    pub(crate) fn interrupt(&self) {
        let header = &self.prefix().header;
        header.state.set(CANCEL);
        if let Some(completion) = header.fail(Error::Cancelled { task: header.id }) {
            tell(completion);
        }
        self.wake();
    }
}

unsafe fn no_inputs(_: &Header, _: InputVisitor<'_>) {}

unsafe fn dealloc<B: Turn>(ptr: NonNull<Header>) {
    let cell = ptr.cast::<NodeCell<B>>().as_ptr();
    // SAFETY: the last reference is gone: the cell is initialised and ours.
    unsafe {
        let origin = (*cell).prefix.header.origin;
        std::ptr::drop_in_place(cell);
        alloc::free(ptr.cast(), Layout::new::<NodeCell<B>>(), origin);
    }
}

unsafe fn run<B: Turn>(task: TaskRef) {
    // SAFETY: this vtable entry is only reachable from a `NodeCell<B>`,
    // kept alive by `task`.
    let cell = unsafe { task.as_ptr().cast::<NodeCell<B>>().as_ref() };
    let Prefix { header, node } = &cell.prefix;
    if node.state.swap(RUNNING, Ordering::AcqRel) == DONE {
        node.state.store(DONE, Ordering::Release);
        return;
    }
    let _task = context::enter_task(header);
    let _stages = stage::enter_stages();
    // SAFETY: only the holder of the queued reference runs a turn, and it
    // set RUNNING; wakers never touch the body (module note).
    let slot = unsafe { &mut *cell.body.get() };
    let Some(body) = slot.as_mut() else { return };
    if drive(node, header, body, &task) {
        let ended = slot.take();
        if catch_unwind(AssertUnwindSafe(move || drop(ended))).is_err() {
            node.region.stage_panicked(node.stages[0], &"a stage's captured value panicked when dropped");
        }
        node.region.node_done();
    }
}

/// Runs turns until the node parks, yields or ends; `true` when it ended.
fn drive<B: Turn>(node: &Node, header: &Header, body: &mut B, me: &TaskRef) -> bool {
    let region = &*node.region;
    let mut cx = Cx { region, current: node.stages[0] };
    #[cfg(feature = "gpu")]
    let mut ahead = crate::gpu::Prefetch::on(header.placement).map(|p| move |next: &dyn std::any::Any| p.offer(next));
    #[cfg(not(feature = "gpu"))]
    let mut ahead: Option<fn(&dyn std::any::Any)> = None;
    loop {
        if header.state.load() & FINISHING != 0 {
            region.interrupted(header.id, header.error());
        }
        let budget = node.budget.load(Ordering::Relaxed);
        let every = if B::FLUSH_WITHIN_TURN { node.flush_every.load(Ordering::Relaxed) } else { budget };
        let start = Instant::now();
        let end = catch_unwind(AssertUnwindSafe(|| {
            let mut left = budget;
            loop {
                let part = left.min(every);
                match body.turn(&mut cx, part, ahead.as_mut().map(|f| f as _)) {
                    TurnEnd::Budget if left > part => {
                        left -= part;
                        body.flush();
                    }
                    end => return end,
                }
            }
        }));
        body.flush();
        body.publish(region);
        let took = start.elapsed();
        region.add_busy(&node.stages, took);
        if took > SLOW_TURN {
            node.budget.store((budget / 2).max(MIN_BUDGET), Ordering::Relaxed);
        }
        match end {
            Ok(TurnEnd::Budget) => {
                if took < FAST_TURN {
                    node.budget.store((budget * 2).min(MAX_BUDGET), Ordering::Relaxed);
                }
                node.flush_every.store(flush_every(took, budget), Ordering::Relaxed);
                node.state.store(QUEUED, Ordering::Release);
                header.rt.schedule_yielded(me.clone());
                return false;
            }
            Ok(TurnEnd::Blocked(on)) => {
                if spin_until_ready(body, on) || !body.park(on) {
                    continue;
                }
                match node.state.compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return false,
                    Err(_) => node.state.store(RUNNING, Ordering::Release),
                }
            }
            Ok(TurnEnd::Done) => break,
            Ok(TurnEnd::Failed(message)) => {
                region.stage_failed(cx.current, message);
                break;
            }
            Err(payload) => {
                region.stage_panicked(cx.current, &*payload);
                break;
            }
        }
    }
    let finished = catch_unwind(AssertUnwindSafe(|| body.finish(&cx)));
    if let Err(payload) = finished {
        region.stage_panicked(cx.current, &*payload);
    }
    body.publish(region);
    node.state.store(DONE, Ordering::Release);
    true
}

/// Before parking, a node whose worker has nothing else to run looks at
/// its edge again for a few microseconds: the neighbour on another core is
/// usually about to publish, and a park and wake-up cost far more.
fn spin_until_ready<B: Turn>(body: &mut B, on: Blocked) -> bool {
    let idle = || context::with_worker(|w| w.is_some_and(|w| !w.shared.has_work(Some(w.index))));
    let start = Instant::now();
    while idle() && start.elapsed() < SPIN {
        for _ in 0..8 {
            std::hint::spin_loop();
        }
        if body.ready(on) {
            return true;
        }
    }
    false
}

/// Iterations between publishes for a node whose full turn of `budget`
/// iterations took `took`: as many as fit in [`FLUSH_LATENCY`], at least one.
fn flush_every(took: Duration, budget: u32) -> u32 {
    let per_iteration = (took.as_nanos() / u128::from(budget.max(1))).max(1);
    (FLUSH_LATENCY.as_nanos() / per_iteration).clamp(1, u128::from(MAX_BUDGET)) as u32
}

impl Node {
    pub(crate) fn new(region: Arc<Region>, stages: Box<[usize]>) -> Node {
        // Until a full turn has been timed, publish after every iteration.
        Node {
            state: AtomicU8::new(IDLE),
            budget: AtomicU32::new(FIRST_BUDGET),
            flush_every: AtomicU32::new(1),
            region,
            stages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_iterations_publish_every_element() {
        // A source paced at 20 µs an element: 50 iterations take 1 ms.
        assert_eq!(flush_every(Duration::from_millis(1), 50), 1);
        // Exactly the latency bound per iteration, or a stalled turn.
        assert_eq!(flush_every(FLUSH_LATENCY, 1), 1);
        assert_eq!(flush_every(Duration::from_secs(3), 1), 1);
    }

    #[test]
    fn fast_iterations_publish_as_many_as_fit_in_the_bound() {
        // 5 ns an iteration: 400 fit in 2 µs (the rings publish each batch sooner).
        assert_eq!(flush_every(Duration::from_nanos(5 * 1024), 1024), 400);
        // 500 ns an iteration: every 4th.
        assert_eq!(flush_every(Duration::from_micros(500), 1000), 4);
        // A turn too fast to time counts as 1 ns an iteration.
        assert_eq!(flush_every(Duration::ZERO, 1 << 20), 2000);
    }
}
