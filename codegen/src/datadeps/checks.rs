//! The rules of a `datadeps!` block that can be checked from its tokens:
//!
//! - a root must be declared before the block (the tasks may outlive a
//!   variable of the block);
//! - one call may not take overlapping places when one of them is written
//!   (`f(Out(x), In(x))`): its task would hold a `&mut` and a `&` to the
//!   same memory;
//! - a variable written by some task may not be touched outside a task
//!   from the statement where a task first uses it to the end of the block.
//!
//! rustc enforces the last two as well (the root is borrowed for the whole
//! region); these checks give the message that says what to do.

use std::collections::HashSet;

use super::graph::{Graph, Relation, relation};
use super::parse::{Arg, Block};
use crate::Diagnostics;

pub(crate) fn check(block: &Block, graph: &Graph, diagnostics: &mut Diagnostics) {
    declared_inside(block, diagnostics);
    same_call(graph, diagnostics);
    touched(block, graph, diagnostics);
}

fn declared_inside(block: &Block, diagnostics: &mut Diagnostics) {
    for call in &block.calls {
        for arg in &call.args {
            if let Arg::Place(p) = arg
                && p.place.declared_inside
            {
                let name = &p.place.root;
                diagnostics.error(
                    name.span(),
                    format!(
                        "`{name}` is declared inside the datadeps! block, so it could be dropped while a task still uses it: \
                         declare it before the block"
                    ),
                );
            }
        }
    }
}

fn same_call(graph: &Graph, diagnostics: &mut Diagnostics) {
    for (i, a) in graph.accesses.iter().enumerate() {
        for b in &graph.accesses[i + 1..] {
            if a.task != b.task || a.root != b.root || !(a.write || b.write) {
                continue;
            }
            if relation(&a.steps, &b.steps) != Relation::Overlap {
                continue;
            }
            let message = if a.steps == b.steps && a.write && b.write {
                format!(
                    "`{}` is passed twice to one call and written: a task cannot borrow it mutably twice; pass it once",
                    b.text
                )
            } else if a.steps == b.steps {
                let (w, r) = if a.write { (a, b) } else { (b, a) };
                format!(
                    "`{}` and `{}` in the same call: the task cannot write it and read it at once; pass it once with `InOut`",
                    w.text, r.text
                )
            } else {
                format!(
                    "`{}` overlaps `{}` of the same call, and one of them is written: the task cannot borrow that memory \
                     twice; pass the whole of it once, or split the call",
                    b.text, a.text
                )
            };
            diagnostics.conflict(a.span, format!("`{}` is passed here", a.text), b.span, message);
        }
    }
}

fn touched(block: &Block, graph: &Graph, diagnostics: &mut Diagnostics) {
    let mut noted = HashSet::new();
    for use_ in &block.uses {
        let Some(root) = graph.roots.iter().position(|r| r.writes && r.name == use_.name) else { continue };
        let r = &graph.roots[root];
        if use_.top < r.first_top {
            continue;
        }
        let message = format!(
            "`{}` is used by a task of this datadeps! block, so it cannot be touched outside a task until the block \
             ends: move this use into a task (`f(In({}))`) or after the block",
            r.name, r.name
        );
        if noted.insert(root) {
            let first = graph.accesses.iter().find(|a| a.root == root).map_or(r.ident.span(), |a| a.span);
            diagnostics.conflict(first, format!("`{}` is first used by a task here", r.name), use_.span, message);
        } else {
            diagnostics.error(use_.span, message);
        }
    }
}
