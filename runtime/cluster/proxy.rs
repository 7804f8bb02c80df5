//! Stages in other worker processes: the proxy node that stands for a
//! stage scoped to another worker, and the remote form `streaming!` emits
//! beside every stage that is one call of a function.
//!
//! A stage `#[dirk(scope = Scope::worker(1))] let y = f(x, k);` is compiled
//! twice: as the usual closure (run when the scope resolves to this
//! process) and as a [`RemoteForm`]: `f`'s path (the registry key of a
//! `#[task]`), the constants (`k`) archived once, where the streaming
//! argument goes, how to archive an element, how to rebuild a result, and
//! what `?` does with it. When the group's scope names only other workers,
//! [`RemoteGroup::to`] opens a [`StageLink`] (see
//! [`cluster::stream`](super::stream) for the protocol) and the
//! group's node becomes a [`Proxy`] in this process.
//!
//! The proxy's turn does two things until neither can go on: it moves
//! results from the ring back to the stage's output (through the stage's
//! books: `max_evals`, `?` on `None`, elements counted), and it archives
//! input elements straight into the ring to the worker. Blocked on both, it
//! parks on every edge it waits for (its input, its output, the two rings);
//! a doorbell frame from the worker or progress on a local edge wakes it.
//! `max_evals` stops the sending after that many elements; results still
//! come back in order, and the last one ends the stage as locally.
//! Endings map to the region's errors: a panic in the worker to
//! `Error::Panicked` naming the stage, a lost worker to `Error::WorkerLost`,
//! a record or result that does not validate to `Error::Codec`.

use std::marker::PhantomData;

use rkyv::util::AlignedVec;

use super::stream::{Gone, StageLink};
use crate::Error;
use crate::sched::Placement;
use crate::stream::edge::{Output, Space, Waker};
use crate::stream::inputs::{Inputs, Polled};
use crate::stream::node::{Ahead, Blocked, Node, Turn, TurnEnd, new_node};
use crate::stream::region::{Group, Region};
use crate::stream::stage::{Core, Cx, Flow};
use crate::task::registry;
use crate::transport::records::Kind;
use crate::transport::wire::{self, BlobWriter, Wire};

/// What `streaming!` knows of a stage that is one call `f(..)`.
pub struct RemoteForm<D, P> {
    /// `f`'s path, as `type_name_of_val` spells it.
    pub path: &'static str,
    /// The constant arguments, archived, in order (the streaming one left out).
    pub consts: Vec<Result<AlignedVec<16>, Error>>,
    /// The position of the streaming argument.
    pub slot: usize,
    /// The stage's `max_evals`.
    pub max_evals: Option<u64>,
    /// Rebuilds a result, when the result type archives.
    pub decode: Option<D>,
    /// What the stage does with a result (`?`, or nothing).
    pub post: P,
}

impl<D, P> std::fmt::Debug for RemoteForm<D, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteForm").field("path", &self.path).field("slot", &self.slot).finish_non_exhaustive()
    }
}

/// A group with the remote form of its (single) stage.
pub struct RemoteGroup<'b, I, H, M, C, E, D, P> {
    group: Group<'b, I, H, M, C>,
    form: RemoteForm<D, P>,
    encode: E,
}

impl<I, H, M, C, E, D, P> std::fmt::Debug for RemoteGroup<'_, I, H, M, C, E, D, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteGroup").field("form", &self.form).finish_non_exhaustive()
    }
}

impl<'b, I: Inputs, H, M, C: crate::stream::stage::Chain<M>> Group<'b, I, H, M, C> {
    /// Adds the stage's remote form, used when its scope names other
    /// workers, and `encode`, which archives one input element.
    #[allow(clippy::type_complexity)]
    pub fn remote<E, R, P>(
        self,
        form: RemoteForm<fn(&[u8]) -> Result<R, Error>, P>,
        encode: E,
    ) -> RemoteGroup<'b, I, H, M, C, E, fn(&[u8]) -> Result<R, Error>, P>
    where
        E: for<'a, 'r> FnMut(&'r I::Items<'a>, BlobWriter) -> Result<BlobWriter, Error> + Send + 'static,
        P: FnMut(R) -> Flow<C::Out> + Send + 'static,
    {
        RemoteGroup { group: self, form, encode }
    }
}

