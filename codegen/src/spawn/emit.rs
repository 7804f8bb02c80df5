//! The back end of `spawn!`: glue that wraps each argument in a slot, and a
//! closure that calls the function with what each slot provides.
//!
//! For `spawn!(name = "n", f(a, 10))` it emits, in outline:
//!
//! ```text
//! {
//!     let __dirk_a0 = (&Arg::new(a)).dirk_slot();   // Input<T> or Value<T>
//!     let __dirk_a1 = (&Arg::new(10)).dirk_slot();
//!     spawn_call(Some(Options::new().name("n")), "f", (__dirk_a0, (__dirk_a1, ())),
//!         move |(mut __dirk_a0, (mut __dirk_a1, ()))| f(Provide::provide(&mut __dirk_a0), ..))
//! }
//! ```
//!
//! Each `Provide::provide` is spanned at the user's argument, so a type
//! mismatch is reported there. Generated names use mixed-site hygiene and
//! cannot clash with the user's.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::parse::{Callee, Spawn};

pub(crate) fn emit(spawn: &Spawn) -> TokenStream {
    let call = &spawn.call;
    let slot = |i: usize| format_ident!("__dirk_a{}", i, span = Span::mixed_site());
    let callee_var = format_ident!("__dirk_f", span = Span::mixed_site());

    // Evaluated before the arguments, as in an ordinary call.
    let (callee_let, callee_use) = match &call.callee {
        Callee::Path(path) => (quote!(), quote!(#path)),
        Callee::Expr(expr) => (quote!(let #callee_var = #expr;), quote!(#callee_var)),
        Callee::Method { receiver, .. } => {
            (quote!(#[allow(unused_mut)] let mut #callee_var = #receiver;), quote!(#callee_var))
        }
    };

    // Generated names are hygienic but placed at the user's argument, so
    // that rustc reports a problem with the argument at the argument.
    let at =
        |i: usize, arg: &syn::Expr| format_ident!("__dirk_a{}", i, span = Span::mixed_site().located_at(arg.span()));

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

    let provided = call.args.iter().enumerate().map(|(i, arg)| {
        let name = at(i, arg);
        quote_spanned! {arg.span().resolved_at(Span::mixed_site())=> #name.provide() }
    });
    let invoke = match &call.callee {
        Callee::Method { method, turbofish, .. } => {
            quote!(#callee_use.#method #turbofish(#(#provided),*))
        }
        _ => quote!(#callee_use(#(#provided),*)),
    };

    let options = if spawn.options.is_empty() {
        quote!(::core::option::Option::None)
    } else {
        let setters = spawn.options.iter().map(|o| {
            let (name, value) = (&o.name, &o.value);
            quote_spanned!(value.span()=> .#name(#value))
        });
        quote!(::core::option::Option::Some(::dirk::Options::new() #(#setters)*))
    };
    let name = &call.name;

    quote! {{
        #[allow(unused_imports)]
        use ::dirk::__private::{ArgTask as _, ArgTaskRef as _, ArgTasks as _, ArgValue as _, Provide as _};
        #callee_let
        #(#wraps)*
        ::dirk::__private::spawn_call(
            #options,
            #name,
            #tuple,
            move |#pattern| #invoke,
        )
    }}
}
