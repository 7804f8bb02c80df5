//! The front end of `streaming!`: the block's inner `#![dirk(..)]`
//! options, its statements (each a stage, with its `#[dirk(..)]` options),
//! and its tail expression.
//!
//! ```text
//! streaming! {
//!     #![dirk(max_evals = 10, teardown = false, report_allocs)]
//!     let x = sample()?;                              // a stage named `x`; `?` ends it on None
//!     #[dirk(scope = Scope::thread(1), buffer = 64)]
//!     let y: f64 = scale(x, 2.0);                     // options and a type for one stage
//!     write(&file, y);                                // a stage without a name (a sink)
//!     y                                               // the tail: what the Stream yields
//! }
//! ```
//!
//! Option names and literal values are checked here; everything about
//! streaming names is left to the graph.

use proc_macro2::{Span, TokenStream};
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Ident, Token};

use crate::Diagnostics;
use crate::diagnostics::list;

/// Options a stage takes.
pub(crate) const STAGE_OPTIONS: &[&str] = &["scope", "buffer", "max_evals", "name"];
/// Options the region takes.
pub(crate) const REGION_OPTIONS: &[&str] = &["max_evals", "teardown", "report_allocs"];

/// One `name` or `name = value` inside `#[dirk(..)]`.
pub(crate) struct Opt {
    pub(crate) name: Ident,
    pub(crate) value: Option<Expr>,
}

impl syn::parse::Parse for Opt {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name: Ident = input.parse()?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(Opt { name, value })
    }
}

/// The options of a stage or of the region, by name.
#[derive(Default)]
pub(crate) struct Opts(pub(crate) Vec<Opt>);

impl Opts {
    pub(crate) fn get(&self, name: &str) -> Option<&Opt> {
        self.0.iter().find(|o| o.name == name)
    }

    pub(crate) fn value(&self, name: &str) -> Option<&Expr> {
        self.get(name).and_then(|o| o.value.as_ref())
    }
}

/// One statement: a stage.
pub(crate) struct Stmt {
    /// `let name = ..`; `None` for an expression statement or the tail.
    pub(crate) name: Option<Ident>,
    /// The name stats and errors use.
    pub(crate) label: String,
    /// `let name: Type = ..`
    pub(crate) ty: Option<syn::Type>,
    /// The expression, without a trailing `?`.
    pub(crate) expr: Expr,
    /// The trailing `?`, if any.
    pub(crate) question: Option<Token![?]>,
    pub(crate) options: Opts,
    /// Where the statement is, for errors about it as a whole.
    pub(crate) span: Span,
}

/// The tail expression.
pub(crate) enum Tail {
    /// A name: the stream of that stage.
    Name(Ident),
    /// Anything else: a stage of its own, the last of `stmts`.
    Stage,
}

/// A parsed block.
pub(crate) struct Block {
    pub(crate) options: Opts,
    pub(crate) stmts: Vec<Stmt>,
    pub(crate) tail: Option<Tail>,
    pub(crate) span: Span,
}

/// Reads `#[dirk(..)]` attributes into options, checking their names.
fn read_options(attrs: Vec<Attribute>, known: &[&str], what: &str, diagnostics: &mut Diagnostics) -> Opts {
    let mut opts = Opts::default();
    for attr in attrs {
        if !attr.path().is_ident("dirk") {
            diagnostics.error(attr.span(), format!("{what} take only `#[dirk(..)]` attributes, with {}", list(known)));
            continue;
        }
        let parsed = attr.parse_args_with(Punctuated::<Opt, Token![,]>::parse_terminated);
        let items = match parsed {
            Ok(items) => items,
            Err(e) => {
                diagnostics.push(e);
                continue;
            }
        };
        for opt in items {
            let name = opt.name.to_string();
            if !known.contains(&name.as_str()) {
                diagnostics.error(opt.name.span(), format!("unknown option `{name}`: {what} take {}", list(known)));
            } else if let Some(first) = opts.get(&name) {
                diagnostics.conflict(
                    first.name.span(),
                    format!("`{name}` is first given here"),
                    opt.name.span(),
                    format!("`{name}` is given twice: keep one"),
                );
            } else if opt.value.is_none() && name != "report_allocs" {
                diagnostics.error(opt.name.span(), format!("`{name}` needs a value: write `{name} = ...`"));
            } else {
                check_literal(&opt, diagnostics);
                opts.0.push(opt);
            }
        }
    }
    opts
}

