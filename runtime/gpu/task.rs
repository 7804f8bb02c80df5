//! What a `#[task(gpu)]` function's body becomes: `#[task(gpu)] fn f(gpu:
//! &Gpu, x: X) -> R { body }` is emitted as
//!
//! ```text
//! fn f(x: X) -> R { ::dirk::__private::gpu_task(move |gpu: &Gpu| -> R { body }) }
//! ```
//!
//! so callers pass only `x`, and the body gets the context of the GPU it
//! runs on: the task's own GPU when it was placed with `Scope::gpu(i)` (its
//! body already runs on that runner), else the least busy one. A failure
//! fails the running task with `Error::Gpu` naming it; outside a task (a
//! direct call) it panics with the same message.

use std::panic::resume_unwind;

use super::Gpu;
use super::context::{with_any_gpu, with_gpu};
use crate::error::Error;
use crate::exec::context;
use crate::sched::Placement;

/// Runs a GPU task's body with a device context. Emitted by `#[task(gpu)]`.
pub fn gpu_task<R, F>(body: F) -> R
where
    F: FnOnce(&Gpu) -> R + Send,
    R: Send,
{
    let placed = context::with_task(|task| match task.map(|t| t.placement) {
        Some(Placement::Gpu(index)) => Some(index),
        _ => None,
    });
    let outcome = match placed {
        Some(index) => with_gpu(index, body),
        None => with_any_gpu(body),
    };
    outcome.unwrap_or_else(|error| fail(error))
}

/// Fails the running task with `error`, naming the task; outside a task,
/// panics with its message.
#[cold]
pub(crate) fn fail(error: Error) -> ! {
    let named = context::with_task(|task| {
        task.map(|t| match &error {
            Error::Gpu(message) => Error::Gpu(format!("task {} `{}`: {message}", t.id, t.name)),
            _ => error.clone(),
        })
    });
    match named {
        // The task's runner turns an `Error` payload into the task's failure.
        Some(error) => resume_unwind(Box::new(error)),
        None => panic!("{error}"),
    }
}
