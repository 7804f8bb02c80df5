//! The access graph of a `datadeps!` block: which roots it uses, and each
//! task's accesses as symbolic paths (fields and indexes from a root), with
//! what can be decided about two paths before the program runs.
//!
//! Two paths of one root are *disjoint* when they part at two different
//! fields or at two indexes that do not overlap (literal indexes, per
//! dimension); they *overlap* when one is a prefix of the other, or when
//! they part at overlapping literal indexes; otherwise (an index known only
//! at run time) the answer is *unknown*. Literal ranges followed by an index
//! are folded (`v[2..][1]` is `v[3]`).

use proc_macro2::Span;
use quote::ToTokens;
use syn::{Expr, Ident};

use super::parse::{Arg, Block, Place};

/// A variable that places start from.
pub(crate) struct Root {
    pub(crate) name: String,
    /// The root as first written in a place (its span is the user's).
    pub(crate) ident: Ident,
    /// The first top-level statement with a place on this root.
    pub(crate) first_top: usize,
    /// Whether some place on this root is written.
    pub(crate) writes: bool,
}

/// One marked argument of one task.
pub(crate) struct Access {
    pub(crate) task: usize,
    /// The argument's position in its call.
    pub(crate) arg: usize,
    pub(crate) root: usize,
    pub(crate) steps: Vec<Step>,
    pub(crate) write: bool,
    pub(crate) span: Span,
    pub(crate) text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Field(String),
    Index(Index),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Index {
    /// Literal indexes, one per dimension (`m[(0..2, 3)]` has two).
    Static(Vec<Dim>),
    /// An index known at run time; `pure` when evaluating it twice gives the
    /// same value (names, literals and arithmetic on them).
    Dynamic { text: String, pure: bool },
}

/// One literal index of one dimension: `lo..hi` (`hi` open when `None`),
/// or the single element `lo` when `point`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dim {
    pub(crate) lo: u128,
    pub(crate) hi: Option<u128>,
    pub(crate) point: bool,
}

impl Dim {
    fn disjoint(&self, other: &Dim) -> bool {
        let empty = |d: &Dim| d.hi.is_some_and(|h| h <= d.lo);
        empty(self) || empty(other) || self.hi.is_some_and(|h| h <= other.lo) || other.hi.is_some_and(|h| h <= self.lo)
    }
}

/// What can be said about two paths of one root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Relation {
    Disjoint,
    Overlap,
    Unknown,
}

/// Compares two paths of one root.
pub(crate) fn relation(p: &[Step], q: &[Step]) -> Relation {
    for (a, b) in p.iter().zip(q) {
        match (a, b) {
            (Step::Field(x), Step::Field(y)) => {
                if x != y {
                    return Relation::Disjoint;
                }
            }
            (Step::Index(Index::Static(x)), Step::Index(Index::Static(y))) if x.len() == y.len() => {
                if x.iter().zip(y).any(|(d, e)| d.disjoint(e)) {
                    return Relation::Disjoint;
                }
                if x != y {
                    return Relation::Overlap;
                }
            }
            (
                Step::Index(Index::Dynamic { text: x, pure: true }),
                Step::Index(Index::Dynamic { text: y, pure: true }),
            ) if x == y => {}
            _ => return Relation::Unknown,
        }
    }
    Relation::Overlap
}

/// Whether every step of `p` is known: the path can be planned.
pub(crate) fn is_static(p: &[Step]) -> bool {
    p.iter().all(|s| !matches!(s, Step::Index(Index::Dynamic { .. })))
}

/// The roots and accesses of a block.
pub(crate) struct Graph {
    pub(crate) roots: Vec<Root>,
    pub(crate) accesses: Vec<Access>,
}

impl Graph {
    pub(crate) fn build(block: &Block) -> Graph {
        let mut graph = Graph { roots: Vec::new(), accesses: Vec::new() };
        for call in &block.calls {
            for (arg, a) in call.args.iter().enumerate() {
                let Arg::Place(p) = a else { continue };
                let root = graph.root(&p.place, call.top, p.mode.writes());
                graph.accesses.push(Access {
                    task: call.id,
                    arg,
                    root,
                    steps: steps(&p.place),
                    write: p.mode.writes(),
                    span: p.span,
                    text: p.text.clone(),
                });
            }
        }
        graph
    }

    fn root(&mut self, place: &Place, top: usize, writes: bool) -> usize {
        let name = place.root.to_string();
        if let Some(i) = self.roots.iter().position(|r| r.name == name) {
            let r = &mut self.roots[i];
            r.first_top = r.first_top.min(top);
            r.writes |= writes;
            return i;
        }
        self.roots.push(Root { name, ident: place.root.clone(), first_top: top, writes });
        self.roots.len() - 1
    }

    /// The accesses of task `task`.
    pub(crate) fn of_task(&self, task: usize) -> impl Iterator<Item = &Access> {
        self.accesses.iter().filter(move |a| a.task == task)
    }
}