/// `buffer = 0` and `max_evals = 0` written as literals are errors now;
/// computed zeros are `Error::Config` when the region starts.
fn check_literal(opt: &Opt, diagnostics: &mut Diagnostics) {
    let Some(Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(int), .. })) = &opt.value else { return };
    if int.base10_parse::<u64>().ok() != Some(0) {
        return;
    }
    match opt.name.to_string().as_str() {
        "buffer" => diagnostics.error(
            int.span(),
            "`buffer = 0` would hold no element: a buffer holds at least 1 (leave it out for a size chosen for throughput)",
        ),
        "max_evals" => diagnostics.error(
            int.span(),
            "`max_evals = 0` would run no iteration: give at least 1, or leave it out to run until the stream ends",
        ),
        _ => {}
    }
}

/// Takes the outer attributes of an expression statement (syn keeps them
/// on the expression).
fn take_attrs(expr: &mut Expr) -> Vec<Attribute> {
    let attrs = match expr {
        Expr::Call(e) => &mut e.attrs,
        Expr::MethodCall(e) => &mut e.attrs,
        Expr::Macro(e) => &mut e.attrs,
        Expr::Path(e) => &mut e.attrs,
        Expr::Block(e) => &mut e.attrs,
        Expr::Try(e) => &mut e.attrs,
        Expr::Binary(e) => &mut e.attrs,
        Expr::Paren(e) => &mut e.attrs,
        _ => return Vec::new(),
    };
    std::mem::take(attrs)
}

/// Methods that name no stage (see [`callee_label`]).
const ADAPTERS: &[&str] = &[
    "unwrap",
    "expect",
    "unwrap_or",
    "unwrap_or_else",
    "unwrap_or_default",
    "ok",
    "err",
    "clone",
    "to_owned",
    "into",
    "lock",
    "borrow",
    "borrow_mut",
    "as_ref",
    "as_mut",
];

/// A stage's name from its expression, when it has no `let`.
fn callee_label(expr: &Expr, index: usize) -> String {
    match expr {
        Expr::Call(c) => match &*c.func {
            Expr::Path(p) => p.path.segments.last().map_or_else(|| format!("stage{index}"), |s| s.ident.to_string()),
            _ => format!("stage{index}"),
        },
        // `sink.send(x).unwrap()` is the stage `send`: adapters that only
        // unwrap, convert or lock say nothing of what the stage does.
        Expr::MethodCall(m) if ADAPTERS.contains(&m.method.to_string().as_str()) => match &*m.receiver {
            receiver @ (Expr::Call(_) | Expr::MethodCall(_) | Expr::Macro(_) | Expr::Try(_)) => {
                callee_label(receiver, index)
            }
            _ => m.method.to_string(),
        },
        Expr::MethodCall(m) => m.method.to_string(),
        Expr::Macro(m) => m.mac.path.segments.last().map_or_else(|| format!("stage{index}"), |s| s.ident.to_string()),
        Expr::Try(t) => callee_label(&t.expr, index),
        _ => format!("stage{index}"),
    }
}

fn split_question(expr: Expr) -> (Expr, Option<Token![?]>) {
    match expr {
        Expr::Try(t) => (*t.expr, Some(t.question_token)),
        other => (other, None),
    }
}

