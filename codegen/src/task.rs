//! `#[task]`: marks a function as a dirk task.
//!
//! The function stays an ordinary function (callable directly, spawnable
//! with `spawn!`). The attribute checks that it can be a task: a free,
//! non-`async`, non-`const` function, since a task body runs on a worker
//! thread and its result is stored for its consumers. Later stages attach
//! the task's stable id for remote execution here. `#[task(gpu)]` makes a
//! GPU task (see `gpu_task.rs`).

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;

use crate::Diagnostics;

/// Expands `#[task]` (its arguments in `attr`) on the item `item`.
pub fn expand_task(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut diagnostics = Diagnostics::new();
    let gpu = gpu_role(attr, &mut diagnostics);
    let function = match syn::parse2::<syn::ItemFn>(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let span = match syn::parse2::<syn::Item>(item.clone()) {
                Ok(other) => other.span(),
                Err(_) => proc_macro2::Span::call_site(),
            };
            diagnostics.error(span, "#[task] goes on a function: `#[task] fn name(args) -> T { ... }`");
            let errors = diagnostics.into_tokens();
            return quote!(#errors #item);
        }
    };
    let sig = &function.sig;
    if let Some(a) = &sig.asyncness {
        diagnostics.error(
            a.span(),
            "a #[task] cannot be `async`: task bodies run to completion on a worker thread; make it an ordinary `fn`",
        );
    }
    if let Some(c) = &sig.constness {
        diagnostics
            .error(c.span(), "a #[task] cannot be `const`: remove `const`, or call it directly instead of spawning it");
    }
    if let Some(receiver) = sig.receiver() {
        diagnostics.error(
            receiver.span(),
            "a #[task] is a free function: move it out of the `impl` and take the value as an argument",
        );
    }
    if gpu {
        crate::gpu_task::check(&function, &mut diagnostics);
        if !diagnostics.has_errors() {
            drop(diagnostics);
            return crate::gpu_task::emit(function);
        }
    }
    let errors = diagnostics.into_tokens();
    quote!(#errors #function)
}

/// Reads the attribute's arguments: none, or `gpu`. Returns whether it is
/// a GPU task.
fn gpu_role(attr: TokenStream, diagnostics: &mut Diagnostics) -> bool {
    if attr.is_empty() {
        return false;
    }
    match syn::parse2::<syn::Ident>(attr.clone()) {
        Ok(ident) if ident == "gpu" => true,
        _ => {
            diagnostics.error(attr.span(), "#[task] takes no arguments, or `gpu`: write `#[task]` or `#[task(gpu)]`");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_function_passes_through() {
        let f = quote!(
            fn add(a: i64, b: i64) -> i64 {
                a + b
            }
        );
        assert_eq!(expand_task(quote!(), f.clone()).to_string(), f.to_string());
    }

    #[test]
    fn async_const_and_non_functions_are_refused() {
        let out = expand_task(
            quote!(),
            quote!(
                async fn f() {}
            ),
        )
        .to_string();
        assert!(out.contains("cannot be `async`"), "{out}");
        let out = expand_task(
            quote!(),
            quote!(
                const fn f() {}
            ),
        )
        .to_string();
        assert!(out.contains("cannot be `const`"), "{out}");
        let out = expand_task(
            quote!(),
            quote!(
                struct S;
            ),
        )
        .to_string();
        assert!(out.contains("goes on a function"), "{out}");
        let out = expand_task(
            quote!(cuda),
            quote!(
                fn f() {}
            ),
        )
        .to_string();
        assert!(out.contains("takes no arguments, or `gpu`"), "{out}");
    }
}
