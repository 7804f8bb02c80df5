//! A streaming region: the nodes of one `streaming!` block, how they stop,
//! and the [`Builder`] the block's emitted code wires them with.
//!
//! Ending, in order of precedence:
//!
//! 1. **Failure.** A stage panics or its `?` meets an `Err`: the first such
//!    error is kept and the region is cancelled. [`Stream::wait`] returns it.
//! 2. **Cancel.** [`Stream::cancel`] (or dropping the handle): every node
//!    stops after its current iteration, and stages waiting in
//!    `dirk::sleep` return at once. `wait` then returns `Ok(())`.
//! 3. **Ends and teardown.** A stage that ends closes its output: its
//!    consumers drain what is buffered, then end. With teardown (on by
//!    default) a stage whose consumers have all ended stops too, so an
//!    ended consumer winds down everything that only fed it; no element
//!    already produced for a live consumer is lost. With `teardown = false`
//!    such a stage keeps running, its values dropped, until its own inputs
//!    end or the region is cancelled.
//!
//! The region is finished when every node has ended; the waiting handle
//! is then signalled. Nodes hold the region; the region holds its nodes
//! only until it finishes, which breaks that cycle.
//!
//! [`Stream::wait`]: crate::Stream::wait
//! [`Stream::cancel`]: crate::Stream::cancel

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::sync::Mutex;

use super::broadcast::{self, BroadcastReader, BroadcastWriter};
use super::edge::{Output, Signal, Take};
use super::handle::Stream;
use super::inputs::Inputs;
use super::node::{GroupBody, Node, NodeRef, new_node};
use super::spsc::{self, SpscReader, SpscWriter};
use super::stage::{Chain, Core, DelayMember, Flow, Head, KeepCopy, KeepOnly, Link, Member, Step};
use crate::error::{Error, Name, ScopeError};
use crate::exec::{self, Shared};
use crate::sched::{Placement, Scope};
use crate::task::TaskId;

const CANCEL: u32 = 2;
const FINISHED: u32 = 4;
const USER_CANCEL: u32 = 8;

/// Bytes a default ring aims at; the capacity is this over the element
/// size, between 4 and 1024 elements (rounded down to a power of two).
const DEFAULT_RING_BYTES: usize = 64 << 10;

/// The default capacity of a ring of `T`: large enough that the two ends
/// rarely wait for each other, small enough to stay in cache.
pub(crate) fn default_capacity<T>() -> usize {
    let fit = DEFAULT_RING_BYTES / size_of::<T>().max(1);
    let capacity = fit.clamp(4, 1024);
    1 << (usize::BITS - 1 - capacity.leading_zeros())
}

/// What the region keeps about one stage.
pub(crate) struct StageSlot {
    pub(crate) name: Name,
    pub(crate) id: TaskId,
    pub(crate) elements: AtomicU64,
    pub(crate) allocs: AtomicU64,
    pub(crate) busy_ns: AtomicU64,
}

/// The shared state of a region.
pub struct Region {
    rt: &'static Shared,
    flags: AtomicU32,
    live: AtomicUsize,
    pub(crate) teardown: bool,
    pub(crate) report_allocs: bool,
    failure: Mutex<Option<Error>>,
    nodes: Mutex<Vec<NodeRef>>,
    waiters: Mutex<Vec<Arc<Signal>>>,
    pub(crate) stages: Box<[StageSlot]>,
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region").field("flags", &self.flags).field("live", &self.live).finish_non_exhaustive()
    }
}

