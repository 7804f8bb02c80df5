//! `datadeps!` (in progress).
use proc_macro2::TokenStream;
/// Expands `datadeps! { .. }`.
pub fn expand_datadeps(_input: TokenStream) -> TokenStream {
    quote::quote!(compile_error!("wip"))
}
