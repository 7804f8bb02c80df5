//! `datadeps!`: parse the block, build its access graph, check it, plan the
//! order of its tasks, emit the region.

mod checks;
mod emit;
mod graph;
mod parse;
mod plan;

use proc_macro2::TokenStream;

use crate::Diagnostics;

/// Expands `datadeps! { .. }` into a region that runs the block's task
/// calls as tasks and returns `Result<R, dirk::Error>`.
pub fn expand_datadeps(input: TokenStream) -> TokenStream {
    let mut diagnostics = Diagnostics::new();
    let Some(block) = parse::parse(input, &mut diagnostics) else {
        return emit::failed(diagnostics.into_tokens());
    };
    if diagnostics.has_errors() {
        return emit::failed(diagnostics.into_tokens());
    }
    let graph = graph::Graph::build(&block);
    checks::check(&block, &graph, &mut diagnostics);
    if diagnostics.has_errors() {
        return emit::failed(diagnostics.into_tokens());
    }
    let plan = plan::plan(&block, &graph);
    emit::emit(block, &graph, &plan)
}

#[cfg(test)]
mod tests;
