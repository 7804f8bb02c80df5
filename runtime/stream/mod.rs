//! Streaming: the runtime behind `streaming!`.
//!
//! A `streaming!` block is compiled (by `dirk-codegen`) into a plan: its
//! statements are *stages*; linear chains of stages that share a scope are
//! fused into one *group* run as one loop; groups are connected by bounded
//! rings. At run time each group is a [`node`] that runs cooperatively in
//! turns on the runtime's worker threads, parking on an empty input or a
//! full output until the neighbour on that edge wakes it, so any graph runs
//! on one thread and an idle region uses no CPU.
//!
//! - [`edge`]: the reader/writer contract every edge implements, and the
//!   wake-up protocol; [`spsc`] and [`broadcast`] are the in-process rings;
//!   [`delay`] the feedback edges; [`inputs`] a head stage's input tuple.
//! - [`stage`]: one statement's books (`max_evals`, `finish_stream`,
//!   allocations) and fused chains.
//! - [`node`]: turns, parking and waking, ending.
//! - [`region`]: how a region stops (failure, cancel, teardown) and the
//!   builder the emitted code calls; [`handle`]: [`Stream<T>`].
//!
//! A stage scoped to another worker process runs there; its node in this
//! process is the cluster's proxy (`cluster::proxy`), a [`node`] like any
//! other.

pub(crate) mod broadcast;
pub(crate) mod delay;
pub(crate) mod edge;
pub(crate) mod handle;
pub(crate) mod inputs;
pub(crate) mod node;
pub(crate) mod region;
pub(crate) mod spsc;
pub(crate) mod stage;

pub use self::handle::{Iter, StageStats, Stats, Stream};
pub use self::stage::finish_stream;

/// What the code emitted by `streaming!` calls. Not a public API.
#[doc(hidden)]
pub(crate) mod glue {
    pub use super::broadcast::{BroadcastReader, BroadcastWriter};
    pub use super::delay::{Delayed, delayed};
    pub use super::edge::{Cloned, Discard, Input, Output, Peek, Poll, Space, Take, Waker, cloned};
    pub use super::inputs::{Inputs, Polled};
    pub use super::node::{GroupBody, NodeRef};
    pub use super::region::{Builder, Group, GroupStart, RegionOptions};
    pub use super::spsc::{SpscReader, SpscWriter};
    pub use super::stage::{
        Chain, Cx, DelayMember, Flow, Head, Keep, KeepCopy, KeepOnly, Link, Member, StageOutcome, Step,
    };
    pub use crate::transport::wire::BlobWriter;
}