impl<'b, I, H, M, C, E, R, P> RemoteGroup<'b, I, H, M, C, E, fn(&[u8]) -> Result<R, Error>, P>
where
    I: Inputs + 'static,
    H: for<'a> crate::stream::stage::Step<I::Items<'a>, M> + 'static,
    M: 'static,
    C: crate::stream::stage::Chain<M> + 'static,
    C::Out: 'static,
    E: for<'a, 'r> FnMut(&'r I::Items<'a>, BlobWriter) -> Result<BlobWriter, Error> + Send + 'static,
    R: 'static,
    P: FnMut(R) -> Flow<C::Out> + Send + 'static,
{
    /// Ends the group: its stage writes to `output`, here or, through a
    /// proxy, from the worker its scope names.
    pub fn to<W: Output<C::Out> + 'static>(self, output: W) {
        let RemoteGroup { group, form, encode } = self;
        let (worker, thread) = match group.placement() {
            Placement::Workers { mask, thread } if mask & 1 == 0 => (mask.trailing_zeros(), thread),
            _ => return group.to(output),
        };
        let builder = group.builder;
        let index = group.stages[0];
        let cluster = super::of(builder.rt);
        let ready = (|| {
            if group.stages.len() > 1 {
                return Err(
                    "a stage on another worker runs alone: give the stages fused with it their own scope".into()
                );
            }
            let entry = registry::by_path(form.path).filter(|e| e.glue.remote).ok_or_else(|| {
                format!(
                    "`{}` is not a #[task] whose parameters and result cross processes: other worker processes \
                     run only such functions",
                    form.path.rsplit("::").next().unwrap_or(form.path)
                )
            })?;
            let decode = form.decode.ok_or("the stage's result type does not archive (derive rkyv's traits)")?;
            let consts = form.consts.into_iter().collect::<Result<Vec<_>, Error>>().map_err(|e| e.to_string())?;
            let cluster = cluster.ok_or("the runtime has no worker processes")?;
            Ok((entry, decode, consts, cluster))
        })();
        let (entry, decode, consts, cluster) = match ready {
            Ok(r) => r,
            Err(reason) => {
                group.scope_error(reason);
                return group.to(output);
            }
        };
        let link = match StageLink::open(cluster, worker, thread.map(u32::from), entry, &consts, form.slot) {
            Ok(link) => link,
            Err(e) => {
                builder.error.borrow_mut().get_or_insert(e);
                return group.to(output);
            }
        };
        let core = builder.core(index, form.max_evals);
        let max = form.max_evals.unwrap_or(u64::MAX);
        let proxy = Proxy {
            inputs: group.inputs,
            encode,
            decode,
            post: form.post,
            output,
            core,
            link,
            index,
            output_open: true,
            sending: true,
            need_end: false,
            sent: 0,
            max,
            pending: None,
            hint: 64,
            blocked_input: None,
            out_full: false,
            out: PhantomData,
        };
        let node = Node::new(builder.region.clone(), group.stages.into_boxed_slice());
        let name = builder.region.stages[index].name.clone();
        let node = new_node(builder.rt, Placement::Any, name, node, proxy);
        builder.nodes.borrow_mut().push(node);
    }
}

/// The node of a stage running on another worker.
struct Proxy<I, E, R, P, W, O> {
    inputs: I,
    encode: E,
    decode: fn(&[u8]) -> Result<R, Error>,
    post: P,
    output: W,
    core: Core,
    link: StageLink,
    index: usize,
    output_open: bool,
    /// Elements still go to the worker.
    sending: bool,
    /// The `End` record is owed.
    need_end: bool,
    sent: u64,
    max: u64,
    /// An element that did not fit the ring yet.
    pending: Option<AlignedVec<16>>,
    /// The size of the last element, to look for room for the next.
    hint: usize,
    blocked_input: Option<usize>,
    out_full: bool,
    out: PhantomData<fn() -> O>,
}

