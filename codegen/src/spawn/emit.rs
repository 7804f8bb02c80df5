//! The back end of `spawn!`: glue that wraps each argument in a slot, and a
//! closure that calls the function with what each slot provides.
//!
//! For `spawn!(name = "n", f(a, 10))` it emits, in outline:
//!
//! ```text
//! {
//!     let __dirk_a0 = (&Arg::new(a)).dirk_slot();   // Input<T> or Value<T>
//!     let __dirk_a1 = (&Arg::new(10)).dirk_slot();
//!     spawn_task(Some(Options::new().name("n")), "f", path_of(f), &[encoders..],
//!         (__dirk_a0, (__dirk_a1, ())),
//!         move |(mut __dirk_a0, (mut __dirk_a1, ()))| f(PassAs::provide(&mut __dirk_a0), ..))
//! }
//! ```
//!
//! Each `PassAs::provide` is spanned at the user's argument, so a type
//! mismatch is reported there. Generated names use mixed-site hygiene and
//! cannot clash with the user's.
//!
//! For worker processes the call also carries the callee's path as
//! `type_name_of_val` spells it (the registry key of a `#[task]`), one
//! encoder per argument chosen by the slot probes (`None` for a value that
//! does not archive), and, when the scope literally names another worker, a
//! compile-time check that the callee is a `#[task]`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::parse::{Callee, Spawn};

pub(crate) fn emit(spawn: &Spawn) -> TokenStream {
    let call = &spawn.call;
    let slot = |i: usize| format_ident!("__dirk_a{}", i, span = Span::mixed_site());
    let callee_var = format_ident!("__dirk_f", span = Span::mixed_site());

    // Evaluated before the arguments, as in an ordinary call.
    let (callee_let, callee_use) = match &call.callee {
        Callee::Path(path) => {
            // Named after the function, at its span, so that rustc's notes
            // about the callee read as they would for a direct call.
            let last = path.path.segments.last().map_or_else(|| "__dirk_f".to_owned(), |s| s.ident.to_string());
            let var = format_ident!("{}", last, span = Span::mixed_site().located_at(path.span()));
            (quote_spanned!(path.span()=> let #var = #path;), quote!(#var))
        }
        Callee::Expr(expr) => (quote!(let #callee_var = #expr;), quote!(#callee_var)),
        Callee::Method { receiver, .. } => {
            (quote!(#[allow(unused_mut)] let mut #callee_var = #receiver;), quote!(#callee_var))
        }
    };

    // Generated names are hygienic but placed at the user's argument, so
    // that rustc reports a problem with the argument at the argument.
    let wraps = call.args.iter().enumerate().map(|(i, arg)| {
        let name = slot(i);
        quote_spanned! {arg.span().resolved_at(Span::mixed_site())=>
            let #name = (&::dirk::__private::Arg::new(#arg)).dirk_slot();
        }
    });

    let mut tuple = quote!(());
    let mut pattern = quote!(());
    for i in (0..call.args.len()).rev() {
        let name = slot(i);
        tuple = quote!((#name, #tuple));
        pattern = quote!((mut #name, #pattern));
    }

    // `PassAs::provide(&mut slot)`, with `&mut` at the argument's first
    // token and the slot at its last: the expression spans the whole
    // argument, so rustc underlines all of it (a span of several tokens
    // cannot be made on stable Rust otherwise). The path sits at the
    // callee, which "this call" in rustc's note then names.
    let callee_span = match &call.callee {
        Callee::Path(path) => path.span(),
        Callee::Expr(expr) => expr.span(),
        Callee::Method { method, .. } => method.span(),
    };
    let provided = call.args.iter().enumerate().map(|(i, arg)| {
        let (first, last) = first_and_last(arg);
        let name = format_ident!("__dirk_a{}", i, span = Span::mixed_site().located_at(last));
        let borrow = quote_spanned!(first.resolved_at(Span::mixed_site())=> &mut);
        let provide = quote_spanned!(callee_span.resolved_at(Span::mixed_site())=> ::dirk::__private::PassAs::provide);
        quote!(#provide(#borrow #name))
    });
    let invoke = match &call.callee {
        Callee::Method { method, turbofish, .. } => {
            quote!(#callee_use.#method #turbofish(#(#provided),*))
        }
        _ => quote!(#callee_use(#(#provided),*)),
    };

    // `checkpoint = c` is no option of the task: it picks the spawn that
    // reads results back (`dirk::fs::Checkpoint`).
    let checkpoint = spawn.options.iter().find(|o| o.name == "checkpoint").map(|o| &o.value);
    let plain: Vec<_> = spawn.options.iter().filter(|o| o.name != "checkpoint").collect();
    let options = if plain.is_empty() {
        quote!(::core::option::Option::None)
    } else {
        let setters = plain.iter().map(|o| {
            let (name, value) = (&o.name, &o.value);
            quote_spanned!(value.span()=> .#name(#value))
        });
        quote!(::core::option::Option::Some(::dirk::Options::new() #(#setters)*))
    };
    let name = &call.name;
    let path = match &call.callee {
        Callee::Path(_) => {
            let callee = &callee_use;
            quote!(::core::any::type_name_of_val(&#callee))
        }
        _ => quote!(""),
    };
    let encoders: Vec<_> = (0..call.args.len())
        .map(|i| {
            let name = slot(i);
            quote!((&&&&::dirk::__private::slot_probe(&#name)).encoder())
        })
        .collect();
    let must_be_task = match (&call.callee, spawn.remote_literal) {
        (Callee::Path(path), true) => {
            let mut ty = path.path.clone();
            for segment in &mut ty.segments {
                segment.arguments = syn::PathArguments::None;
            }
            quote_spanned!(path.span()=> ::dirk::__private::must_be_task::<#ty>();)
        }
        _ => quote!(),
    };

    let spawn = match checkpoint {
        Some(c) => quote_spanned! {c.span()=>
            ::dirk::__private::spawn_checkpointed(
                #c,
                #options,
                #name,
                &[#(#encoders),*],
                #tuple,
                move |#pattern| #invoke,
            )
        },
        None => quote! {
            ::dirk::__private::spawn_task(
                #options,
                #name,
                #path,
                &[#(#encoders),*],
                #tuple,
                move |#pattern| #invoke,
            )
        },
    };
    quote! {{
        #[allow(unused_imports)]
        use ::dirk::__private::{ArgTask as _, ArgTaskRef as _, ArgTasks as _, ArgValue as _};
        #[allow(unused_imports)]
        use ::dirk::__private::probe::{FileSlot as _, HandleSlot as _, LocalSlot as _, WireSlot as _};
        #must_be_task
        #callee_let
        #(#wraps)*
        #spawn
    }}
}

/// The spans of the first and the last token of `tokens` (a group counts
/// as one token, its span covering it to its closing delimiter).
pub(crate) fn first_and_last(tokens: &impl ToTokens) -> (Span, Span) {
    let mut iter = tokens.to_token_stream().into_iter();
    let first = iter.next().map_or_else(Span::call_site, |t| t.span());
    let last = iter.last().map_or(first, |t| t.span());
    (first, last)
}
