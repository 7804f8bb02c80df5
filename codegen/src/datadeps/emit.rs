//! The back end of `datadeps!`: the block as the body of a region closure,
//! each root borrowed once before the statement that first uses it, and
//! each task call replaced by the glue that evaluates its places and makes
//! its task.
//!
//! For `let t = f(InOut(x.a[i]), In(y), 3);` in a block ordered at run
//! time, in outline:
//!
//! ```text
//! ::dirk::__private::datadeps::run(|__dd| {
//!     let (__dd_r0, __dd_g0) = __dd.root_mut(x.dirk_root_mut());   // before the statement
//!     let (__dd_r1, __dd_g1) = __dd.root_ref(y.dirk_root_ref());
//!     let t = {
//!         let (__dd_p0, __dd_i0) = __dd_g0.write("InOut(x.a[i])")
//!             .through((&&Probe::new(&raw mut *__dd_r0)).dirk_probe())   // is `x` a pointer?
//!             .head(&raw mut (*__dd_r0).a)
//!             .index(i)
//!             .split();
//!         let (__dd_p1, __dd_i1) = __dd_g1.read("In(y)").head(&raw const *__dd_r1).split();
//!         let __dd_p2 = (&Arg::new(3)).dirk_slot();
//!         __dd.call("f", [__dd_i0, __dd_i1], (__dd_p0, (__dd_p1, (__dd_p2, ()))),
//!             move |(mut __dd_p0, (mut __dd_p1, (mut __dd_p2, ())))|
//!                 f(__dd_p0.provide(), __dd_p1.provide(), __dd_p2.provide()))
//!     };
//! })
//! ```
//!
//! A call statement whose value is dropped (`f(..);`) uses `call_detached`
//! instead, which makes no task handle.
//!
//! A statically planned call uses `call_planned` with the handles of the
//! tasks it runs after, and `settle`s the tasks its place evaluation must
//! wait for. The emitted code contains no `unsafe`. Generated names use
//! mixed-site hygiene: user code cannot name or clash with them.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Ident};

use super::graph::Graph;
use super::parse::{Arg, Block, Callee, Place, TaskCall, placeholder_id};
use super::plan::{Order, Plan};