/// What one look at the results gave.
enum Took {
    Nothing,
    One,
    Stop(TurnEnd),
}

impl<I, E, R, P, W, O> Proxy<I, E, R, P, W, O>
where
    I: Inputs,
    E: for<'a, 'r> FnMut(&'r I::Items<'a>, BlobWriter) -> Result<BlobWriter, Error>,
    P: FnMut(R) -> Flow<O>,
    W: Output<O>,
{
    fn fail(&self, region: &Region, error: Error) -> TurnEnd {
        region.fail(error);
        TurnEnd::Done
    }

    fn codec(&self, region: &Region, message: &str) -> Error {
        let stage = &region.stages[self.index];
        Error::Codec(format!("stage `{}` on worker {}: {message}", stage.name, self.link.worker))
    }

    fn close_output(&mut self) {
        if self.output_open {
            self.output_open = false;
            self.output.close();
        }
        self.sending = false;
    }

    /// One result from the worker to the output.
    fn take(&mut self, cx: &mut Cx<'_>) -> Took {
        let region = cx.region;
        let (kind, value) = match self.link.from_worker.peek() {
            Ok(None) => return Took::Nothing,
            Ok(Some((Kind::Value, bytes))) => (Kind::Value, Some((self.decode)(bytes))),
            Ok(Some((kind, bytes))) => {
                let message = String::from_utf8_lossy(bytes).into_owned();
                return Took::Stop(match kind {
                    Kind::End => {
                        self.link.from_worker.advance();
                        self.core.end(cx);
                        self.close_output();
                        TurnEnd::Done
                    }
                    Kind::Panicked => {
                        region.stage_panicked(self.index, &message);
                        TurnEnd::Done
                    }
                    _ => self.fail(region, self.codec(region, &message)),
                });
            }
            Err(e) => return Took::Stop(self.fail(region, self.codec(region, &e.to_string()))),
        };
        debug_assert_eq!(kind, Kind::Value);
        let value = match value {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Took::Stop(self.fail(region, self.codec(region, &e.to_string()))),
            None => return Took::Nothing,
        };
        self.link.from_worker.advance();
        let post = &mut self.post;
        match self.core.run(cx, || post(value)) {
            Flow::Item(v) => self.output.push(v),
            Flow::Last(v) => {
                self.output.push(v);
                self.close_output();
                return Took::Stop(TurnEnd::Done);
            }
            Flow::End => {
                self.close_output();
                return Took::Stop(TurnEnd::Done);
            }
            Flow::Skip => {}
            Flow::Fail(message) => return Took::Stop(TurnEnd::Failed(message)),
        }
        Took::One
    }

    /// One element (or the end) to the worker; `true` on progress.
    fn send(&mut self) -> Result<bool, Error> {
        if let Some(bytes) = &self.pending {
            if !self.link.to_worker.push(Kind::Value, bytes) {
                return Ok(false);
            }
            self.pending = None;
            return Ok(true);
        }
        if self.need_end {
            if self.link.to_worker.push(Kind::End, &[]) {
                self.need_end = false;
                return Ok(true);
            }
            return Ok(false);
        }
        if !self.sending {
            return Ok(false);
        }
        match self.inputs.poll() {
            Polled::Ready => {}
            Polled::Empty(i) => {
                self.blocked_input = Some(i);
                return Ok(false);
            }
            Polled::Closed => {
                self.sending = false;
                self.need_end = true;
                return self.send();
            }
        }
        let items = self.inputs.get();
        let encode = &mut self.encode;
        let direct = self.link.to_worker.push_with(self.hint, |w| encode(&items, w))?;
        if !direct {
            let bytes =
                (self.encode)(&items, BlobWriter::growable())?.into_vec().expect("a growable writer keeps its buffer");
            if bytes.len() > self.link.to_worker.max_payload() {
                return Err(Error::Transport(format!(
                    "an element of {} bytes is larger than the stage's ring ({} bytes)",
                    bytes.len(),
                    self.link.to_worker.max_payload()
                )));
            }
            self.hint = bytes.len();
            self.pending = Some(bytes);
        }
        drop(items);
        self.inputs.advance();
        self.sent += 1;
        if self.sent >= self.max {
            self.sending = false;
            self.need_end = true;
        }
        if self.pending.is_some() {
            return self.send().map(|_| true);
        }
        Ok(true)
    }
}

