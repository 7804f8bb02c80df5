//! How `spawn!` arguments meet GPU tasks: the [`PassAs`] conversions that
//! move data between host and device at the task boundary, and
//! [`Task::fetch_vec`].
//!
//! - host to GPU task: a `Vec<T>` value or `Task<Vec<T>>` given where a
//!   `GpuVec<T>` is expected becomes a host-resident `GpuVec` (no copy yet:
//!   the kernel that takes it uploads it);
//! - GPU result to CPU task: a `Task<GpuVec<T>>` given where `&[T]` or
//!   `Vec<T>` is expected is downloaded (once: later readers share the host
//!   copy);
//! - GPU result to GPU task: `GpuVec<T>` or `&GpuVec<T>` from a
//!   `Task<GpuVec<T>>` is the handle itself, by the generic conversions.
//!
//! A download that fails inside a task fails the task with `Error::Gpu`.

use super::task::fail;
use super::{Element, GpuVec};
use crate::error::Error;
use crate::task::Task;
use crate::task::slots::{PassAs, Value};

#[diagnostic::do_not_recommend]
impl<'a, T: Element> PassAs<'a, GpuVec<T>> for Value<Vec<T>> {
    fn provide(&'a mut self) -> GpuVec<T> {
        GpuVec::from(self.take())
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T: Element> PassAs<'a, GpuVec<T>> for Task<Vec<T>> {
    fn provide(&'a mut self) -> GpuVec<T> {
        // Moved when this is the last reader of the result, cloned otherwise.
        GpuVec::from(<Self as PassAs<'a, Vec<T>>>::provide(self))
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T: Element> PassAs<'a, &'a [T]> for Task<GpuVec<T>> {
    fn provide(&'a mut self) -> &'a [T] {
        succeeded(self).host().unwrap_or_else(|e| fail(e))
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T: Element> PassAs<'a, Vec<T>> for Task<GpuVec<T>> {
    fn provide(&'a mut self) -> Vec<T> {
        succeeded(self).to_vec().unwrap_or_else(|e| fail(e))
    }
}

/// The result of an input task, which has succeeded when its consumer runs.
fn succeeded<T>(task: &Task<T>) -> &T {
    match task.result() {
        Some(Ok(value)) => value,
        _ => unreachable!("a task runs only after all its inputs succeeded"),
    }
}

impl<T: Element> Task<GpuVec<T>> {
    /// Waits for the task and downloads its result to the host (no copy
    /// when the host already has it).
    ///
    /// ```
    /// use dirk::prelude::*;
    /// use dirk::gpu::{Gpu, GpuVec};
    ///
    /// #[task(gpu)]
    /// fn resident(gpu: &Gpu, xs: Vec<i32>) -> GpuVec<i32> {
    ///     gpu.upload(&xs)
    /// }
    ///
    /// assert_eq!(spawn!(resident(vec![7, 8])).fetch_vec()?, [7, 8]);
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn fetch_vec(&self) -> Result<Vec<T>, Error> {
        self.wait()?;
        succeeded(self).to_vec()
    }
}