/// Parses the block; `None` when nothing usable was found.
pub(crate) fn parse(input: TokenStream, diagnostics: &mut Diagnostics) -> Option<Block> {
    let span = input.span();
    let parser = |input: ParseStream<'_>| {
        let attrs = input.call(Attribute::parse_inner)?;
        let stmts = input.call(syn::Block::parse_within)?;
        Ok((attrs, stmts))
    };
    let (attrs, raw) = match parser.parse2(input) {
        Ok(parsed) => parsed,
        Err(e) => {
            diagnostics.push(e);
            return None;
        }
    };
    let options = read_options(attrs, REGION_OPTIONS, "regions", diagnostics);
    let mut stmts = Vec::new();
    let mut tail = None;
    let count = raw.len();
    for (i, stmt) in raw.into_iter().enumerate() {
        let last = i + 1 == count;
        match stmt {
            syn::Stmt::Local(local) => {
                if let Some(s) = local_stage(local, diagnostics) {
                    stmts.push(s);
                }
            }
            syn::Stmt::Expr(mut expr, semi) => {
                if semi.is_none() && !last {
                    diagnostics.error(expr.span(), "a stage ends with `;`: only the tail expression goes without");
                    continue;
                }
                let attrs = take_attrs(&mut expr);
                let opts = read_options(attrs, STAGE_OPTIONS, "stages", diagnostics);
                if semi.is_none() {
                    if let Expr::Path(p) = &expr
                        && let Some(ident) = p.path.get_ident()
                        && opts.0.is_empty()
                    {
                        tail = Some(Tail::Name(ident.clone()));
                        continue;
                    }
                    tail = Some(Tail::Stage);
                }
                let label = label_from(&opts).unwrap_or_else(|| match (callee_label(&expr, stmts.len()), semi) {
                    (generic, None) if generic.starts_with("stage") => "tail".to_owned(),
                    (label, _) => label,
                });
                let stmt_span = expr.span();
                let (expr, question) = split_question(expr);
                stmts.push(Stmt { name: None, label, ty: None, expr, question, options: opts, span: stmt_span });
            }
            syn::Stmt::Macro(m) => {
                let opts = read_options(m.attrs, STAGE_OPTIONS, "stages", diagnostics);
                let expr = Expr::Macro(syn::ExprMacro { attrs: Vec::new(), mac: m.mac });
                let label = label_from(&opts).unwrap_or_else(|| callee_label(&expr, stmts.len()));
                if m.semi_token.is_none() && last {
                    tail = Some(Tail::Stage);
                }
                let span = expr.span();
                stmts.push(Stmt { name: None, label, ty: None, expr, question: None, options: opts, span });
            }
            syn::Stmt::Item(item) => {
                diagnostics.error(
                    item.span(),
                    "a streaming block holds stages (`let x = f(..);` or `f(..);`): define items outside it",
                );
            }
        }
    }
    if stmts.is_empty() && tail.is_none() {
        diagnostics.error(span, "streaming! needs at least one stage, such as `let x = source()?;`");
        return None;
    }
    Some(Block { options, stmts, tail, span })
}

fn label_from(opts: &Opts) -> Option<String> {
    match opts.value("name") {
        Some(Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. })) => Some(s.value()),
        _ => None,
    }
}

fn local_stage(local: syn::Local, diagnostics: &mut Diagnostics) -> Option<Stmt> {
    let span = local.span();
    let opts = read_options(local.attrs, STAGE_OPTIONS, "stages", diagnostics);
    if let Some(value) = opts.value("name")
        && !matches!(value, Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(_), .. }))
    {
        diagnostics.error(value.span(), "`name` takes a string literal, such as `name = \"load\"`");
    }
    let (pat, ty) = match local.pat {
        syn::Pat::Type(t) => (*t.pat, Some(*t.ty)),
        other => (other, None),
    };
    let ident = match pat {
        syn::Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
            if let Some(m) = p.mutability {
                diagnostics.error(
                    m.span(),
                    "a stage's name is not a variable and cannot be `mut`: remove `mut` (a stage may mutate the element it reads)",
                );
            }
            p.ident
        }
        other => {
            diagnostics.error(
                other.span(),
                "a stage binds one name, as in `let x = f(..);`: destructure the value inside the next stage instead",
            );
            return None;
        }
    };
    let Some(init) = local.init else {
        diagnostics.error(span, format!("stage `{ident}` needs a value: write `let {ident} = f(..);`"));
        return None;
    };
    if let Some((_, diverge)) = init.diverge {
        diagnostics.error(diverge.span(), "`let .. else` has no meaning for a stage: end the stream with `?` instead");
    }
    let label = label_from(&opts).unwrap_or_else(|| ident.to_string());
    let (expr, question) = split_question(*init.expr);
    Some(Stmt { name: Some(ident), label, ty, expr, question, options: opts, span })
}
