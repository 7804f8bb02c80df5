//! `#[dirk::main]` and `#[dirk::test]`: the entry points of programs and
//! tests. The body runs through the runtime's entry function, which is
//! where a process started as a dirk worker takes its worker role instead.

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;

use crate::Diagnostics;

/// Expands `#[dirk::main]` on `fn main`.
pub fn expand_main(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, "main", |f| {
        let (attrs, vis, sig, block) = (&f.attrs, &f.vis, &f.sig, &f.block);
        quote!(#(#attrs)* #vis #sig { ::dirk::__private::main(move || #block) })
    })
}

/// Expands `#[dirk::test]` on a test function.
pub fn expand_test(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, "test", |f| {
        let (attrs, vis, sig, block) = (&f.attrs, &f.vis, &f.sig, &f.block);
        let name = &f.sig.ident;
        quote! {
            #[::core::prelude::v1::test]
            #(#attrs)* #vis #sig {
                ::dirk::__private::test(::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)), move || #block)
            }
        }
    })
}

fn expand(
    attr: TokenStream,
    item: TokenStream,
    which: &str,
    emit: impl FnOnce(&syn::ItemFn) -> TokenStream,
) -> TokenStream {
    let mut diagnostics = Diagnostics::new();
    if !attr.is_empty() {
        diagnostics.error(attr.span(), format!("#[dirk::{which}] takes no arguments"));
    }
    let function = match syn::parse2::<syn::ItemFn>(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            diagnostics.error(e.span(), format!("#[dirk::{which}] goes on a function"));
            let errors = diagnostics.into_tokens();
            return quote!(#errors #item);
        }
    };
    if let Some(a) = &function.sig.asyncness {
        diagnostics.error(a.span(), format!("#[dirk::{which}] goes on an ordinary `fn`, not an `async fn`"));
    }
    if !function.sig.inputs.is_empty() {
        diagnostics.error(function.sig.inputs.span(), format!("#[dirk::{which}] functions take no arguments"));
    }
    if diagnostics.has_errors() {
        let errors = diagnostics.into_tokens();
        return quote!(#errors #item);
    }
    emit(&function)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_runs_its_body_through_the_runtime_entry() {
        let out = expand_main(
            quote!(),
            quote!(
                fn main() {
                    run();
                }
            ),
        )
        .to_string();
        assert!(out.contains(":: dirk :: __private :: main (move ||"), "{out}");
    }

    #[test]
    fn tests_become_tests() {
        let out = expand_test(
            quote!(),
            quote!(
                fn works() {}
            ),
        )
        .to_string();
        assert!(out.starts_with("# [:: core :: prelude :: v1 :: test]"), "{out}");
    }

    #[test]
    fn arguments_and_async_are_refused() {
        assert!(
            expand_main(
                quote!(x),
                quote!(
                    fn main() {}
                )
            )
            .to_string()
            .contains("takes no arguments")
        );
        assert!(
            expand_test(
                quote!(),
                quote!(
                    async fn t() {}
                )
            )
            .to_string()
            .contains("not an `async fn`")
        );
        assert!(
            expand_main(
                quote!(),
                quote!(
                    fn main(x: i32) {}
                )
            )
            .to_string()
            .contains("take no arguments")
        );
    }
}
