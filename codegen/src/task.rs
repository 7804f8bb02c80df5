//! `#[task]`: marks a function as a dirk task.
//!
//! The function stays an ordinary function (callable directly, spawnable
//! with `spawn!`). The attribute checks that it can be a task: a free,
//! non-`async`, non-`const` function, since a task body runs on a worker
//! thread and its result is stored for its consumers. `#[task(gpu)]` makes a
//! GPU task (see `gpu_task.rs`), which runs only in its own process.
//!
//! It also registers the function for worker processes (see
//! [`registration`]): a companion type of the same name (so that `spawn!`
//! with a literal remote scope can check at compile time that the callee is
//! a task), and an entry in dirk's task registry with the glue that runs it
//! from archived arguments.

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
    if diagnostics.has_errors() {
        let errors = diagnostics.into_tokens();
        return quote!(#errors #function);
    }
    let registration = registration(&function);
    quote!(#function #registration)
}

fn local_only_group(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|t| match t {
        proc_macro2::TokenTree::Ident(i) => i == "impl",
        proc_macro2::TokenTree::Punct(p) => p.as_char() == '\'',
        proc_macro2::TokenTree::Group(g) => local_only_group(g.stream()),
        proc_macro2::TokenTree::Literal(_) => false,
    })
}

/// The companion type and the registry entry of a task function. Generic
/// and `unsafe` functions are not registered: they run only locally.
fn registration(function: &syn::ItemFn) -> TokenStream {
    let sig = &function.sig;
    let name = &sig.ident;
    let vis = &function.vis;
    let companion = quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code, unreachable_pub)]
        #vis struct #name {}
        impl ::dirk::__private::TaskCompanion for #name {}
    };
    let generic = !sig.generics.params.is_empty() || sig.unsafety.is_some() || sig.variadic.is_some();
    let types: Vec<&syn::Type> = sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            syn::FnArg::Typed(t) => Some(&*t.ty),
            syn::FnArg::Receiver(_) => None,
        })
        .collect();
    let output = match &sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => quote!(#ty),
    };
    // `impl Trait` is generic; a named lifetime (`&'static str`) cannot be
    // given by arguments that live only as long as one call.
    if generic
        || types.iter().any(|t| local_only_group(quote!(#t)))
        || local_only_group(output.clone())
        || sig.receiver().is_some()
    {
        return companion;
    }
    let probe = quote!(::dirk::__private::ParamProbe);
    let live = if types.is_empty() {
        quote!((&&::dirk::__private::ResultProbe::<#output>::new()).live(#name))
    } else {
        quote!(::core::option::Option::None)
    };
    let remote = types.iter().map(|ty| quote!((&&&&&&&&#probe::<#ty>::new()).remote()));
    let decoded =
        types.iter().enumerate().map(|(i, ty)| quote!((&&&&&&&&#probe::<#ty>::new()).decode(__dirk_args, #i)?));
    quote! {
        #companion
        const _: () = {
            #[allow(unused_imports)]
            use ::dirk::__private::probe::{
                InPlace as _, LiveHandle as _, LiveResult as _, LocalLive as _, LocalOnly as _, LocalResult as _,
                PlainSlice as _, PlainVecResult as _, WireOwned as _, WireRef as _, WireResult as _, WireSlice as _,
                WireStr as _,
            };
            #[::dirk::__private::linkme::distributed_slice(::dirk::__private::TASKS)]
            #[linkme(crate = ::dirk::__private::linkme)]
            static __DIRK_TASK: ::dirk::__private::Registration = ::dirk::__private::Registration {
                path: || ::core::any::type_name_of_val(&#name),
                glue: __dirk_glue,
            };
            fn __dirk_glue() -> ::dirk::__private::Glue {
                ::dirk::__private::Glue {
                    remote: true #(&& #remote)*,
                    run: __dirk_run,
                    result: (&&&::dirk::__private::ResultProbe::<#output>::new()).glue(),
                    live: #live,
                }
            }
            #[allow(clippy::unit_arg, clippy::let_unit_value)]
            fn __dirk_run(
                __dirk_args: &::dirk::__private::RemoteArgs<'_>,
            ) -> ::core::result::Result<::dirk::__private::AlignedBytes, ::dirk::Error> {
                let __dirk_out = #name(#(#decoded),*);
                (&&&::dirk::__private::ResultProbe::<#output>::new()).encode(&__dirk_out)
            }
        };
    }
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
        let out = expand_task(quote!(), f.clone()).to_string();
        assert!(out.starts_with(&f.to_string()), "{out}");
        assert!(out.contains("distributed_slice"), "{out}");
        assert!(out.contains("struct add { }"), "{out}");
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