impl<I, E, R, P, W, O> Turn for Proxy<I, E, R, P, W, O>
where
    I: Inputs + 'static,
    E: for<'a, 'r> FnMut(&'r I::Items<'a>, BlobWriter) -> Result<BlobWriter, Error> + Send + 'static,
    R: 'static,
    P: FnMut(R) -> Flow<O> + Send + 'static,
    W: Output<O> + 'static,
    O: 'static,
{
    /// Its flush rings the worker's bell when the worker waits: once a turn.
    const FLUSH_WITHIN_TURN: bool = false;

    /// A proxy runs on process 0's threads, never on a GPU: `ahead` is unused.
    fn turn(&mut self, cx: &mut Cx<'_>, budget: u32, _ahead: Ahead<'_>) -> TurnEnd {
        let region = cx.region;
        for _ in 0..budget {
            if region.is_cancelled() {
                return TurnEnd::Done;
            }
            if let Some(gone) = self.link.gone() {
                let stage = &region.stages[self.index];
                let error = match gone {
                    Gone::Lost(worker) => Error::WorkerLost { worker, task: stage.id },
                    Gone::Failed(message) => self.codec(region, &message),
                };
                return self.fail(region, error);
            }
            let mut progress = false;
            self.out_full = false;
            self.blocked_input = None;
            if self.output_open {
                match self.output.reserve() {
                    Space::Ready => match self.take(cx) {
                        Took::Nothing => {}
                        Took::One => progress = true,
                        Took::Stop(end) => return end,
                    },
                    Space::Full => self.out_full = true,
                    Space::Closed if region.teardown => return TurnEnd::Done,
                    Space::Closed => self.output_open = false,
                }
            } else if !self.sending && !self.need_end && self.pending.is_none() {
                return TurnEnd::Done;
            } else if self.link.from_worker.peek().ok().flatten().is_some() {
                // Nobody reads the results (`teardown = false`): drop them.
                self.link.from_worker.advance();
                progress = true;
            }
            match self.send() {
                Ok(sent) => progress |= sent,
                Err(e) => return self.fail(region, e),
            }
            if !progress {
                // Several edges at once: `park` parks on each.
                return TurnEnd::Blocked(Blocked::Output);
            }
        }
        TurnEnd::Budget
    }

    fn flush(&mut self) {
        self.output.flush();
        self.inputs.release();
        if self.link.to_worker.take_reader_waiting() | self.link.from_worker.take_writer_waiting() {
            self.link.bell();
        }
    }

    fn park(&mut self, _: Blocked) -> bool {
        if self.link.gone().is_some() {
            return false;
        }
        let mut parked = true;
        if let Some(bytes) = &self.pending {
            parked &= self.link.to_worker.park(bytes.len());
        } else if self.need_end {
            parked &= self.link.to_worker.park(0);
        } else if let (true, Some(i)) = (self.sending, self.blocked_input) {
            parked &= self.inputs.park(i);
        }
        if self.out_full {
            parked &= self.output.park();
        } else {
            parked &= self.link.from_worker.park();
        }
        parked
    }

    fn ready(&mut self, _: Blocked) -> bool {
        self.link.from_worker.ready() || (self.sending && !matches!(self.inputs.poll(), Polled::Empty(_)))
    }

    fn publish(&mut self, region: &Region) {
        self.core.publish_to(region);
    }

    fn finish(&mut self, cx: &Cx<'_>) {
        self.core.end(cx);
        self.close_output();
        self.output.flush();
        self.inputs.close();
        self.link.unbind();
    }

    fn bind(&mut self, waker: &Waker) {
        self.inputs.bind(waker);
        self.output.bind(waker);
        self.link.bind(waker);
    }
}

