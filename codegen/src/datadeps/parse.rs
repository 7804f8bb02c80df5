//! The front end of `datadeps!`: the block's statements, with every task
//! call found, parsed and replaced by a placeholder.
//!
//! A task call is a call expression with at least one argument marked
//! `In(..)`, `Out(..)` or `InOut(..)`. Its marked arguments must be places:
//! a variable, then fields, then indexes (`x`, `s.a`, `v[i][a..b]`,
//! `m[(r, c)]`). The walk also records, in program order, every other use
//! of a variable (for the "touched outside a task" check), which names the
//! block declares itself (for shadowing, and for roots that would not
//! outlive the tasks), and the `fetch`/`wait` calls to check.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Ident, Member, Pat, Stmt};

use crate::Diagnostics;

/// The argument markers, as users write them.
pub(crate) const MARKERS: &[&str] = &["In", "Out", "InOut"];

/// Methods that wait for a task; refused inside the block.
const WAITS: &[&str] = &["fetch", "wait", "wait_timeout"];

/// A parsed block: its statements with task calls replaced by
/// placeholders, and what the walk found.
pub(crate) struct Block {
    pub(crate) stmts: Vec<Stmt>,
    pub(crate) calls: Vec<TaskCall>,
    pub(crate) uses: Vec<Use>,
}

/// How a marked argument uses its place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    In,
    Out,
    InOut,
}

impl Mode {
    pub(crate) fn writes(self) -> bool {
        self != Mode::In
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::In => "In",
            Mode::Out => "Out",
            Mode::InOut => "InOut",
        }
    }
}

/// One call that becomes a task.
pub(crate) struct TaskCall {
    /// Position in the order the block makes its tasks.
    pub(crate) id: usize,
    pub(crate) callee: Callee,
    /// The task's name: the function's name, or "closure".
    pub(crate) name: String,
    pub(crate) args: Vec<Arg>,
    /// The top-level statement the call is in.
    pub(crate) top: usize,
    /// Whether the call is a whole top-level statement (`f(..);`,
    /// `let t = f(..);` or the block's value): made exactly once, in order.
    pub(crate) straight: bool,
}

pub(crate) enum Callee {
    /// `f`, `module::f`, `Type::f`: named inside the task.
    Path(syn::ExprPath),
    /// Any other callee, evaluated before the arguments.
    Expr(Expr),
}

pub(crate) enum Arg {
    Place(PlaceArg),
    Value(Expr),
}

/// `In(p)`, `Out(p)` or `InOut(p)`.
pub(crate) struct PlaceArg {
    pub(crate) mode: Mode,
    pub(crate) place: Place,
    /// The argument as written, for messages: "InOut(v[i])".
    pub(crate) text: String,
    pub(crate) span: Span,
}

/// A place: a root variable, fields, then indexes.
pub(crate) struct Place {
    pub(crate) root: Ident,
    pub(crate) fields: Vec<Member>,
    pub(crate) indexes: Vec<Expr>,
    /// Whether the root is a name the block declares itself.
    pub(crate) declared_inside: bool,
}

/// A use of a variable outside any place.
pub(crate) struct Use {
    pub(crate) name: String,
    pub(crate) span: Span,
    pub(crate) top: usize,
}

/// Parses the block; problems go to `diagnostics`.
pub(crate) fn parse(input: TokenStream, diagnostics: &mut Diagnostics) -> Option<Block> {
    let mut stmts = match syn::Block::parse_within.parse2(input) {
        Ok(stmts) => stmts,
        Err(e) => {
            diagnostics.push(e);
            return None;
        }
    };
    let mut walker =
        Walker { diagnostics, calls: Vec::new(), uses: Vec::new(), scopes: vec![Vec::new()], top: 0, direct: None };
    for (top, stmt) in stmts.iter_mut().enumerate() {
        walker.top = top;
        walker.direct = direct_call(stmt).map(|e| e as *const Expr);
        walker.visit_stmt_mut(stmt);
    }
    let Walker { calls, uses, .. } = walker;
    Some(Block { stmts, calls, uses })
}

/// The call a top-level statement consists of, if any.
fn direct_call(stmt: &Stmt) -> Option<&Expr> {
    let expr = match stmt {
        Stmt::Expr(e, _) => e,
        Stmt::Local(local) => &local.init.as_ref()?.expr,
        _ => return None,
    };
    let mut expr = expr;
    while let Expr::Paren(p) = expr {
        expr = &p.expr;
    }
    matches!(expr, Expr::Call(_)).then_some(expr)
}