impl Region {
    /// Whether the region was cancelled (or failed): every node stops.
    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & CANCEL != 0
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.flags.load(Ordering::Acquire) & FINISHED != 0
    }

    fn nodes_now(&self) -> Vec<NodeRef> {
        self.nodes.lock().clone()
    }

    fn cancel_with(&self, extra: u32) {
        if self.flags.fetch_or(CANCEL | extra, Ordering::AcqRel) & CANCEL == 0 {
            for node in self.nodes_now() {
                node.interrupt();
            }
        }
    }

    /// Cancels the region at the user's request.
    pub(crate) fn cancel(&self) {
        self.cancel_with(USER_CANCEL);
    }

    /// Fails the region with `error` (the first failure wins) and cancels it.
    pub(crate) fn fail(&self, error: Error) {
        {
            let mut failure = self.failure.lock();
            if failure.is_none() && self.flags.load(Ordering::Acquire) & USER_CANCEL == 0 {
                *failure = Some(error);
            }
        }
        self.cancel_with(0);
    }

    pub(crate) fn stage_failed(&self, index: usize, message: String) {
        let stage = &self.stages[index];
        self.fail(Error::Failed { task: stage.id, name: stage.name.clone(), message });
    }

    pub(crate) fn stage_panicked(&self, index: usize, payload: &(dyn std::any::Any + Send)) {
        let stage = &self.stages[index];
        self.fail(Error::panicked(stage.id, stage.name.clone(), payload));
    }

    /// A node found its header failed without the region asking: its
    /// runtime shut down (`Cancelled`), or its processor cannot run it (the
    /// header's error, such as `Error::Gpu` for a device that cannot open).
    pub(crate) fn interrupted(&self, node: TaskId, error: Option<&Error>) {
        if self.flags.load(Ordering::Acquire) & CANCEL == 0 {
            self.fail(error.cloned().unwrap_or(Error::Cancelled { task: node }));
        }
    }

    /// Called by a waiting handle: if the region's runtime shut down while
    /// every node was parked, nothing would ever run them again, so the
    /// region is failed, which runs each node once more to end it.
    pub(crate) fn check_runtime(&self) {
        if self.rt.is_shutdown() && !self.is_finished() {
            let first = self.stages.first().map(|s| s.id);
            if let Some(task) = first {
                self.fail(Error::Cancelled { task });
            }
        }
    }

    /// A node ended; the last one finishes the region.
    pub(crate) fn node_done(&self) {
        if self.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.finish();
        }
    }

    fn finish(&self) {
        self.flags.fetch_or(FINISHED, Ordering::AcqRel);
        let nodes = std::mem::take(&mut *self.nodes.lock());
        drop(nodes);
        let waiters = std::mem::take(&mut *self.waiters.lock());
        for signal in waiters {
            signal.notify();
        }
    }

    /// Signals `signal` when the region finishes.
    pub(crate) fn watch(&self, signal: &Arc<Signal>) {
        let mut waiters = self.waiters.lock();
        if !waiters.iter().any(|s| Arc::ptr_eq(s, signal)) {
            waiters.push(signal.clone());
        }
        drop(waiters);
        if self.is_finished() {
            signal.notify();
        }
    }

    /// How the region ended (meaningful once it finished).
    pub(crate) fn result(&self) -> Result<(), Error> {
        match &*self.failure.lock() {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    pub(crate) fn add_counts(&self, stage: usize, elements: u64, allocs: u64) {
        let slot = &self.stages[stage];
        if elements != 0 {
            slot.elements.fetch_add(elements, Ordering::Relaxed);
        }
        if allocs != 0 {
            slot.allocs.fetch_add(allocs, Ordering::Relaxed);
        }
    }

    pub(crate) fn add_busy(&self, stages: &[usize], took: Duration) {
        let ns = took.as_nanos() as u64;
        for &stage in stages {
            self.stages[stage].busy_ns.fetch_add(ns, Ordering::Relaxed);
        }
    }
}

/// Region options: `#![dirk(max_evals = 10, teardown = false, report_allocs)]`.
#[derive(Clone, Copy, Debug)]
pub struct RegionOptions {
    /// Iterations every stage runs at most, unless the stage says otherwise.
    pub max_evals: Option<u64>,
    /// Whether a stage whose consumers have all ended stops.
    pub teardown: bool,
    /// Whether stages count their allocations.
    pub report_allocs: bool,
}

/// Wires a region: rings, then groups, then [`Builder::start`].
pub struct Builder {
    pub(crate) rt: &'static Shared,
    pub(crate) region: Arc<Region>,
    options: RegionOptions,
    pub(crate) error: RefCell<Option<Error>>,
    pub(crate) nodes: RefCell<Vec<NodeRef>>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder").field("options", &self.options).finish_non_exhaustive()
    }
}

