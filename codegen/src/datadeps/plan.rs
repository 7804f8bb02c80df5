//! Planning a `datadeps!` block: where each root is borrowed, and whether
//! the hazard order can be fixed at compile time.
//!
//! A block is planned statically when every task call is a whole top-level
//! statement (made exactly once, in order) and every place is known (no
//! run-time index). Each task then gets the list of earlier tasks it runs
//! after, reduced to the ones not already implied, and the list of earlier
//! tasks whose bodies must end before its places are evaluated (a task that
//! writes a header the evaluation reads, such as `InOut(v)` before `v[2]`).
//! Any other block is ordered at run time by the roots' trackers.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::graph::{Access, Graph, Relation, Step, is_static, relation};
use super::parse::{Arg, Block};

/// How the tasks of a block are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    /// At compile time: each task carries its predecessors.
    Static,
    /// At run time, by the roots' trackers.
    Dynamic,
}

/// What the static order says about one task.
#[derive(Debug, Default, Clone)]
pub(crate) struct TaskPlan {
    /// Earlier tasks it runs after (not implied by others).
    pub(crate) after: Vec<usize>,
    /// Earlier tasks whose bodies must end before its places are evaluated.
    pub(crate) settle: Vec<usize>,
    /// Whether later tasks refer to it.
    pub(crate) keep: bool,
}

pub(crate) struct Plan {
    pub(crate) order: Order,
    /// Per root of the graph: the top-level statement its borrow goes before.
    pub(crate) guards: Vec<usize>,
    /// Per task, for a static order.
    pub(crate) tasks: Vec<TaskPlan>,
    #[cfg_attr(not(test), allow(dead_code))]
    labels: Vec<String>,
}

pub(crate) fn plan(block: &Block, graph: &Graph) -> Plan {
    let guards = graph.roots.iter().map(|r| r.first_top).collect();
    let labels = block.calls.iter().map(label).collect();
    let statik = block.calls.iter().all(|c| c.straight) && graph.accesses.iter().all(|a| is_static(&a.steps));
    if !statik {
        return Plan { order: Order::Dynamic, guards, tasks: Vec::new(), labels };
    }
    let n = block.calls.len();
    let mut tasks = vec![TaskPlan::default(); n];
    // reach[k]: every task k runs after, directly or not.
    let mut reach: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    for k in 0..n {
        let conflicts: Vec<usize> = (0..k).filter(|&j| conflict(graph, j, k)).collect();
        for &j in conflicts.iter().rev() {
            if !reach[k].contains(&j) {
                tasks[k].after.push(j);
                let implied: Vec<usize> = reach[j].iter().copied().collect();
                reach[k].insert(j);
                reach[k].extend(implied);
            }
        }
        tasks[k].after.sort_unstable();
        tasks[k].settle = (0..k).filter(|&j| must_settle(graph, j, k)).collect();
    }
    for k in 0..n {
        for j in tasks[k].after.clone().into_iter().chain(tasks[k].settle.clone()) {
            tasks[j].keep = true;
        }
    }
    Plan { order: Order::Static, guards, tasks, labels }
}

/// Whether task `k` must run after task `j`.
fn conflict(graph: &Graph, j: usize, k: usize) -> bool {
    graph.of_task(k).any(|a| {
        graph
            .of_task(j)
            .any(|b| a.root == b.root && (a.write || b.write) && relation(&a.steps, &b.steps) != Relation::Disjoint)
    })
}

/// Whether evaluating a place of task `k` reads a header that task `j` may
/// still be writing (or, for a header the evaluation borrows mutably,
/// reading): for each step of the place, the value before it is read when
/// it is a pointer (field steps) or a container (index steps).
fn must_settle(graph: &Graph, j: usize, k: usize) -> bool {
    graph.of_task(k).any(|a| graph.of_task(j).any(|b| a.root == b.root && settles(a, b)))
}

fn settles(a: &Access, b: &Access) -> bool {
    (0..a.steps.len()).any(|m| {
        let before = &a.steps[..m];
        let covers = b.steps.len() <= m && relation(&b.steps, before) == Relation::Overlap;
        match &a.steps[m] {
            Step::Field(_) => b.write && covers,
            Step::Index(_) => {
                let in_header = b.steps.len() > m
                    && matches!(b.steps[m], Step::Field(_))
                    && relation(&b.steps[..m], before) == Relation::Overlap;
                (a.write || b.write) && (covers || in_header)
            }
        }
    })
}

fn label(call: &super::parse::TaskCall) -> String {
    let args: Vec<String> = call
        .args
        .iter()
        .map(|a| match a {
            Arg::Place(p) => p.text.clone(),
            Arg::Value(v) => quote::quote!(#v).to_string().replace(' ', ""),
        })
        .collect();
    format!("{}({})", call.name, args.join(", "))
}

#[cfg_attr(not(test), allow(dead_code))]
impl Plan {
    /// The task graph in Graphviz DOT: the planned order, or the tasks alone
    /// when the order is decided at run time.
    pub(crate) fn dot(&self) -> String {
        let mut out = String::from("digraph datadeps {\n");
        if self.order == Order::Dynamic {
            out.push_str("  // ordered at run time\n");
        }
        for (k, label) in self.labels.iter().enumerate() {
            let _ = writeln!(out, "  t{k} [label={label:?}];");
        }
        for (k, t) in self.tasks.iter().enumerate() {
            for j in &t.after {
                let _ = writeln!(out, "  t{j} -> t{k};");
            }
        }
        out.push('}');
        out
    }
}