/// The marker an expression is a call of (`In(x)` gives `In`).
fn marker(expr: &Expr) -> Option<(Mode, &syn::ExprCall)> {
    let Expr::Call(call) = expr else { return None };
    let Expr::Path(path) = &*call.func else { return None };
    let ident = path.path.get_ident()?;
    let mode = match ident.to_string().as_str() {
        "In" => Mode::In,
        "Out" => Mode::Out,
        "InOut" => Mode::InOut,
        _ => return None,
    };
    Some((mode, call))
}

fn has_marker(args: &syn::punctuated::Punctuated<Expr, syn::Token![,]>) -> bool {
    args.iter().any(|a| marker(a).is_some())
}

struct Walker<'d> {
    diagnostics: &'d mut Diagnostics,
    calls: Vec<TaskCall>,
    uses: Vec<Use>,
    /// Names the block declares, innermost scope last.
    scopes: Vec<Vec<String>>,
    top: usize,
    /// The expression the current top-level statement consists of.
    direct: Option<*const Expr>,
}

impl Walker<'_> {
    fn declared(&self, name: &str) -> bool {
        self.scopes.iter().any(|s| s.iter().any(|n| n == name))
    }

    fn declare(&mut self, pat: &Pat) {
        let mut names = Vec::new();
        collect_bindings(pat, &mut names);
        self.scopes.last_mut().expect("a scope is open").extend(names);
    }

    fn scoped(&mut self, f: impl FnOnce(&mut Self)) {
        self.scopes.push(Vec::new());
        f(self);
        self.scopes.pop();
    }

    fn use_of(&mut self, ident: &Ident) {
        let name = ident.to_string();
        if !self.declared(&name) {
            self.uses.push(Use { name, span: ident.span(), top: self.top });
        }
    }

    /// Records the variables a macro's tokens mention, and refuses markers
    /// inside it (the macro's expansion cannot be seen from here).
    fn scan_tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        for (i, tree) in trees.iter().enumerate() {
            match tree {
                TokenTree::Group(g) => self.scan_tokens(g.stream()),
                TokenTree::Ident(ident) => {
                    let after_dot = i > 0
                        && matches!(&trees[i - 1], TokenTree::Punct(p) if p.as_char() == '.' || p.as_char() == ':');
                    let next = trees.get(i + 1);
                    let is_path_or_macro =
                        matches!(next, Some(TokenTree::Punct(p)) if p.as_char() == '!' || p.as_char() == ':');
                    let name = ident.to_string();
                    if MARKERS.contains(&name.as_str()) && matches!(next, Some(TokenTree::Group(_))) {
                        self.diagnostics.error(
                            ident.span(),
                            format!(
                                "datadeps! cannot see task calls inside another macro: make the call `f(.., {name}(..), ..)` a statement of the block"
                            ),
                        );
                    } else if !after_dot && !is_path_or_macro {
                        self.use_of(ident);
                    }
                }
                _ => {}
            }
        }
    }

    /// Parses a task call, replaces it with its placeholder, and records it.
    fn task_call(&mut self, expr: &mut Expr) {
        let straight = self.direct == Some(expr as *const Expr);
        let Expr::Call(call) = expr else { unreachable!("checked by the caller") };
        let (callee, name) = match &mut *call.func {
            Expr::Path(path) if path.qself.is_none() && self.is_root_free(path) => {
                let name = path.path.segments.last().map_or_else(|| "call".to_owned(), |s| s.ident.to_string());
                (Callee::Path(path.clone()), name)
            }
            other => {
                self.visit_expr_mut(other);
                let name = if matches!(unparen(other), Expr::Closure(_)) { "closure" } else { "call" };
                (Callee::Expr(other.clone()), name.to_owned())
            }
        };
        let mut args = Vec::new();
        for arg in call.args.iter_mut() {
            if let Some((mode, inner)) = marker(arg) {
                let text = quote!(#arg).to_string().replace(' ', "");
                let span = arg.span();
                let inner = inner.clone();
                if let Some(place) = self.place_arg(mode, &inner) {
                    args.push(Arg::Place(PlaceArg { mode, place, text, span }));
                }
            } else {
                self.visit_expr_mut(arg);
                args.push(Arg::Value(arg.clone()));
            }
        }
        let id = self.calls.len();
        self.calls.push(TaskCall { id, callee, name, args, top: self.top, straight });
        *expr = placeholder(id);
    }

    /// A path callee that names no variable of the block (a function).
    fn is_root_free(&self, path: &syn::ExprPath) -> bool {
        match path.path.get_ident() {
            Some(ident) => !self.declared(&ident.to_string()),
            None => true,
        }
    }

    fn place_arg(&mut self, mode: Mode, call: &syn::ExprCall) -> Option<Place> {
        let name = mode.name();
        if call.args.len() != 1 {
            self.diagnostics
                .error(call.span(), format!("`{name}` marks one argument: write `{name}(x)`, once per place"));
            return None;
        }
        let expr = &call.args[0];
        match self.place(expr) {
            Ok(mut place) => {
                for index in &mut place.indexes {
                    self.visit_expr_mut(index);
                }
                place.declared_inside = self.declared(&place.root.to_string());
                Some(place)
            }
            Err(e) => {
                self.diagnostics.push(e);
                None
            }
        }
    }

    /// `x`, `*x`, `x.a.b`, `x.a[i][j..k]`.
    fn place(&self, expr: &Expr) -> syn::Result<Place> {
        match expr {
            Expr::Paren(p) => self.place(&p.expr),
            Expr::Group(g) => self.place(&g.expr),
            Expr::Path(path) if path.qself.is_none() => match path.path.get_ident() {
                Some(root) => {
                    Ok(Place { root: root.clone(), fields: Vec::new(), indexes: Vec::new(), declared_inside: false })
                }
                None => Err(not_a_place(expr)),
            },
            Expr::Unary(u) if matches!(u.op, syn::UnOp::Deref(_)) => {
                let place = self.place(&u.expr)?;
                if !place.fields.is_empty() || !place.indexes.is_empty() {
                    return Err(syn::Error::new(
                        expr.span(),
                        "datadeps! follows `*` only on the variable itself (`*r`); a reference in a field or element is followed without `*`",
                    ));
                }
                Ok(place)
            }
            Expr::Field(f) => {
                let mut place = self.place(&f.base)?;
                if !place.indexes.is_empty() {
                    let field = &f.member;
                    let base = &f.base;
                    return Err(syn::Error::new(
                        f.member.span(),
                        format!(
                            "a place ends with its indexes: `.{}` after an index cannot be tracked on its own; pass `{}` and use `.{}` inside the function",
                            field.to_token_stream(),
                            base.to_token_stream().to_string().replace(' ', ""),
                            field.to_token_stream()
                        ),
                    ));
                }
                place.fields.push(f.member.clone());
                Ok(place)
            }
            Expr::Index(ix) => {
                let mut place = self.place(&ix.expr)?;
                place.indexes.push((*ix.index).clone());
                Ok(place)
            }
            _ => Err(not_a_place(expr)),
        }
    }
}