fn steps(place: &Place) -> Vec<Step> {
    let mut steps: Vec<Step> = place.fields.iter().map(|m| Step::Field(m.to_token_stream().to_string())).collect();
    for index in &place.indexes {
        let step = match static_index(index) {
            Some(dims) => Index::Static(dims),
            None => Index::Dynamic { text: index.to_token_stream().to_string(), pure: pure(index) },
        };
        // `v[a..b][c]` is `v[a + c]`: fold a literal range with what indexes it.
        if let (Index::Static(next), Some(Step::Index(Index::Static(prev)))) = (&step, steps.last())
            && let ([p], [n]) = (prev.as_slice(), next.as_slice())
            && !p.point
        {
            let folded = Dim {
                lo: p.lo + n.lo,
                hi: if n.point { Some(p.lo + n.lo + 1) } else { n.hi.map(|h| p.lo + h).or(p.hi) },
                point: n.point,
            };
            *steps.last_mut().expect("checked") = Step::Index(Index::Static(vec![folded]));
            continue;
        }
        steps.push(Step::Index(step));
    }
    steps
}

fn unparen(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(p) => unparen(&p.expr),
        Expr::Group(g) => unparen(&g.expr),
        other => other,
    }
}

fn literal(expr: &Expr) -> Option<u128> {
    match unparen(expr) {
        Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => i.base10_parse().ok(),
        _ => None,
    }
}

/// The literal dimensions of an index, if it is literal.
fn static_index(expr: &Expr) -> Option<Vec<Dim>> {
    let dim = |e: &Expr| -> Option<Dim> {
        match unparen(e) {
            Expr::Range(r) => {
                let lo = match &r.start {
                    Some(s) => literal(s)?,
                    None => 0,
                };
                let hi = match &r.end {
                    Some(e) => {
                        let end = literal(e)?;
                        Some(if matches!(r.limits, syn::RangeLimits::Closed(_)) { end.checked_add(1)? } else { end })
                    }
                    None => None,
                };
                Some(Dim { lo, hi, point: false })
            }
            other => literal(other).map(|n| Dim { lo: n, hi: Some(n + 1), point: true }),
        }
    };
    match unparen(expr) {
        Expr::Tuple(t) => t.elems.iter().map(dim).collect(),
        other => dim(other).map(|d| vec![d]),
    }
}

/// Whether evaluating the index twice surely gives the same value.
fn pure(expr: &Expr) -> bool {
    match expr {
        Expr::Path(p) => p.qself.is_none() && p.path.get_ident().is_some(),
        Expr::Lit(_) => true,
        Expr::Paren(p) => pure(&p.expr),
        Expr::Group(g) => pure(&g.expr),
        Expr::Binary(b) => pure(&b.left) && pure(&b.right),
        Expr::Unary(u) => !matches!(u.op, syn::UnOp::Deref(_)) && pure(&u.expr),
        Expr::Cast(c) => pure(&c.expr),
        Expr::Tuple(t) => t.elems.iter().all(pure),
        Expr::Range(r) => r.start.as_deref().is_none_or(pure) && r.end.as_deref().is_none_or(pure),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(place: &str) -> Vec<Step> {
        let expr: Expr = syn::parse_str(place).unwrap();
        let mut fields = Vec::new();
        let mut indexes = Vec::new();
        fn walk(e: &Expr, fields: &mut Vec<syn::Member>, indexes: &mut Vec<Expr>) -> Ident {
            match e {
                Expr::Path(p) => p.path.get_ident().unwrap().clone(),
                Expr::Field(f) => {
                    let root = walk(&f.base, fields, indexes);
                    fields.push(f.member.clone());
                    root
                }
                Expr::Index(i) => {
                    let root = walk(&i.expr, fields, indexes);
                    indexes.push((*i.index).clone());
                    root
                }
                _ => panic!("not a place"),
            }
        }
        let root = walk(&expr, &mut fields, &mut indexes);
        steps(&Place { root, fields, indexes, declared_inside: false })
    }

    fn rel(a: &str, b: &str) -> Relation {
        relation(&path(a), &path(b))
    }

    #[test]
    fn fields_and_literal_indexes_are_decided() {
        assert_eq!(rel("s.a", "s.b"), Relation::Disjoint);
        assert_eq!(rel("s.a", "s"), Relation::Overlap);
        assert_eq!(rel("v[0..5]", "v[5..10]"), Relation::Disjoint);
        assert_eq!(rel("v[0..6]", "v[4..10]"), Relation::Overlap);
        assert_eq!(rel("v[3]", "v[2..]"), Relation::Overlap);
        assert_eq!(rel("v[3]", "v[..3]"), Relation::Disjoint);
        assert_eq!(rel("v[1]", "v[1][2]"), Relation::Overlap);
        assert_eq!(rel("m[(0..2, 0..2)]", "m[(2..4, 0..2)]"), Relation::Disjoint);
        assert_eq!(rel("m[(0..2, 0..2)]", "m[(1..3, 1..3)]"), Relation::Overlap);
        assert_eq!(rel("v[2..][1]", "v[3]"), Relation::Overlap);
        assert_eq!(rel("v[2..][1]", "v[4]"), Relation::Disjoint);
        assert_eq!(rel("v[0..=2]", "v[3..]"), Relation::Disjoint);
    }

    #[test]
    fn run_time_indexes_are_unknown_unless_equal() {
        assert_eq!(rel("v[i]", "v[j]"), Relation::Unknown);
        assert_eq!(rel("v[i]", "v[i]"), Relation::Overlap);
        assert_eq!(rel("v[i + 1]", "v[i + 1]"), Relation::Overlap);
        assert_eq!(rel("v[next()]", "v[next()]"), Relation::Unknown);
        assert_eq!(rel("s.a[i]", "s.b[i]"), Relation::Disjoint);
    }
}