fn hygienic(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

pub(crate) fn emit(block: Block, graph: &Graph, plan: &Plan) -> TokenStream {
    let Block { mut stmts, calls, .. } = block;
    let mut emitted: Vec<Expr> = Vec::with_capacity(calls.len());
    let mut detached: Vec<Option<Expr>> = Vec::with_capacity(calls.len());
    for call in &calls {
        let (tokens, statement) = emit_call(call, graph, plan, &emitted, &detached);
        emitted.push(Expr::Verbatim(tokens));
        detached.push(statement.map(Expr::Verbatim));
    }
    let mut fill = Fill { emitted: &emitted, detached: &detached };
    for stmt in &mut stmts {
        fill.visit_stmt_mut(stmt);
    }

    let dd = hygienic("__dd");
    let mut body = Vec::new();
    if plan.order == Order::Static {
        for (k, t) in plan.tasks.iter().enumerate() {
            if t.keep {
                let kept = kept(k);
                body.push(quote!(let #kept;));
            }
        }
    }
    for (top, stmt) in stmts.iter().enumerate() {
        for (root, &at) in plan.guards.iter().enumerate() {
            if at == top {
                body.push(guard(graph, root, &dd));
            }
        }
        body.push(quote!(#stmt));
    }
    quote! {
        ::dirk::__private::datadeps::run(|#dd| {
            #[allow(unused_imports)]
            use ::dirk::__private::{ArgTask as _, ArgTaskRef as _, ArgValue as _, PassAs as _};
            #[allow(unused_imports)]
            use ::dirk::__private::datadeps::{
                DirkRootMut as _, DirkRootRef as _, NoWaitAny as _, NoWaitTask as _, ProbeDeref as _, ProbePlain as _,
                ProbePointer as _,
            };
            let _ = &#dd;
            #(#body)*
        })
    }
}

/// Replaces placeholders with the emitted calls: a call statement whose
/// value is dropped (`f(..);`) with its detached form where it has one.
struct Fill<'a> {
    emitted: &'a [Expr],
    detached: &'a [Option<Expr>],
}

impl VisitMut for Fill<'_> {
    fn visit_stmt_mut(&mut self, stmt: &mut syn::Stmt) {
        if let syn::Stmt::Expr(expr, Some(_)) = stmt
            && let Some(id) = placeholder_id(expr)
            && let Some(detached) = &self.detached[id]
        {
            *expr = detached.clone();
            return;
        }
        visit_mut::visit_stmt_mut(self, stmt);
    }

    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match placeholder_id(expr) {
            Some(id) => *expr = self.emitted[id].clone(),
            None => visit_mut::visit_expr_mut(self, expr),
        }
    }
}

fn root_names(root: usize) -> (Ident, Ident) {
    (hygienic(&format!("__dd_r{root}")), hygienic(&format!("__dd_g{root}")))
}

fn kept(task: usize) -> Ident {
    hygienic(&format!("__dd_k{task}"))
}

/// `let (__dd_rN, __dd_gN) = __dd.root_mut(x.dirk_root_mut());`
fn guard(graph: &Graph, root: usize, dd: &Ident) -> TokenStream {
    let r = &graph.roots[root];
    let ident = &r.ident;
    let (reference, tracker) = root_names(root);
    let span = ident.span().resolved_at(Span::mixed_site());
    if r.writes {
        quote_spanned!(span=> let (#reference, #tracker) = #dd.root_mut(#ident.dirk_root_mut());)
    } else {
        quote_spanned!(span=> let (#reference, #tracker) = #dd.root_ref(#ident.dirk_root_ref());)
    }
}

/// The glue of one call, and for a call ordered at run time its detached
/// form, which makes no handle (for a statement that drops the value).
fn emit_call(
    call: &TaskCall,
    graph: &Graph,
    plan: &Plan,
    emitted: &[Expr],
    detached: &[Option<Expr>],
) -> (TokenStream, Option<TokenStream>) {
    let dd = hygienic("__dd");
    let slot = |i: usize| hygienic(&format!("__dd_p{i}"));
    let mut fill = Fill { emitted, detached };

    let callee_var = hygienic("__dd_f");
    let (callee_let, callee_use) = match &call.callee {
        Callee::Path(path) => (quote!(), quote!(#path)),
        Callee::Expr(expr) => {
            let mut expr = expr.clone();
            fill.visit_expr_mut(&mut expr);
            (quote!(let #callee_var = #expr;), quote!(#callee_var))
        }
    };

    let mut lets = Vec::new();
    let mut accesses = Vec::new();
    let mut slots_tuple = quote!(());
    let mut pattern = quote!(());
    let mut provided = Vec::new();
    for (i, arg) in call.args.iter().enumerate() {
        let name = slot(i);
        let arg_span = match arg {
            Arg::Place(p) => p.span,
            Arg::Value(v) => syn::spanned::Spanned::span(v),
        };
        match arg {
            Arg::Place(p) => {
                let access = graph.of_task(call.id).find(|a| a.arg == i).expect("every place has an access");
                let chain = place_chain(&p.place, access.root, p.mode.writes(), &p.text, &mut fill);
                let info = hygienic(&format!("__dd_i{i}"));
                let split = quote_spanned!(p.span.resolved_at(Span::mixed_site())=> .split());
                lets.push(quote!(let (#name, #info) = #chain #split;));
                accesses.push(quote!(#info));
            }
            Arg::Value(v) => {
                let mut v = v.clone();
                fill.visit_expr_mut(&mut v);
                let span = arg_span.resolved_at(Span::mixed_site());
                lets.push(quote_spanned!(span=> let #name = (&::dirk::__private::Arg::new(#v)).dirk_slot();));
            }
        }
        let at = Ident::new(&format!("__dd_p{i}"), Span::mixed_site().located_at(arg_span));
        provided.push(quote_spanned!(arg_span.resolved_at(Span::mixed_site())=> #at.provide()));
    }
    for i in (0..call.args.len()).rev() {
        let name = slot(i);
        slots_tuple = quote!((#name, #slots_tuple));
        pattern = quote!((mut #name, #pattern));
    }
    let invoke = quote!(#callee_use(#(#provided),*));
    let name = &call.name;
    let closure = quote!(move |#pattern| #invoke);

    match plan.order {
        Order::Dynamic => {
            let make = |method: TokenStream| {
                quote! {{
                    #callee_let
                    #(#lets)*
                    #dd.#method(#name, [#(#accesses),*], #slots_tuple, #closure)
                }}
            };
            (make(quote!(call)), Some(make(quote!(call_detached))))
        }
        Order::Static => {
            let t = &plan.tasks[call.id];
            let settles = t.settle.iter().map(|&j| {
                let k = kept(j);
                quote!(#dd.settle(&#k);)
            });
            let after = t.after.iter().map(|&j| {
                let k = kept(j);
                quote!(&#k)
            });
            let task = hygienic("__dd_t");
            let keep = if t.keep {
                let k = kept(call.id);
                quote!(#k = #dd.keep(&#task);)
            } else {
                quote!()
            };
            let tokens = quote! {{
                #(#settles)*
                #callee_let
                #(#lets)*
                let #task = #dd.call_planned(#name, [#(#after),*], [#(#accesses),*], #slots_tuple, #closure);
                #keep
                #task
            }};
            (tokens, None)
        }
    }
}

/// The evaluation of one place (see the module note).
fn place_chain(place: &Place, root: usize, write: bool, text: &str, fill: &mut Fill<'_>) -> TokenStream {
    let (reference, tracker) = root_names(root);
    let (start, raw) = if write { (quote!(write), quote!(&raw mut)) } else { (quote!(read), quote!(&raw const)) };
    let mut chain = quote!(#tracker.#start(#text));
    let mut prefix = quote!((*#reference));
    // A refused `Deref` is reported at the part of the place before the field.
    let mut before = place.root.span();
    for field in &place.fields {
        let probe = quote_spanned!(before.resolved_at(Span::mixed_site())=>
            (&&::dirk::__private::datadeps::Probe::new(#raw #prefix)).dirk_probe()
        );
        chain = quote!(#chain.through(#probe));
        prefix = quote!(#prefix.#field);
        before = syn::spanned::Spanned::span(field);
    }
    // Refuses union and packed fields, whose places a task could not borrow:
    // rustc rejects a reference to them outside `unsafe`.
    let field_check = if place.fields.is_empty() { quote!() } else { quote!(if false { let _ = &#prefix; }) };
    chain = quote!(#chain.head(#raw #prefix));
    for index in &place.indexes {
        let mut index = index.clone();
        fill.visit_expr_mut(&mut index);
        chain = quote!(#chain.index(#index));
    }
    quote!({ #field_check #chain })
}

/// The block for a macro call that failed its checks: the errors, and a
/// value of any type so the user's surrounding code type-checks.
pub(crate) fn failed(errors: TokenStream) -> TokenStream {
    quote!({ #errors (|| -> ::core::result::Result<_, ::dirk::Error> { ::core::unreachable!() })() })
}