fn not_a_place(expr: &Expr) -> syn::Error {
    let text = quote!(#expr).to_string();
    syn::Error::new(
        expr.span(),
        format!(
            "`{text}` is not a place: In, Out and InOut take a variable, a field or an index such as `x`, `s.a`, `v[i]` or `m[a..b]`; \
             compute a value into a variable first, or pass a value without a marker"
        ),
    )
}

fn unparen(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(p) => unparen(&p.expr),
        other => other,
    }
}

/// The placeholder left where task call `id` was.
fn placeholder(id: usize) -> Expr {
    let tag = Ident::new(&format!("__dirk_datadeps_call_{id}"), Span::call_site());
    Expr::Verbatim(quote!(#tag))
}

/// The task call id a placeholder stands for.
pub(crate) fn placeholder_id(expr: &Expr) -> Option<usize> {
    let Expr::Verbatim(tokens) = expr else { return None };
    let mut trees = tokens.clone().into_iter();
    let (Some(TokenTree::Ident(tag)), None) = (trees.next(), trees.next()) else { return None };
    tag.to_string().strip_prefix("__dirk_datadeps_call_")?.parse().ok()
}

fn collect_bindings(pat: &Pat, out: &mut Vec<String>) {
    match pat {
        Pat::Ident(p) => {
            out.push(p.ident.to_string());
            if let Some((_, sub)) = &p.subpat {
                collect_bindings(sub, out);
            }
        }
        Pat::Tuple(t) => t.elems.iter().for_each(|p| collect_bindings(p, out)),
        Pat::TupleStruct(t) => t.elems.iter().for_each(|p| collect_bindings(p, out)),
        Pat::Struct(s) => s.fields.iter().for_each(|f| collect_bindings(&f.pat, out)),
        Pat::Slice(s) => s.elems.iter().for_each(|p| collect_bindings(p, out)),
        Pat::Reference(r) => collect_bindings(&r.pat, out),
        Pat::Or(o) => o.cases.iter().for_each(|p| collect_bindings(p, out)),
        Pat::Type(t) => collect_bindings(&t.pat, out),
        Pat::Paren(p) => collect_bindings(&p.pat, out),
        _ => {}
    }
}

impl VisitMut for Walker<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        if let Expr::Call(call) = expr
            && has_marker(&call.args)
        {
            return self.task_call(expr);
        }
        if let Some((mode, call)) = marker(expr) {
            let name = mode.name();
            self.diagnostics.error(
                call.span(),
                format!(
                    "`{name}(..)` marks an argument of a task call: write it inside a call, such as `f({name}(x))`"
                ),
            );
            return;
        }
        match expr {
            Expr::MethodCall(m) if has_marker(&m.args) => {
                self.diagnostics.error(
                    m.method.span(),
                    format!(
                        "a method call cannot be a datadeps! task: call the method as a function, such as `Type::{}(InOut(x), ..)`",
                        m.method
                    ),
                );
            }
            Expr::MethodCall(m) if WAITS.contains(&m.method.to_string().as_str()) => {
                let receiver_is_task = matches!(unparen(&m.receiver), Expr::Call(c) if has_marker(&c.args));
                if receiver_is_task {
                    self.diagnostics.error(m.method.span(), wait_message(&m.method));
                    visit_mut::visit_expr_mut(self, expr);
                } else {
                    let receiver = (*m.receiver).clone();
                    visit_mut::visit_expr_mut(self, expr);
                    let original = expr.clone();
                    *expr = syn::parse_quote_spanned! {receiver.span()=> {
                        let _ = || (&::dirk::__private::datadeps::NoWait::new(&#receiver)).dirk_no_wait();
                        #original
                    }};
                }
            }
            Expr::Path(p) if p.qself.is_none() => {
                if let Some(ident) = p.path.get_ident() {
                    let ident = ident.clone();
                    self.use_of(&ident);
                }
            }
            Expr::Closure(c) => {
                self.scoped(|w| {
                    for input in &c.inputs {
                        w.declare(input);
                    }
                    w.visit_expr_mut(&mut c.body);
                });
            }
            Expr::ForLoop(f) => {
                self.visit_expr_mut(&mut f.expr);
                self.scoped(|w| {
                    w.declare(&f.pat);
                    w.visit_block_mut(&mut f.body);
                });
            }
            Expr::While(wh) => {
                self.scoped(|w| {
                    w.visit_expr_mut(&mut wh.cond);
                    w.visit_block_mut(&mut wh.body);
                });
            }
            Expr::If(i) => {
                self.scoped(|w| {
                    w.visit_expr_mut(&mut i.cond);
                    w.visit_block_mut(&mut i.then_branch);
                });
                if let Some((_, e)) = &mut i.else_branch {
                    self.visit_expr_mut(e);
                }
            }
            Expr::Let(l) => {
                self.visit_expr_mut(&mut l.expr);
                self.declare(&l.pat);
            }
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_arm_mut(&mut self, arm: &mut syn::Arm) {
        self.scoped(|w| {
            w.declare(&arm.pat);
            if let Some((_, guard)) = &mut arm.guard {
                w.visit_expr_mut(guard);
            }
            w.visit_expr_mut(&mut arm.body);
        });
    }

    fn visit_block_mut(&mut self, block: &mut syn::Block) {
        self.scoped(|w| {
            for stmt in &mut block.stmts {
                w.visit_stmt_mut(stmt);
            }
        });
    }

    fn visit_local_mut(&mut self, local: &mut syn::Local) {
        if let Some(init) = &mut local.init {
            self.visit_expr_mut(&mut init.expr);
            if let Some((_, diverge)) = &mut init.diverge {
                self.visit_expr_mut(diverge);
            }
        }
        self.declare(&local.pat);
    }

    fn visit_item_mut(&mut self, _: &mut syn::Item) {
        // Items cannot capture the block's variables.
    }

    fn visit_macro_mut(&mut self, mac: &mut syn::Macro) {
        self.scan_tokens(mac.tokens.clone());
    }
}

pub(crate) fn wait_message(method: &Ident) -> String {
    format!(
        "`{method}` waits for a task, which datadeps! does not allow inside its block: return the handle from the block \
         and call `{method}` after it, or pass the handle to a task call as an argument"
    )
}
