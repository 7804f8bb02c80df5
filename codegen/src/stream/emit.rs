//! The back end of `streaming!`: glue that wires the plan with the
//! runtime's builder. For `let x = src()?; let y = f(x); y` (fused into one
//! loop) it emits, in outline:
//!
//! ```text
//! {
//!     let region = Builder::new(RegionOptions { .. }, &["x", "y"]);
//!     let (w1, r1_0) = region.spsc(None, 1);               // y -> the Stream
//!     let () = region.group(None, ())
//!         .stage(0, None, move |(): ()| flow(src()))       // x
//!         .then(1, None, move |(mut x,): (_,)| Flow::Item(f(x)))   // y, fused
//!         .to(w1);
//!     region.start(r1_0)
//! }
//! ```
//!
//! Each stage's expression is placed as the user wrote it inside a `move`
//! closure whose parameters are the streaming names it reads, bound with
//! the user's own identifiers: a type mismatch between stages is reported
//! by rustc at the consumer's argument, and constants from outside the
//! block are captured once, by the closure, as in a `move` closure. Two
//! rewrites only: `&x` of an element borrowed from a fan-out ring becomes
//! `x` (the parameter is already a reference), and `delay(x, init)` becomes
//! a parameter. The `T: Clone` a stage needs to take its own copy of a
//! shared element is demanded by glue spanned at that stage's use.

use std::collections::{HashMap, HashSet};

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Expr, Ident};

use super::graph::{Graph, bound_names};
use super::plan::{Plan, Read};
use super::remote;

fn glue() -> TokenStream {
    quote!(::dirk::__private::stream)
}

