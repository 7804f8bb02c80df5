//! `streaming!`: placeholder while the stages are written.
use proc_macro2::TokenStream;
/// Expands `streaming! { .. }`.
pub fn expand_streaming(_input: TokenStream) -> TokenStream {
    quote::quote!(compile_error!("not yet"))
}
