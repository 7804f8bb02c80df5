//! The task graph in Graphviz DOT: one node per task, one edge per input.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::Trace;

/// Renders the tasks of `trace` and their dependencies as a DOT graph
/// (`dot -Tsvg graph.dot > graph.svg`). Failed tasks are drawn red.
pub fn dot(trace: &Trace) -> String {
    let mut nodes = BTreeMap::new();
    for run in trace.tasks() {
        nodes.insert(run.task, (run.name, run.failed));
    }
    for (from, to) in trace.edges() {
        for task in [from, to] {
            nodes.entry(*task).or_insert((trace.name_of(*task).unwrap_or("task"), false));
        }
    }
    let mut out = String::from(
        "digraph dirk {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fillcolor=\"#eef3fb\", fontname=\"sans-serif\"];\n",
    );
    for (task, (name, failed)) in &nodes {
        let color = if *failed { ", fillcolor=\"#f8d0d0\"" } else { "" };
        let _ = writeln!(out, "  t{task} [label=\"{}\\n#{task}\"{color}];", name.replace('"', "'"));
    }
    for (from, to) in trace.edges() {
        let _ = writeln!(out, "  t{from} -> t{to};");
    }
    out.push_str("}\n");
    out
}
