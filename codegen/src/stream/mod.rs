//! `streaming!`: parse the block, build its graph, check it, plan it
//! (fusion, rings), emit the glue that wires it with the runtime.
//!
//! Each stage stops the expansion when it found errors, so a user sees
//! every mistake of one kind at once and no follow-on noise; a failed
//! expansion is its `compile_error!`s plus a placeholder of any type.

mod checks;
mod emit;
mod graph;
mod parse;
mod plan;
mod remote;

use proc_macro2::TokenStream;
use quote::quote;

use crate::Diagnostics;

/// Expands `streaming! { .. }` into code that builds and starts the region
/// and evaluates to its `Stream<T>`.
pub fn expand_streaming(input: TokenStream) -> TokenStream {
    let mut diagnostics = Diagnostics::new();
    match compile(input, &mut diagnostics) {
        Some(tokens) if !diagnostics.has_errors() => tokens,
        _ => {
            let errors = diagnostics.into_tokens();
            quote! {{ #errors ::dirk::__private::placeholder() }}
        }
    }
}

fn compile(input: TokenStream, diagnostics: &mut Diagnostics) -> Option<TokenStream> {
    let block = parse::parse(input, diagnostics)?;
    if diagnostics.has_errors() {
        return None;
    }
    let graph = graph::build(block, diagnostics);
    if diagnostics.has_errors() {
        return None;
    }
    checks::check(&graph, diagnostics);
    if diagnostics.has_errors() {
        return None;
    }
    let plan = plan::plan(&graph);
    Some(emit::emit(&graph, &plan))
}

/// The plan of a block as DOT, for tests and for looking at what the
/// macro made of a block.
#[cfg(test)]
pub(crate) fn dot(input: TokenStream) -> Result<String, Vec<String>> {
    let mut diagnostics = Diagnostics::new();
    let result = (|| {
        let block = parse::parse(input, &mut diagnostics)?;
        let graph = graph::build(block, &mut diagnostics);
        checks::check(&graph, &mut diagnostics);
        if diagnostics.has_errors() {
            return None;
        }
        Some(plan::to_dot(&graph, &plan::plan(&graph)))
    })();
    let messages = diagnostics.messages();
    drop(diagnostics.into_tokens());
    result.ok_or(messages)
}

#[cfg(test)]
mod tests;
