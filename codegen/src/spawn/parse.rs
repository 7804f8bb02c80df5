//! The front end of `spawn!`: `spawn!(opt = value, .., call)`.
//!
//! Options come first, each `name = expression`; the last item is the call:
//! a path call `f(a, b)`, a call of any other callee expression
//! `(|x: i64| x + 1)(a)`, or a method call `v.len()` whose receiver is moved
//! into the task as a value.

use proc_macro2::TokenStream;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Ident, Token};

use crate::Diagnostics;
use crate::diagnostics::list;

/// The options `spawn!` understands, as written by users.
pub(crate) const OPTIONS: &[&str] = &["scope", "name", "retries", "checkpoint"];

/// A checked `spawn!` call.
pub(crate) struct Spawn {
    pub(crate) options: Vec<SpawnOption>,
    pub(crate) call: Call,
    /// The scope is a literal that names only workers other than 0.
    pub(crate) remote_literal: bool,
}

pub(crate) struct SpawnOption {
    pub(crate) name: Ident,
    pub(crate) value: Expr,
}

pub(crate) struct Call {
    pub(crate) callee: Callee,
    pub(crate) args: Vec<Expr>,
    /// The task's default name: the function's or method's name.
    pub(crate) name: String,
}

pub(crate) enum Callee {
    /// `f(..)`, `module::f::<T>(..)`, `Type::method(..)`: referenced in place.
    Path(syn::ExprPath),
    /// Any other callee expression, evaluated once before the arguments.
    Expr(Expr),
    /// `receiver.method::<T>(..)`: the receiver is evaluated and moved in.
    Method { receiver: Expr, method: Ident, turbofish: Option<syn::AngleBracketedGenericArguments> },
}

enum Item {
    Option(SpawnOption),
    Call(Expr),
}

impl Parse for Item {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(Ident) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
            let name: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let value: Expr = input.parse()?;
            Ok(Item::Option(SpawnOption { name, value }))
        } else {
            Ok(Item::Call(input.parse()?))
        }
    }
}

/// Parses and checks; returns `None` when nothing usable was found. Every
/// problem is reported to `diagnostics`.
pub(crate) fn parse(input: TokenStream, diagnostics: &mut Diagnostics) -> Option<Spawn> {
    let whole = input.span();
    let items = match Punctuated::<Item, Token![,]>::parse_terminated.parse2(input) {
        Ok(items) => items,
        Err(e) => {
            diagnostics.push(e);
            return None;
        }
    };
    let mut options: Vec<SpawnOption> = Vec::new();
    let mut call: Option<Expr> = None;
    for item in items {
        match item {
            Item::Option(option) => {
                let name = option.name.to_string();
                if let Some(call) = &call {
                    diagnostics.error(
                        option.name.span(),
                        format!("options come before the call: write `spawn!({name} = ..., {})`", callee_text(call)),
                    );
                } else if !OPTIONS.contains(&name.as_str()) {
                    diagnostics
                        .error(option.name.span(), format!("unknown option `{name}`: spawn! takes {}", list(OPTIONS)));
                } else if let Some(first) = options.iter().find(|o| o.name == option.name) {
                    diagnostics.conflict(
                        first.name.span(),
                        format!("`{name}` is first given here"),
                        option.name.span(),
                        format!("`{name}` is given twice: keep one"),
                    );
                } else {
                    options.push(option);
                }
            }
            Item::Call(expr) => {
                if let Some(first) = &call {
                    diagnostics.conflict(
                        first.span(),
                        "the call to spawn is this one",
                        expr.span(),
                        "spawn! takes one call: spawn each call with its own spawn!",
                    );
                } else {
                    call = Some(expr);
                }
            }
        }
    }
    let Some(call) = call else {
        diagnostics.error(whole, "spawn! needs a call to spawn, such as `spawn!(f(a, b))`");
        return None;
    };
    let callee_span = match &call {
        Expr::Call(c) => c.func.span(),
        Expr::MethodCall(m) => m.method.span(),
        other => other.span(),
    };
    let call = check_call(call, diagnostics)?;
    let remote = options.iter().find(|o| o.name == "scope").and_then(|o| literal_workers(&o.value));
    let remote_literal = match remote {
        Some(workers) if !workers.contains(&0) => {
            if !matches!(call.callee, Callee::Path(_)) {
                let what = if call.name == "closure" { "a closure" } else { "this call" };
                let list = workers.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                diagnostics.error(
                    callee_span,
                    format!(
                        "{what} cannot run on worker {list}: other worker processes run only #[task] functions \
                         (registered by name, never sent as code); spawn a #[task] function there, or scope this to worker 0"
                    ),
                );
            }
            true
        }
        _ => false,
    };
    Some(Spawn { options, call, remote_literal })
}

