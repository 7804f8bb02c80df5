//! Procedural macros of dirk. Each converts its tokens and calls the
//! matching `dirk_codegen::expand_*`; the compiler behind them lives in
//! `dirk-codegen`. Use them through the `dirk` crate.

#![forbid(unsafe_code)]

use proc_macro::TokenStream;

/// Spawns a call as a task: `spawn!(opt = value, .., f(args..))` returns a
/// `Task<R>` at once. See the `dirk` crate's documentation.
#[proc_macro]
pub fn spawn(input: TokenStream) -> TokenStream {
    dirk_codegen::expand_spawn(input.into()).into()
}

/// A streaming region: every `let` in the block is a stage called once per
/// iteration, connected by the names it uses. Returns a `Stream<T>` of the
/// tail expression. See the `dirk` crate's documentation.
#[proc_macro]
pub fn streaming(input: TokenStream) -> TokenStream {
    dirk_codegen::expand_streaming(input.into()).into()
}

/// Runs the calls of a block as tasks ordered by the data they read and
/// write (`In`, `Out`, `InOut`). See `dirk::datadeps`.
#[proc_macro]
pub fn datadeps(input: TokenStream) -> TokenStream {
    dirk_codegen::expand_datadeps(input.into()).into()
}

/// Marks a function as a dirk task. `#[task(gpu)]` marks a GPU task, whose
/// first parameter (`gpu: &Gpu`, the device context) callers do not pass.
/// See the `dirk` crate's documentation.
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    dirk_codegen::expand_task(attr.into(), item.into()).into()
}

/// The entry point of a dirk program.
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    dirk_codegen::expand_main(attr.into(), item.into()).into()
}

/// A test that runs inside dirk.
#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    dirk_codegen::expand_test(attr.into(), item.into()).into()
}
