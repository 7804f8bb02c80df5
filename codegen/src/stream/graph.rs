//! The graph of a `streaming!` block: one node per stage, one edge per
//! streaming name a stage's expression uses.
//!
//! A use is found by walking the expression: a path that is exactly a
//! stage's name (and not shadowed by a closure parameter, a `let`, a `for`
//! or a `match` pattern inside the expression) reads that stage's element;
//! `delay(name, init)` reads its previous element. A use written `&name`
//! only borrows the element; any other use takes it by value. Names inside
//! macro calls (`println!("{x}")`, `vec![x]`) are found in the macro's
//! tokens and count as taken by value.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{Expr, Ident, Pat};

use super::parse::{Block, Stmt, Tail};
use crate::Diagnostics;

/// How a stage reads one stream.
pub(crate) struct Use {
    /// The stage whose element is read.
    pub(crate) from: usize,
    /// `delay(name, init)`: the initial element and the call's span.
    pub(crate) delay: Option<(Expr, Span)>,
    /// Whether some use takes the element by value (not only `&name`).
    pub(crate) by_value: bool,
    /// The first use, for errors and for glue placed at it.
    pub(crate) span: Span,
}

/// A stage and what it reads, in order of first use.
pub(crate) struct Stage {
    pub(crate) stmt: Stmt,
    pub(crate) uses: Vec<Use>,
}

impl Stage {
    /// The `delay` of this stage's own name, if it reads it.
    pub(crate) fn self_delay(&self, me: usize) -> Option<&Use> {
        self.uses.iter().find(|u| u.from == me && u.delay.is_some())
    }

    /// The reads that are edges from stages (everything but a self-delay).
    pub(crate) fn inputs(&self, me: usize) -> impl Iterator<Item = (usize, &Use)> {
        self.uses.iter().enumerate().filter(move |(_, u)| !(u.from == me && u.delay.is_some()))
    }
}

/// The whole block as a graph.
pub(crate) struct Graph {
    pub(crate) options: super::parse::Opts,
    pub(crate) stages: Vec<Stage>,
    /// The stage the `Stream` reads, if the block has a tail.
    pub(crate) tail: Option<usize>,
    /// Where the tail is, for glue placed at it.
    pub(crate) tail_span: Span,
}

/// Builds the graph; name problems go to `diagnostics`.
pub(crate) fn build(block: Block, diagnostics: &mut Diagnostics) -> Graph {
    let mut names: HashMap<String, usize> = HashMap::new();
    for (i, stmt) in block.stmts.iter().enumerate() {
        if let Some(name) = &stmt.name {
            let key = name.to_string();
            if let Some(&first) = names.get(&key) {
                let first_span = block.stmts[first].name.as_ref().map_or(stmt.span, Ident::span);
                diagnostics.conflict(
                    first_span,
                    format!("`{key}` is first defined here"),
                    name.span(),
                    format!("`{key}` is defined twice: give each stage its own name"),
                );
            } else {
                names.insert(key, i);
            }
        }
    }
    let mut stages = Vec::with_capacity(block.stmts.len());
    for stmt in block.stmts {
        let mut finder = Finder { names: &names, uses: Vec::new(), shadowed: Vec::new(), errors: Vec::new() };
        finder.visit_expr(&stmt.expr);
        for (span, message) in finder.errors {
            diagnostics.error(span, message);
        }
        check_constant_options(&stmt.options, &names, diagnostics);
        stages.push(Stage { stmt, uses: finder.uses });
    }
    check_constant_options(&block.options, &names, diagnostics);
    let (tail, tail_span) = match block.tail {
        None => (None, block.span),
        Some(Tail::Stage) => (Some(stages.len() - 1), stages.last().map_or(block.span, |s| s.stmt.span)),
        Some(Tail::Name(ident)) => match names.get(&ident.to_string()) {
            Some(&i) => (Some(i), ident.span()),
            None => {
                diagnostics.error(
                    ident.span(),
                    format!(
                        "the tail `{ident}` is not a stage of this block: end the block with the name of a stage (`let {ident} = ...;` above), or leave the tail out"
                    ),
                );
                (None, ident.span())
            }
        },
    };
    Graph { options: block.options, stages, tail, tail_span }
}

/// Option values are computed once, before the region starts: a streaming
/// name cannot appear in them.
fn check_constant_options(opts: &super::parse::Opts, names: &HashMap<String, usize>, diagnostics: &mut Diagnostics) {
    for opt in &opts.0 {
        if let Some(value) = &opt.value {
            for (ident, span) in mentioned(value, names) {
                diagnostics.error(span, outside_message(&ident, &format!("the option `{}`", opt.name)));
            }
        }
    }
}