impl Builder {
    /// A region on the current runtime with these stages (by name, in the
    /// order the macro numbered them).
    pub fn new(options: RegionOptions, stages: &[&'static str]) -> Builder {
        let stages = stages
            .iter()
            .map(|&name| StageSlot {
                name: Name::Borrowed(name),
                id: TaskId::next(),
                elements: AtomicU64::new(0),
                allocs: AtomicU64::new(0),
                busy_ns: AtomicU64::new(0),
            })
            .collect();
        let rt = exec::current();
        let region = Arc::new(Region {
            rt,
            flags: AtomicU32::new(0),
            live: AtomicUsize::new(0),
            teardown: options.teardown,
            report_allocs: options.report_allocs,
            failure: Mutex::new(None),
            nodes: Mutex::new(Vec::new()),
            waiters: Mutex::new(Vec::new()),
            stages,
        });
        let builder = Builder {
            rt: exec::current(),
            region,
            options,
            error: RefCell::new(None),
            nodes: RefCell::new(Vec::new()),
        };
        if options.max_evals == Some(0) {
            builder.config_error(
                "the region's `max_evals` is 0, so no stage would run: give at least 1, or leave it out".to_owned(),
            );
        }
        builder
    }

    fn config_error(&self, message: String) {
        self.error.borrow_mut().get_or_insert(Error::Config(message));
    }

    fn stage_name(&self, stage: usize) -> &str {
        &self.region.stages[stage].name
    }

    fn capacity<T>(&self, capacity: Option<usize>, producer: usize) -> usize {
        match capacity {
            None => default_capacity::<T>(),
            Some(0) => {
                self.config_error(format!(
                    "stage `{}` has `buffer = 0`, which holds no element: give at least 1, or leave it out",
                    self.stage_name(producer)
                ));
                1
            }
            Some(n) => n,
        }
    }

    pub(crate) fn core(&self, index: usize, max_evals: Option<u64>) -> Core {
        if max_evals == Some(0) {
            self.config_error(format!(
                "stage `{}` has `max_evals = 0`, so it would never run: give at least 1, or leave it out",
                self.stage_name(index)
            ));
        }
        let max = max_evals.or(self.options.max_evals).unwrap_or(u64::MAX).max(1);
        Core::new(index, max, self.options.report_allocs)
    }

    /// A single-reader ring written by stage `producer`.
    pub fn spsc<T: Send>(&self, capacity: Option<usize>, producer: usize) -> (SpscWriter<T>, SpscReader<T>) {
        spsc::channel(self.capacity::<T>(capacity, producer))
    }

    /// A ring written by stage `producer` and read by `N` readers.
    pub fn broadcast<T: Send + Sync, const N: usize>(
        &self,
        capacity: Option<usize>,
        producer: usize,
    ) -> (BroadcastWriter<T>, [BroadcastReader<T>; N]) {
        broadcast::channel(self.capacity::<T>(capacity, producer))
    }

    /// Starts a group whose head reads `inputs`, placed by `scope`.
    pub fn group<I: Inputs>(&self, scope: Option<Scope>, inputs: I) -> GroupStart<'_, I> {
        GroupStart { builder: self, scope, inputs }
    }

    /// Starts every node; the stream reads `tail`.
    pub fn start<T, R>(self, tail: R) -> Stream<T>
    where
        T: Send + 'static,
        R: Take<Elem = T> + 'static,
    {
        let region = self.launch();
        Stream::new(region, Some(Box::new(tail)))
    }

    /// Starts every node of a region without a tail expression.
    pub fn start_without_tail(self) -> Stream<()> {
        let region = self.launch();
        Stream::new(region, None)
    }