/// Archives a value or the value behind a reference, chosen at the
/// `streaming!` site by autoref: `(&&&ArchiveProbe(&v)).archive(w)`.
#[derive(Debug)]
pub struct ArchiveProbe<'a, T>(pub &'a T);

/// A reference to a value that archives: the value is archived.
pub trait ArchiveDeref {
    /// Archives into `w`.
    fn archive(&self, w: BlobWriter) -> Result<BlobWriter, Error>;
}

impl<T: Wire> ArchiveDeref for &&ArchiveProbe<'_, &T> {
    fn archive(&self, w: BlobWriter) -> Result<BlobWriter, Error> {
        wire::serialize_into(*self.0, w)
    }
}

/// A value that archives.
pub trait ArchiveValue {
    /// Archives into `w`.
    fn archive(&self, w: BlobWriter) -> Result<BlobWriter, Error>;
}

impl<T: Wire> ArchiveValue for &ArchiveProbe<'_, T> {
    fn archive(&self, w: BlobWriter) -> Result<BlobWriter, Error> {
        wire::serialize_into(self.0, w)
    }
}

/// A value that does not archive: it cannot go to another worker.
pub trait ArchiveNone {
    /// Always an error.
    fn archive(&self, w: BlobWriter) -> Result<BlobWriter, Error>;
}

impl<T> ArchiveNone for ArchiveProbe<'_, T> {
    fn archive(&self, _: BlobWriter) -> Result<BlobWriter, Error> {
        Err(Error::Codec(format!("a `{}` does not archive", std::any::type_name::<T>())))
    }
}

/// Archives a constant argument once.
pub fn archived_const(w: Result<BlobWriter, Error>) -> Result<AlignedVec<16>, Error> {
    Ok(w?.into_vec().expect("a growable writer keeps its buffer"))
}

/// A new writer for [`archived_const`].
pub fn const_writer() -> BlobWriter {
    BlobWriter::growable()
}

/// The result type of a function item called with arguments `A` (a tuple).
pub trait Returns<A> {
    /// What it returns.
    type Out;
}

macro_rules! returns {
    ($($a:ident),*) => {
        impl<F, Res, $($a),*> Returns<($($a,)*)> for F where F: Fn($($a),*) -> Res {
            type Out = Res;
        }
    };
}
returns!();
returns!(A1);
returns!(A1, A2);
returns!(A1, A2, A3);
returns!(A1, A2, A3, A4);
returns!(A1, A2, A3, A4, A5);
returns!(A1, A2, A3, A4, A5, A6);

/// Probes the result type of `f` called with `A`.
pub fn result_probe<A, F: Returns<A>>(_: &F) -> DecodeProbe<F::Out> {
    DecodeProbe(PhantomData)
}

/// Rebuilds a value of type `R` from its archive.
pub type Decoder<R> = fn(&[u8]) -> Result<R, Error>;

/// Whether a result type can be rebuilt from an archive.
#[derive(Debug)]
pub struct DecodeProbe<R>(PhantomData<fn() -> R>);

/// A result that archives.
pub trait Decodes<R> {
    /// Its decoder.
    fn decoder(&self) -> Option<Decoder<R>>;
}

impl<R: Wire> Decodes<R> for &DecodeProbe<R> {
    fn decoder(&self) -> Option<Decoder<R>> {
        Some(wire::decode::<R>)
    }
}

/// A result that does not archive.
pub trait NoDecode<R> {
    /// None.
    fn decoder(&self) -> Option<Decoder<R>>;
}

impl<R> NoDecode<R> for DecodeProbe<R> {
    fn decoder(&self) -> Option<Decoder<R>> {
        None
    }
}