pub(crate) fn outside_message(name: &str, place: &str) -> String {
    format!(
        "`{name}` is a stream: its elements exist only inside the stages that read it, not in {place}, which is computed once before the region starts; use a constant here"
    )
}

/// Streaming names mentioned anywhere in `expr` (shadowing ignored).
fn mentioned(expr: &Expr, names: &HashMap<String, usize>) -> Vec<(String, Span)> {
    let mut finder = Finder { names, uses: Vec::new(), shadowed: Vec::new(), errors: Vec::new() };
    finder.visit_expr(expr);
    let mut out: Vec<(String, Span)> = Vec::new();
    for u in finder.uses {
        let name = names.iter().find(|(_, i)| **i == u.from).map(|(n, _)| n.clone()).unwrap_or_default();
        out.push((name, u.span));
    }
    out
}

/// Collects the identifiers a pattern binds.
pub(crate) fn bound_names(pat: &Pat, out: &mut Vec<String>) {
    struct Binds<'a>(&'a mut Vec<String>);
    impl<'ast> Visit<'ast> for Binds<'_> {
        fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
            self.0.push(p.ident.to_string());
            syn::visit::visit_pat_ident(self, p);
        }
    }
    Binds(out).visit_pat(pat);
}

struct Finder<'n> {
    names: &'n HashMap<String, usize>,
    uses: Vec<Use>,
    shadowed: Vec<Vec<String>>,
    errors: Vec<(Span, String)>,
}

impl Finder<'_> {
    fn lookup(&self, ident: &Ident) -> Option<usize> {
        let key = ident.to_string();
        if self.shadowed.iter().any(|scope| scope.contains(&key)) {
            return None;
        }
        self.names.get(&key).copied()
    }

    fn record(&mut self, from: usize, delay: Option<(Expr, Span)>, by_value: bool, span: Span) {
        let is_delay = delay.is_some();
        if let Some(u) = self.uses.iter_mut().find(|u| u.from == from && u.delay.is_some() == is_delay) {
            if is_delay {
                self.errors
                    .push((span, "this stage already reads this `delay`: read it once, in one place".to_owned()));
            }
            u.by_value |= by_value;
            return;
        }
        self.uses.push(Use { from, delay, by_value, span });
    }

    fn path_ident(expr: &Expr) -> Option<&Ident> {
        match expr {
            Expr::Path(p) if p.qself.is_none() => p.path.get_ident(),
            _ => None,
        }
    }

    fn scan_tokens(&mut self, tokens: TokenStream) {
        for tree in tokens {
            match tree {
                TokenTree::Ident(ident) => {
                    if let Some(from) = self.lookup(&ident) {
                        self.record(from, None, true, ident.span());
                    }
                }
                TokenTree::Group(g) => self.scan_tokens(g.stream()),
                TokenTree::Literal(lit) => self.scan_format_string(&lit),
                TokenTree::Punct(_) => {}
            }
        }
    }

    /// Inline format arguments: `"{x}"`, `"{x:?}"`.
    fn scan_format_string(&mut self, lit: &proc_macro2::Literal) {
        let text = lit.to_string();
        if !text.starts_with('"') {
            return;
        }
        let mut rest = text.as_str();
        while let Some(open) = rest.find('{') {
            rest = &rest[open + 1..];
            if rest.starts_with('{') {
                rest = &rest[1..];
                continue;
            }
            let end = rest.find(['}', ':']).unwrap_or(rest.len());
            let candidate = &rest[..end];
            if !candidate.is_empty()
                && let Some(&from) = self.names.get(candidate)
                && !self.shadowed.iter().any(|s| s.iter().any(|n| n == candidate))
            {
                self.record(from, None, true, lit.span());
            }
        }
    }

    fn with_scope(&mut self, names: Vec<String>, f: impl FnOnce(&mut Self)) {
        self.shadowed.push(names);
        f(self);
        self.shadowed.pop();
    }
}