    fn launch(self) -> Arc<Region> {
        let nodes = self.nodes.into_inner();
        let region = self.region;
        region.live.store(nodes.len(), Ordering::Release);
        *region.nodes.lock() = nodes.clone();
        if nodes.is_empty() {
            region.finish();
        }
        match self.error.into_inner() {
            Some(error) => region.fail(error),
            None => nodes.iter().for_each(NodeRef::wake),
        }
        region
    }
}

/// A group with its inputs, before its head stage.
pub struct GroupStart<'b, I> {
    builder: &'b Builder,
    scope: Option<Scope>,
    inputs: I,
}

impl<I> std::fmt::Debug for GroupStart<'_, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupStart").field("scope", &self.scope).finish_non_exhaustive()
    }
}

/// A group being wired: its head, and the chain after it so far.
pub struct Group<'b, I, H, M, C> {
    pub(crate) builder: &'b Builder,
    pub(crate) scope: Option<Scope>,
    pub(crate) inputs: I,
    head: H,
    chain: C,
    pub(crate) stages: Vec<usize>,
    mid: PhantomData<fn() -> M>,
}

impl<I, H, M, C> std::fmt::Debug for Group<'_, I, H, M, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").field("stages", &self.stages).finish_non_exhaustive()
    }
}

impl<'b, I: Inputs> GroupStart<'b, I> {
    fn with<H, M>(self, index: usize, head: H) -> Group<'b, I, H, M, Head> {
        Group {
            builder: self.builder,
            scope: self.scope,
            inputs: self.inputs,
            head,
            chain: Head,
            stages: vec![index],
            mid: PhantomData,
        }
    }

    /// The head stage: `f` takes one element of each input.
    pub fn stage<O, F>(self, index: usize, max_evals: Option<u64>, f: F) -> Group<'b, I, Member<F, O>, O, Head>
    where
        F: for<'a> FnMut(I::Items<'a>) -> Flow<O> + Send + 'static,
    {
        let core = self.builder.core(index, max_evals);
        self.with(index, Member::new(core, f))
    }

    /// A head stage that also reads its own previous value, which others read too.
    pub fn stage_delay<O, F, K>(
        self,
        index: usize,
        max_evals: Option<u64>,
        init: O,
        keep: K,
        f: F,
    ) -> Group<'b, I, DelayMember<F, O, KeepCopy<K>>, O, Head>
    where
        F: for<'a> FnMut(I::Items<'a>, O) -> Flow<O> + Send + 'static,
        K: FnMut(&O) -> O + Send + 'static,
    {
        let core = self.builder.core(index, max_evals);
        self.with(index, DelayMember::new(core, init, KeepCopy(keep), f))
    }

    /// A head stage that reads its own previous value, which nobody else reads.
    pub fn stage_delay_only<O, F>(
        self,
        index: usize,
        max_evals: Option<u64>,
        init: O,
        f: F,
    ) -> Group<'b, I, DelayMember<F, O, KeepOnly>, (), Head>
    where
        F: for<'a> FnMut(I::Items<'a>, O) -> Flow<O> + Send + 'static,
    {
        let core = self.builder.core(index, max_evals);
        self.with(index, DelayMember::new(core, init, KeepOnly, f))
    }
}

