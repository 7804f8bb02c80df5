//! The remote form of a stage: what lets a stage scoped to another worker
//! process run there (see the runtime's `stream::proxy`).
//!
//! A stage qualifies when its group is that one stage, it has a `scope`,
//! it reads exactly one streaming name (no `delay`), and its expression is
//! one call `f(..)` of a function path in which the streaming name is one
//! whole argument (`x` or `&x`) and no other argument mentions it. For
//! `#[dirk(scope = s)] let y = f(x, k)?;` the back end then emits, before
//! the group (so the constants are archived before the local closure
//! captures them):
//!
//! ```text
//! let __dirk_c3_0 = archived_const((&&&ArchiveProbe(&(k))).archive(const_writer()));
//! ```
//!
//! and ends the group with `.remote(RemoteForm { path, consts, slot: 0,
//! decode: result probe of f, post: |r| flow(r) }, move |(x,), w| archive *x into w)`
//! before `.to(..)`. Every probe has a fallback, so a stage whose types do
//! not archive still compiles and runs locally; sending it elsewhere is an
//! `Error::Scope` at run time. A scope written as a literal that names only
//! other workers is checked here: the stage must qualify, and `f` must be a
//! `#[task]` (the same check `spawn!` makes).

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, Ident};

use super::graph::Graph;
use super::plan::Group;

/// What the back end adds for one group: statements before it, and the
/// `.remote(..)` call after its chain.
pub(crate) struct RemoteForm {
    pub(crate) before: TokenStream,
    pub(crate) call: TokenStream,
}

fn mentions(tokens: TokenStream, name: &Ident) -> bool {
    tokens.into_iter().any(|t| match t {
        TokenTree::Ident(i) => i == *name,
        TokenTree::Group(g) => mentions(g.stream(), name),
        _ => false,
    })
}

fn whole_name(arg: &Expr) -> Option<&Ident> {
    match arg {
        Expr::Path(p) if p.qself.is_none() => p.path.get_ident(),
        Expr::Reference(r) if r.mutability.is_none() => whole_name(&r.expr),
        Expr::Paren(p) => whole_name(&p.expr),
        _ => None,
    }
}

/// The remote form of `group`, or a compile error when a literal remote
/// scope cannot be met; `None` when the stage does not qualify.
pub(crate) fn form(graph: &Graph, group: &Group, max: &TokenStream) -> Option<Result<RemoteForm, TokenStream>> {
    let s = group.stages[0];
    let stage = &graph.stages[s];
    let stmt = &stage.stmt;
    let scope = stmt.options.value("scope")?;
    let literal_remote = crate::spawn::parse::literal_workers(scope).is_some_and(|w| !w.is_empty() && !w.contains(&0));
    let refuse = |span: Span, why: &str| {
        let message = format!(
            "this stage cannot run on another worker: {why}. Other worker processes run only #[task] functions, \
             called as `f(x, constants..)` with the stage's one streaming input `x` passed whole"
        );
        literal_remote.then(|| Err(syn::Error::new(span, message).to_compile_error()))
    };
    if group.stages.len() != 1 {
        return refuse(stmt.span, "it is fused with the stages after it (give them their own scope)");
    }
    let inputs: Vec<_> = stage.inputs(s).collect();
    if stage.self_delay(s).is_some() || inputs.len() != 1 || inputs[0].1.delay.is_some() {
        return refuse(stmt.span, "it must read exactly one streaming input, without `delay`");
    }
    let name = graph.stages[inputs[0].1.from].stmt.name.clone()?;
    let Expr::Call(call) = &stmt.expr else { return refuse(stmt.expr.span(), "it is not a function call") };
    let Expr::Path(func) = &*call.func else { return refuse(call.func.span(), "it does not call a function by path") };
    let mut slot = None;
    for (i, arg) in call.args.iter().enumerate() {
        if whole_name(arg) == Some(&name) && slot.is_none() {
            slot = Some(i);
        } else if mentions(quote!(#arg), &name) {
            return refuse(arg.span(), &format!("argument {} uses `{name}` inside an expression", i + 1));
        }
    }
    let Some(slot) = slot else { return refuse(stmt.expr.span(), &format!("`{name}` is not one of its arguments")) };

    let glue = quote!(::dirk::__private::stream);
    let mut before = TokenStream::new();
    let mut consts = Vec::new();
    for (i, arg) in call.args.iter().enumerate().filter(|(i, _)| *i != slot) {
        let c = format_ident!("__dirk_c{}_{}", s, i, span = Span::mixed_site());
        before.extend(quote_spanned! {arg.span().resolved_at(Span::mixed_site())=>
            let #c = #glue::archived_const((&&&#glue::ArchiveProbe(&(#arg))).archive(#glue::const_writer()));
        });
        consts.push(c);
    }
    if literal_remote {
        let mut ty = func.path.clone();
        for segment in &mut ty.segments {
            segment.arguments = syn::PathArguments::None;
        }
        before.extend(quote_spanned!(func.span()=> ::dirk::__private::must_be_task::<#ty>();));
    }
    let arity = call.args.iter().map(|_| quote!(_));
    let r = Ident::new("__dirk_r", Span::mixed_site());
    let w = Ident::new("__dirk_w", Span::mixed_site());
    let post = match &stmt.question {
        Some(q) => quote_spanned!(q.span()=> #glue::StageOutcome::into_flow(#r)),
        None => quote!(#glue::Flow::Item(#r)),
    };
    let call = quote! {
        .remote(#glue::RemoteForm {
            path: ::core::any::type_name_of_val(&#func),
            consts: ::std::vec![#(#consts),*],
            slot: #slot,
            max_evals: #max,
            decode: (&&#glue::result_probe::<(#(#arity,)*), _>(&#func)).decoder(),
            post: move |#r| #post,
        }, move |(#name,), #w| (&&&#glue::ArchiveProbe(#name)).archive(#w))
    };
    Some(Ok(RemoteForm { before, call }))
}
