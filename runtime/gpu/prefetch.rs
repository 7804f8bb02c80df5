//! Streaming GPU stages: uploading the next element while the current
//! one's kernels run.
//!
//! A `streaming!` stage scoped with `#[dirk(scope = Scope::gpu(i))]` is a
//! node placed on GPU `i`: its turns run on that GPU's runner thread (a
//! woken or yielding node is queued there again), so a `#[task(gpu)]`
//! function it calls gets the runner's device context inline. Kernel
//! launches only queue work, so an iteration ends long before its kernels
//! do. After each iteration such a node shows [`Prefetch::offer`] the next
//! element of each input, if one is already in the ring; an element that
//! is a [`GpuVec`] not yet on this GPU (on the host, or on another GPU) is
//! uploaded then, queued behind the kernels just launched, so the copy
//! overlaps them instead of starting when the next iteration needs it.
//! The next iteration finds the data resident and uploads nothing; each
//! prefetch is counted in [`Transfers::prefetches`](super::Transfers).
//!
//! Recognising a `GpuVec`: elements are of any type, and stable Rust has no
//! specialisation, so the rings lend the next element as `&dyn Any`
//! (`Input::upcoming`, in `stream/edge.rs`) and this module compares its
//! `TypeId` with `GpuVec<T>` for each plain element type kernels use
//! (`f32`, `f64` and the 8- to 64-bit integers). That is sound (a checked
//! downcast), costs a handful of integer compares per element on GPU
//! nodes only, and needs nothing from the stage builder: a hook emitted by
//! `streaming!` could not know whether a scope expression names a GPU, nor
//! name the element type without the same trick. Other element types (a
//! tuple or struct holding a `GpuVec`) are not prefetched; they are still
//! uploaded, when the kernel takes them.
//!
//! A prefetch that fails (the device refuses the copy) is dropped: the
//! stage's own use of the element meets the same failure and fails the
//! region with it, naming the stage.

use std::any::Any;
use std::sync::Arc;

use super::GpuVec;
use super::processor::{Runner, current_runner};
use crate::sched::Placement;

/// The look-ahead of a node running on a GPU's runner.
pub(crate) struct Prefetch {
    runner: Arc<Runner>,
}

impl Prefetch {
    /// For a node with `placement`, run by the current thread: `Some` when
    /// that is the runner of the GPU it is placed on.
    pub(crate) fn on(placement: Placement) -> Option<Prefetch> {
        let Placement::Gpu(index) = placement else { return None };
        let runner = current_runner()?;
        (runner.index == index).then_some(Prefetch { runner })
    }

    /// Starts uploading `next` to this GPU if it is a `GpuVec` not there yet.
    pub(crate) fn offer(&self, next: &dyn Any) {
        macro_rules! try_elements {
            ($($t:ty),+) => {
                $(if let Some(vec) = next.downcast_ref::<GpuVec<$t>>() {
                    return self.upload(vec);
                })+
            };
        }
        try_elements!(f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);
    }

    fn upload<T: super::Element>(&self, vec: &GpuVec<T>) {
        if let Ok(true) = vec.prefetch_to(&self.runner) {
            self.runner.counters.prefetched();
        }
    }
}