fn hygienic(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

fn writer(p: usize) -> Ident {
    hygienic(&format!("__dirk_w{p}"))
}

fn reader(p: usize, k: usize) -> Ident {
    hygienic(&format!("__dirk_r{p}_{k}"))
}

fn delay_param(name: &str, at: Span) -> Ident {
    Ident::new(&format!("__dirk_delay_{name}"), Span::mixed_site().located_at(at))
}

fn some_or_none(value: Option<&Expr>) -> TokenStream {
    match value {
        Some(e) => quote_spanned!(e.span()=> ::core::option::Option::Some(#e)),
        None => quote!(::core::option::Option::None),
    }
}

/// `|v| Clone::clone(v)`, placed at `at` so a missing `Clone` is reported
/// there, as rustc reports it for any call of `clone`.
fn cloner(at: Span) -> TokenStream {
    quote_spanned!(at.resolved_at(Span::mixed_site())=> |__dirk_v: &_| ::core::clone::Clone::clone(__dirk_v))
}

pub(crate) fn emit(graph: &Graph, plan: &Plan) -> TokenStream {
    let glue = glue();
    let region = hygienic("__dirk_region");
    let labels: Vec<&str> = graph.stages.iter().map(|s| s.stmt.label.as_str()).collect();

    let opts = &graph.options;
    let max = some_or_none(opts.value("max_evals"));
    let teardown = opts.value("teardown").map_or_else(|| quote!(true), |e| quote!(#e));
    let report = match opts.get("report_allocs") {
        None => quote!(false),
        Some(o) => o.value.as_ref().map_or_else(|| quote!(true), |e| quote!(#e)),
    };

    let mut rings = Vec::new();
    for group in &plan.groups {
        let Some(ring) = &group.ring else { continue };
        let p = ring.producer;
        let stmt = &graph.stages[p].stmt;
        let cap = some_or_none(stmt.options.value("buffer"));
        let w = writer(p);
        let rs: Vec<Ident> = (0..ring.readers.len()).map(|k| reader(p, k)).collect();
        let span = stmt.span.resolved_at(Span::mixed_site());
        rings.push(if rs.len() == 1 {
            let r = &rs[0];
            quote_spanned!(span=> let (#w, #r) = #region.spsc(#cap, #p);)
        } else {
            let n = rs.len();
            quote_spanned!(span=> let (#w, [#(#rs),*]) = #region.broadcast::<_, #n>(#cap, #p);)
        });
    }

    let groups = plan.groups.iter().map(|group| {
        let head = group.stages[0];
        let head_stage = &graph.stages[head];
        let scope = match head_stage.stmt.options.value("scope") {
            Some(e) => quote_spanned!(e.span()=> ::core::option::Option::Some(::core::convert::Into::<::dirk::Scope>::into(#e))),
            None => quote!(::core::option::Option::None),
        };
        let mut inputs = Vec::new();
        let mut head_pats = Vec::new();
        let mut head_tys = Vec::new();
        let mut borrowed = HashSet::new();
        for (use_index, u) in head_stage.inputs(head) {
            let (p, k, read) = plan.reader_of(head, use_index).expect("every read of another group has a ring");
            let r = reader(p, k);
            let base = match read {
                Read::Owned | Read::Borrowed => quote!(#r),
                Read::Cloned => {
                    let clone = cloner(u.span);
                    quote!(#glue::cloned(#r, #clone))
                }
            };
            let producer = &graph.stages[u.from].stmt;
            let name = producer.name.clone().expect("a stage that is read has a name");
            match &u.delay {
                Some((init, at)) => {
                    inputs.push(quote!(#glue::delayed(#init, #base)));
                    let param = delay_param(&name.to_string(), *at);
                    head_pats.push(quote!(mut #param));
                    head_tys.push(quote!(_));
                }
                None => {
                    inputs.push(base);
                    if read == Read::Borrowed {
                        borrowed.insert(name.to_string());
                        head_pats.push(quote!(#name));
                        head_tys.push(quote!(&_));
                    } else {
                        head_pats.push(quote!(mut #name));
                        head_tys.push(quote!(_));
                    }
                }
            }
        }

        let mut chain = quote!(#region.group(#scope, (#(#inputs,)*)));
        for (pos, &s) in group.stages.iter().enumerate() {
            let stage = &graph.stages[s];
            let stmt = &stage.stmt;
            let max = some_or_none(stmt.options.value("max_evals"));
            let (pats, tys) = if pos == 0 {
                (quote!((#(#head_pats,)*)), quote!((#(#head_tys,)*)))
            } else {
                let prev = graph.stages[group.stages[pos - 1]].stmt.name.clone().expect("a fused stage is read by name");
                (quote!((mut #prev,)), quote!((_,)))
            };
            let mut delays = HashMap::new();
            for u in stage.uses.iter().filter(|u| u.delay.is_some()) {
                let name = graph.stages[u.from].stmt.name.as_ref().map(ToString::to_string).unwrap_or_default();
                let at = u.delay.as_ref().map_or(u.span, |(_, at)| *at);
                delays.insert(name.clone(), delay_param(&name, at));
            }
            let none = HashSet::new();
            let body = body(stmt, if pos == 0 { &borrowed } else { &none }, &delays);
            let span = stmt.span.resolved_at(Span::mixed_site());
            chain = match stage.self_delay(s) {
                None => {
                    let method = if pos == 0 { quote!(stage) } else { quote!(then) };
                    quote_spanned!(span=> #chain.#method(#s, #max, move |#pats: #tys| #body))
                }
                Some(u) => {
                    let (init, at) = u.delay.as_ref().expect("a self-delay has an initial value");
                    let name = stmt.name.as_ref().map(ToString::to_string).unwrap_or_default();
                    let d = delay_param(&name, *at);
                    let read_by_others = pos + 1 < group.stages.len() || group.ring.is_some();
                    if read_by_others {
                        let method = if pos == 0 { quote!(stage_delay) } else { quote!(then_delay) };
                        let clone = cloner(*at);
                        quote_spanned!(span=> #chain.#method(#s, #max, #init, #clone, move |#pats: #tys, mut #d| #body))
                    } else {
                        let method = if pos == 0 { quote!(stage_delay_only) } else { quote!(then_delay_only) };
                        quote_spanned!(span=> #chain.#method(#s, #max, #init, move |#pats: #tys, mut #d| #body))
                    }
                }
            };
        }
        let last = *group.stages.last().expect("a group has a head");
        let out = match &group.ring {
            Some(_) => {
                let w = writer(last);
                quote!(#w)
            }
            None => quote!(#glue::Discard),
        };
        let head_max = some_or_none(head_stage.stmt.options.value("max_evals"));
        let form = remote::form(graph, group, &head_max);
        let (before, remote) = match form {
            None => (quote!(), quote!()),
            Some(Ok(f)) => (f.before, f.call),
            Some(Err(error)) => (error, quote!()),
        };
        quote! {
            #before
            #[allow(unused_mut, clippy::redundant_closure_call)]
            let () = #chain #remote.to(#out);
        }
    });

    let start = match plan.tail_reader() {
        Some((p, k, read)) => {
            let r = reader(p, k);
            let tail = if read == Read::Cloned {
                let clone = cloner(graph.tail_span);
                quote!(#glue::cloned(#r, #clone))
            } else {
                quote!(#r)
            };
            quote!(#region.start(#tail))
        }
        None => quote!(#region.start_without_tail()),
    };

    quote! {{
        #[allow(unused_imports)]
        use #glue::{ArchiveDeref as _, ArchiveNone as _, ArchiveValue as _, Decodes as _, NoDecode as _};
        let #region = #glue::Builder::new(
            #glue::RegionOptions { max_evals: #max, teardown: #teardown, report_allocs: #report },
            &[#(#labels),*],
        );
        #(#rings)*
        #(#groups)*
        #start
    }}
}

/// A stage's closure body: its expression, rewritten, as a `Flow`.
fn body(stmt: &super::parse::Stmt, borrowed: &HashSet<String>, delays: &HashMap<String, Ident>) -> TokenStream {
    let glue = glue();
    let mut expr = stmt.expr.clone();
    Rewriter { borrowed, delays, shadowed: Vec::new() }.visit_expr_mut(&mut expr);
    let flow = hygienic("__dirk_flow");
    match (&stmt.question, &stmt.ty) {
        (Some(q), None) => quote_spanned!(q.span()=> ::dirk::__private::stream::StageOutcome::into_flow(#expr)),
        (Some(q), Some(ty)) => {
            let call = quote_spanned!(q.span()=> ::dirk::__private::stream::StageOutcome::into_flow(#expr));
            quote!({ let #flow: #glue::Flow<#ty> = #call; #flow })
        }
        (None, None) => quote!(#glue::Flow::Item(#expr)),
        (None, Some(ty)) => quote!(#glue::Flow::Item::<#ty>(#expr)),
    }
}

/// Rewrites `&x` (for borrowed elements) and `delay(x, init)` in a
/// stage's expression, respecting names shadowed inside it.
struct Rewriter<'a> {
    borrowed: &'a HashSet<String>,
    delays: &'a HashMap<String, Ident>,
    shadowed: Vec<Vec<String>>,
}

impl Rewriter<'_> {
    fn visible(&self, name: &str) -> bool {
        !self.shadowed.iter().any(|s| s.iter().any(|n| n == name))
    }

    fn name_of(expr: &Expr) -> Option<String> {
        match expr {
            Expr::Path(p) if p.qself.is_none() => p.path.get_ident().map(ToString::to_string),
            _ => None,
        }
    }
}

impl VisitMut for Rewriter<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Reference(r) if r.mutability.is_none() => {
                if let Some(name) = Self::name_of(&r.expr)
                    && self.borrowed.contains(&name)
                    && self.visible(&name)
                {
                    let inner = (*r.expr).clone();
                    *expr = inner;
                    return;
                }
                syn::visit_mut::visit_expr_mut(self, expr);
            }
            Expr::Call(call) if matches!(&*call.func, Expr::Path(p) if p.path.is_ident("delay")) => {
                let name = call.args.first().and_then(Self::name_of);
                if let Some(param) = name.and_then(|n| self.delays.get(&n)) {
                    let param = param.clone();
                    *expr = syn::parse_quote!(#param);
                    return;
                }
                syn::visit_mut::visit_expr_mut(self, expr);
            }
            Expr::Closure(c) => {
                let mut bound = Vec::new();
                for input in &c.inputs {
                    bound_names(input, &mut bound);
                }
                self.shadowed.push(bound);
                self.visit_expr_mut(&mut c.body);
                self.shadowed.pop();
            }
            Expr::ForLoop(f) => {
                self.visit_expr_mut(&mut f.expr);
                let mut bound = Vec::new();
                bound_names(&f.pat, &mut bound);
                self.shadowed.push(bound);
                self.visit_block_mut(&mut f.body);
                self.shadowed.pop();
            }
            _ => syn::visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_block_mut(&mut self, block: &mut syn::Block) {
        self.shadowed.push(Vec::new());
        for stmt in &mut block.stmts {
            match stmt {
                syn::Stmt::Local(local) => {
                    if let Some(init) = &mut local.init {
                        self.visit_expr_mut(&mut init.expr);
                        if let Some((_, diverge)) = &mut init.diverge {
                            self.visit_expr_mut(diverge);
                        }
                    }
                    let mut bound = Vec::new();
                    bound_names(&local.pat, &mut bound);
                    if let Some(scope) = self.shadowed.last_mut() {
                        scope.extend(bound);
                    }
                }
                other => self.visit_stmt_mut(other),
            }
        }
        self.shadowed.pop();
    }

    fn visit_arm_mut(&mut self, arm: &mut syn::Arm) {
        let mut bound = Vec::new();
        bound_names(&arm.pat, &mut bound);
        self.shadowed.push(bound);
        if let Some((_, guard)) = &mut arm.guard {
            self.visit_expr_mut(guard);
        }
        self.visit_expr_mut(&mut arm.body);
        self.shadowed.pop();
    }

    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}