/// The workers a scope names when it is written as a literal:
/// `Scope::worker(2)`, `Scope::workers([1, 2])`, either followed by
/// `.thread(t)`.
pub(crate) fn literal_workers(expr: &Expr) -> Option<Vec<u64>> {
    match expr {
        Expr::MethodCall(m) if m.method == "thread" || m.method == "into" => literal_workers(&m.receiver),
        Expr::Paren(p) => literal_workers(&p.expr),
        Expr::Call(c) => {
            let Expr::Path(f) = &*c.func else { return None };
            let segments: Vec<String> = f.path.segments.iter().map(|s| s.ident.to_string()).collect();
            let is = |name: &str| {
                segments.len() >= 2 && segments[segments.len() - 2] == "Scope" && segments[segments.len() - 1] == name
            };
            let int = |e: &Expr| match e {
                Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => i.base10_parse::<u64>().ok(),
                _ => None,
            };
            if is("worker") && c.args.len() == 1 {
                return int(&c.args[0]).map(|w| vec![w]);
            }
            if is("workers") && c.args.len() == 1 {
                let Expr::Array(a) = &c.args[0] else { return None };
                return a.elems.iter().map(int).collect();
            }
            None
        }
        _ => None,
    }
}

fn check_call(expr: Expr, diagnostics: &mut Diagnostics) -> Option<Call> {
    match expr {
        Expr::Call(call) => {
            let args = call.args.into_iter().collect();
            match *call.func {
                Expr::Path(path) => {
                    let name = path.path.segments.last().map_or_else(|| "call".to_owned(), |s| s.ident.to_string());
                    Some(Call { callee: Callee::Path(path), args, name })
                }
                other => {
                    let name = if is_closure(&other) { "closure" } else { "call" }.to_owned();
                    Some(Call { callee: Callee::Expr(unparen(other)), args, name })
                }
            }
        }
        Expr::MethodCall(m) => Some(Call {
            name: m.method.to_string(),
            callee: Callee::Method { receiver: *m.receiver, method: m.method, turbofish: m.turbofish },
            args: m.args.into_iter().collect(),
        }),
        Expr::Paren(p) => check_call(*p.expr, diagnostics),
        Expr::Path(path) => {
            let text = quote::quote!(#path).to_string().replace(' ', "");
            diagnostics.error(
                path.span(),
                format!("`{text}` is not called: spawn! needs a call such as `spawn!({text}(...))`"),
            );
            None
        }
        Expr::Closure(c) => {
            diagnostics.error(
                c.span(),
                "a closure is spawned by calling it: write `spawn!((|x| ...)(arg))`, or `dirk::spawn(|| ...)` for no arguments",
            );
            None
        }
        other => {
            diagnostics.error(
                other.span(),
                "spawn! needs a function call such as `f(a, b)`, `(|x: i64| x + 1)(a)` or `value.method(a)`",
            );
            None
        }
    }
}

fn unparen(expr: Expr) -> Expr {
    match expr {
        Expr::Paren(p) => unparen(*p.expr),
        other => other,
    }
}

fn is_closure(expr: &Expr) -> bool {
    match expr {
        Expr::Closure(_) => true,
        Expr::Paren(p) => is_closure(&p.expr),
        _ => false,
    }
}

fn callee_text(call: &Expr) -> String {
    match call {
        Expr::Call(c) => {
            let f = &c.func;
            format!("{}(..)", quote::quote!(#f).to_string().replace(' ', ""))
        }
        Expr::MethodCall(m) => format!("..{}(..)", m.method),
        _ => "f(..)".to_owned(),
    }
}
