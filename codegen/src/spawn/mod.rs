//! `spawn!`: parse the options and the call, check them, emit the spawn.

mod emit;
pub(crate) mod parse;

use proc_macro2::TokenStream;

use crate::Diagnostics;

/// Expands `spawn!(options.., f(args..))` into a call of the runtime's
/// spawn glue that returns a `Task<R>`.
pub fn expand_spawn(input: TokenStream) -> TokenStream {
    let mut diagnostics = Diagnostics::new();
    let parsed = parse::parse(input, &mut diagnostics);
    match parsed {
        Some(spawn) if !diagnostics.has_errors() => emit::emit(&spawn),
        _ => {
            let errors = diagnostics.into_tokens();
            // A placeholder of any type keeps the user's surrounding code
            // free of follow-on errors.
            quote::quote! {{ #errors ::dirk::__private::placeholder() }}
        }
    }
}

#[cfg(test)]
mod tests;