impl<'b, I, H, M, C> Group<'b, I, H, M, C>
where
    I: Inputs,
    C: Chain<M>,
{
    fn link<N, O>(mut self, index: usize, member: N) -> Group<'b, I, H, M, Link<C, N, O>> {
        self.stages.push(index);
        Group {
            builder: self.builder,
            scope: self.scope,
            inputs: self.inputs,
            head: self.head,
            chain: Link::new(self.chain, member),
            stages: self.stages,
            mid: PhantomData,
        }
    }

    /// A stage fused after the last one: `f` takes its value.
    #[allow(clippy::type_complexity)]
    pub fn then<O, F>(self, index: usize, max_evals: Option<u64>, f: F) -> Group<'b, I, H, M, Link<C, Member<F, O>, O>>
    where
        F: FnMut((C::Out,)) -> Flow<O> + Send + 'static,
    {
        let core = self.builder.core(index, max_evals);
        self.link(index, Member::new(core, f))
    }

    /// A fused stage that also reads its own previous value, which others read too.
    #[allow(clippy::type_complexity)]
    pub fn then_delay<O, F, K>(
        self,
        index: usize,
        max_evals: Option<u64>,
        init: O,
        keep: K,
        f: F,
    ) -> Group<'b, I, H, M, Link<C, DelayMember<F, O, KeepCopy<K>>, O>>
    where
        F: FnMut((C::Out,), O) -> Flow<O> + Send + 'static,
        K: FnMut(&O) -> O + Send + 'static,
    {
        let core = self.builder.core(index, max_evals);
        self.link(index, DelayMember::new(core, init, KeepCopy(keep), f))
    }

    /// A fused stage that reads its own previous value, which nobody else reads.
    #[allow(clippy::type_complexity)]
    pub fn then_delay_only<O, F>(
        self,
        index: usize,
        max_evals: Option<u64>,
        init: O,
        f: F,
    ) -> Group<'b, I, H, M, Link<C, DelayMember<F, O, KeepOnly>, ()>>
    where
        F: FnMut((C::Out,), O) -> Flow<O> + Send + 'static,
    {
        let core = self.builder.core(index, max_evals);
        self.link(index, DelayMember::new(core, init, KeepOnly, f))
    }

    /// Ends the group: its last stage writes to `output`.
    pub fn to<W>(self, output: W)
    where
        I: 'static,
        H: for<'a> Step<I::Items<'a>, M> + 'static,
        M: 'static,
        C: 'static,
        W: Output<C::Out> + 'static,
    {
        let builder = self.builder;
        let head = self.stages[0];
        let mut placement = self.placement();
        if let Placement::Workers { mask, .. } = placement
            && mask & 1 == 0
        {
            self.scope_error(
                "other worker processes run only #[task] functions: make the stage one call of a #[task] \
                 function whose streaming argument is passed as it is, or scope it to worker 0"
                    .to_owned(),
            );
            placement = Placement::Any;
        }
        let node = Node::new(builder.region.clone(), self.stages.into_boxed_slice());
        let body = GroupBody {
            inputs: self.inputs,
            head: self.head,
            chain: self.chain,
            output,
            output_open: true,
            mid: PhantomData::<fn() -> M>,
        };
        let name = builder.region.stages[head].name.clone();
        let node = new_node(builder.rt, placement, name, node, body);
        builder.nodes.borrow_mut().push(node);
    }

    /// Where the group's scope puts it; a scope that cannot be met is the
    /// region's `Error::Scope` (and the group runs anywhere).
    pub(crate) fn placement(&self) -> Placement {
        match &self.scope {
            None => Placement::Any,
            Some(scope) => match self.builder.rt.place(Some(scope)) {
                Ok(placement) => placement,
                Err(reason) => {
                    self.scope_error(reason);
                    Placement::Any
                }
            },
        }
    }

    /// Records that the group's scope cannot be met, and why.
    pub(crate) fn scope_error(&self, reason: String) {
        let stage = &self.builder.region.stages[self.stages[0]];
        let scope = self.scope.as_ref().map_or_else(String::new, ToString::to_string);
        self.builder.error.borrow_mut().get_or_insert(Error::Scope(ScopeError {
            task: stage.id,
            name: stage.name.clone(),
            scope,
            reason,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_capacities_follow_the_element_size() {
        assert_eq!(default_capacity::<u64>(), 1024);
        assert_eq!(default_capacity::<[u8; 4096]>(), 16);
        assert_eq!(default_capacity::<[u8; 1 << 20]>(), 4);
        assert_eq!(default_capacity::<()>(), 1024);
    }
}
