//! The kernels dirk itself launches.

use cubecl::prelude::*;
use cubecl::server::Handle;

use super::{Element, Gpu};

#[cube(launch)]
fn copy_elements<E: Scalar>(source: &[E], target: &mut [E]) {
    let i = ABSOLUTE_POS;
    if i < target.len() {
        target[i] = source[i];
    }
}

/// Queues a copy of `len` elements of `T` from `source` to `target` on
/// `gpu`'s device.
pub(crate) fn copy<T: Element>(gpu: &Gpu, source: &Handle, target: &Handle, len: usize) {
    if len == 0 {
        return;
    }
    let (count, dim) = gpu.grid(len);
    // SAFETY: both buffers hold `len` elements of `T` (the caller's).
    let (source, target) =
        unsafe { (BufferArg::from_raw_parts(source.clone(), len), BufferArg::from_raw_parts(target.clone(), len)) };
    copy_elements::launch::<T>(gpu.client(), count, dim, source, target);
}
