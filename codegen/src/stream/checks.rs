//! Checks on the graph of a `streaming!` block that rustc cannot make:
//!
//! - a cycle made of plain uses (no `delay`) can never start: every stage
//!   of it waits for another. The error names the cycle's stages and
//!   suggests the `delay` that breaks it;
//! - a name used above the `let` that defines it (outside `delay`) reads
//!   like a use of a value that does not exist yet: it is refused, with the
//!   two ways out.
//!
//! Option names, literal zeros and names used where no element exists are
//! reported by the front end and the graph builder.

use super::graph::Graph;
use crate::Diagnostics;

/// Reports cycles and uses before definition.
pub(crate) fn check(graph: &Graph, diagnostics: &mut Diagnostics) {
    let n = graph.stages.len();
    let edges: Vec<Vec<usize>> =
        graph.stages.iter().map(|s| s.uses.iter().filter(|u| u.delay.is_none()).map(|u| u.from).collect()).collect();
    let components = strongly_connected(&edges);
    let mut in_cycle = vec![false; n];
    for component in &components {
        let cyclic = component.len() > 1 || edges[component[0]].contains(&component[0]);
        if !cyclic {
            continue;
        }
        let mut members = component.clone();
        members.sort_unstable();
        for &m in &members {
            in_cycle[m] = true;
        }
        let label = |i: usize| graph.stages[i].stmt.label.clone();
        // Report at the use that closes the cycle: the first use of a stage
        // defined at or after its user.
        let (user, used) = members
            .iter()
            .flat_map(|&i| graph.stages[i].uses.iter().filter(|u| u.delay.is_none()).map(move |u| (i, u)))
            .find(|(i, u)| u.from >= *i && members.contains(&u.from))
            .expect("a cycle has a backward use");
        let message = if members.len() == 1 {
            let x = label(user);
            format!("`{x}` uses itself, so it could never start: read its previous element with `delay({x}, init)`")
        } else {
            let names: Vec<String> = members.iter().map(|&i| format!("`{}`", label(i))).collect();
            let listed = match names.as_slice() {
                [init @ .., last] => format!("{} and {last}", init.join(", ")),
                [] => String::new(),
            };
            let x = label(used.from);
            format!(
                "{listed} form a cycle without `delay`, so none of them could ever start: read one of them from the previous iteration, as in `delay({x}, init)`"
            )
        };
        diagnostics.error(used.span, message);
    }
    for (i, stage) in graph.stages.iter().enumerate() {
        for u in stage.uses.iter().filter(|u| u.delay.is_none() && u.from > i && !in_cycle[i]) {
            let x = &graph.stages[u.from].stmt.label;
            diagnostics.error(
                u.span,
                format!(
                    "`{x}` is used before it is defined: move `let {x} = ...;` above this stage, or read its previous element with `delay({x}, init)`"
                ),
            );
        }
    }
}

/// Tarjan's algorithm, iterative: the strongly connected components of
/// the graph `edges` (node -> the nodes it uses).
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut components = Vec::new();
    let mut next = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work = vec![(root, 0usize)];
        while let Some((v, child)) = work.pop() {
            if child == 0 {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = edges[v].get(child) {
                work.push((v, child + 1));
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                components.push(component);
            }
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
        }
    }
    components
}

#[cfg(test)]
mod tests {
    use super::strongly_connected;

    #[test]
    fn components_of_a_small_graph() {
        // 0 -> 1 -> 2 -> 0, 3 -> 3, 4 -> 0
        let edges = vec![vec![1], vec![2], vec![0], vec![3], vec![0]];
        let mut comps: Vec<Vec<usize>> = strongly_connected(&edges)
            .into_iter()
            .map(|mut c| {
                c.sort_unstable();
                c
            })
            .collect();
        comps.sort();
        assert_eq!(comps, vec![vec![0, 1, 2], vec![3], vec![4]]);
    }
}