impl<'ast> Visit<'ast> for Finder<'_> {
    fn visit_expr(&mut self, expr: &'ast Expr) {
        match expr {
            Expr::Path(p) => {
                if let Some(ident) = Self::path_ident(expr)
                    && let Some(from) = self.lookup(ident)
                {
                    self.record(from, None, true, ident.span());
                    return;
                }
                syn::visit::visit_expr_path(self, p);
            }
            Expr::Reference(r) if r.mutability.is_none() => {
                if let Some(ident) = Self::path_ident(&r.expr)
                    && let Some(from) = self.lookup(ident)
                {
                    self.record(from, None, false, ident.span());
                    return;
                }
                self.visit_expr(&r.expr);
            }
            Expr::Call(call) if matches!(&*call.func, Expr::Path(p) if p.path.is_ident("delay")) => {
                self.visit_delay(call);
            }
            Expr::Try(t) => {
                self.errors.push((
                    t.question_token.span(),
                    "`?` ends a stream only at the end of a stage: move this call into a `let` of its own, as in `let v = call()?;`".to_owned(),
                ));
                self.visit_expr(&t.expr);
            }
            Expr::Closure(c) => {
                let mut bound = Vec::new();
                for input in &c.inputs {
                    bound_names(input, &mut bound);
                }
                // `?` inside a closure belongs to the closure.
                let mut inner =
                    Finder { names: self.names, uses: Vec::new(), shadowed: Vec::new(), errors: Vec::new() };
                inner.shadowed = self.shadowed.clone();
                inner.shadowed.push(bound);
                inner.visit_expr_allowing_try(&c.body);
                self.errors.extend(inner.errors);
                for u in inner.uses {
                    self.record(u.from, u.delay, u.by_value, u.span);
                }
            }
            Expr::Async(a) => {
                let mut inner =
                    Finder { names: self.names, uses: Vec::new(), shadowed: self.shadowed.clone(), errors: Vec::new() };
                for stmt in &a.block.stmts {
                    inner.visit_stmt(stmt);
                }
                self.errors.extend(inner.errors.into_iter().filter(|(_, m)| !m.starts_with("`?`")));
                for u in inner.uses {
                    self.record(u.from, u.delay, u.by_value, u.span);
                }
            }
            Expr::ForLoop(f) => {
                self.visit_expr(&f.expr);
                let mut bound = Vec::new();
                bound_names(&f.pat, &mut bound);
                self.with_scope(bound, |me| me.visit_block(&f.body));
            }
            _ => syn::visit::visit_expr(self, expr),
        }
    }

    fn visit_block(&mut self, block: &'ast syn::Block) {
        self.shadowed.push(Vec::new());
        for stmt in &block.stmts {
            match stmt {
                syn::Stmt::Local(local) => {
                    if let Some(init) = &local.init {
                        self.visit_expr(&init.expr);
                        if let Some((_, diverge)) = &init.diverge {
                            self.visit_expr(diverge);
                        }
                    }
                    let mut bound = Vec::new();
                    bound_names(&local.pat, &mut bound);
                    if let Some(scope) = self.shadowed.last_mut() {
                        scope.extend(bound);
                    }
                }
                other => self.visit_stmt(other),
            }
        }
        self.shadowed.pop();
    }

    fn visit_arm(&mut self, arm: &'ast syn::Arm) {
        let mut bound = Vec::new();
        bound_names(&arm.pat, &mut bound);
        self.with_scope(bound, |me| {
            if let Some((_, guard)) = &arm.guard {
                me.visit_expr(guard);
            }
            me.visit_expr(&arm.body);
        });
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.scan_tokens(mac.tokens.clone());
    }

    fn visit_item(&mut self, _: &'ast syn::Item) {
        // Items inside an expression cannot see the stage's elements.
    }
}

impl Finder<'_> {
    fn visit_expr_allowing_try(&mut self, expr: &Expr) {
        let before = self.errors.len();
        self.visit_expr(expr);
        // A closure has its own `?`: drop the errors about it.
        let inner = self.errors.split_off(before);
        self.errors.extend(inner.into_iter().filter(|(_, m)| !m.starts_with("`?`")));
    }

    fn visit_delay(&mut self, call: &syn::ExprCall) {
        let span = call.span();
        let args: Vec<&Expr> = call.args.iter().collect();
        let [name, init] = args.as_slice() else {
            self.errors.push((span, "`delay` takes a stage's name and the initial value: `delay(x, init)`".to_owned()));
            return;
        };
        let Some(ident) = Self::path_ident(name) else {
            self.errors.push((
                name.span(),
                "`delay`'s first argument is the name of a stage of this block, as in `delay(x, 0.0)`".to_owned(),
            ));
            return;
        };
        let Some(&from) = self.names.get(&ident.to_string()) else {
            self.errors.push((
                ident.span(),
                format!("`{ident}` is not a stage of this block: `delay` reads the previous element of a stage defined with `let {ident} = ...;`"),
            ));
            return;
        };
        for (other, span) in mentioned(init, self.names) {
            self.errors.push((span, outside_message(&other, "`delay`'s initial value")));
        }
        self.record(from, Some(((*init).clone(), span)), true, span);
    }
}
