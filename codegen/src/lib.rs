//! dirk's macro compiler: turns the tokens of `spawn!`, `streaming!`, `datadeps!`, `#[task]` and the
//! entry-point attributes into the code that drives dirk's runtime.
//!
//! Each macro has one `expand_*` function here; `dirk-macros` only converts
//! token streams and calls it. Every stage collects its errors in a
//! [`Diagnostics`] sink, and a failed expansion still yields a well-typed
//! placeholder beside its `compile_error!`s, so one mistake gives one
//! message.

#![forbid(unsafe_code)]

mod datadeps;
mod diagnostics;
mod entry;
mod gpu_task;
mod spawn;
mod stream;
mod task;

pub use datadeps::expand_datadeps;
pub use diagnostics::Diagnostics;
pub use entry::{expand_main, expand_test};
pub use spawn::expand_spawn;
pub use stream::expand_streaming;
pub use task::expand_task;
