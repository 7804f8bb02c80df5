//! The plan of a `streaming!` block: which stages fuse into one loop, and
//! which edges become rings.
//!
//! - **Fusion.** Stage `p` fuses with stage `c` (no buffer between them,
//!   one loop runs both) when `c` reads nothing but `p` (besides its own
//!   `delay`), `p`'s element goes to `c` alone, both have the same `scope`
//!   (as written), and `p` asks for no `buffer`. Maximal chains of such
//!   pairs are the plan's *groups*; each group is one streaming node.
//! - **Rings.** The last stage of a group writes one ring: none when
//!   nobody reads it, a single-reader ring for one reader, a fan-out ring
//!   for several (each consumer stage, each `delay` read from another
//!   stage, and the tail count as readers). Its capacity is the `buffer`
//!   option of that stage, or a default chosen for throughput.
//! - **Reads.** A consumer reads a single-reader ring by value. From a
//!   fan-out ring it borrows (`&x` uses only) or takes its own clone (any
//!   use by value; `T: Clone` is then required, at that use). A `delay`
//!   read yields the initial value first.

use quote::ToTokens;

use super::graph::Graph;

/// How a consumer reads a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Read {
    /// The only reader: owns each element.
    Owned,
    /// One of several readers, borrowing each element.
    Borrowed,
    /// One of several readers, taking a clone of each element.
    Cloned,
}

/// Who reads a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reader {
    /// Use `use_index` of stage `stage`.
    Stage { stage: usize, use_index: usize },
    /// The `Stream` handle.
    Tail,
}

/// The ring a group writes.
pub(crate) struct Ring {
    /// The stage writing it (the last of its group).
    pub(crate) producer: usize,
    pub(crate) readers: Vec<(Reader, Read)>,
}

/// One streaming node: a chain of stages in one loop.
pub(crate) struct Group {
    pub(crate) stages: Vec<usize>,
    /// The ring the last stage writes, if anyone reads it.
    pub(crate) ring: Option<Ring>,
}

pub(crate) struct Plan {
    pub(crate) groups: Vec<Group>,
    /// The group of every stage.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) group_of: Vec<usize>,
}

impl Plan {
    /// The ring a stage's use reads, and how: `(producer, reader index, read)`.
    pub(crate) fn reader_of(&self, stage: usize, use_index: usize) -> Option<(usize, usize, Read)> {
        self.groups.iter().filter_map(|g| g.ring.as_ref()).find_map(|ring| {
            ring.readers
                .iter()
                .position(|(r, _)| *r == Reader::Stage { stage, use_index })
                .map(|k| (ring.producer, k, ring.readers[k].1))
        })
    }

    /// The ring the tail reads: `(producer, reader index, read)`.
    pub(crate) fn tail_reader(&self) -> Option<(usize, usize, Read)> {
        self.groups.iter().filter_map(|g| g.ring.as_ref()).find_map(|ring| {
            ring.readers.iter().position(|(r, _)| *r == Reader::Tail).map(|k| (ring.producer, k, ring.readers[k].1))
        })
    }
}

fn scope_text(graph: &Graph, stage: usize) -> Option<String> {
    graph.stages[stage].stmt.options.value("scope").map(|e| e.to_token_stream().to_string())
}

/// Plans a checked graph.
pub(crate) fn plan(graph: &Graph) -> Plan {
    let n = graph.stages.len();
    // Every read of stage p's element that needs a ring reader.
    let mut readers: Vec<Vec<Reader>> = vec![Vec::new(); n];
    for (c, stage) in graph.stages.iter().enumerate() {
        for (use_index, u) in stage.inputs(c) {
            readers[u.from].push(Reader::Stage { stage: c, use_index });
        }
    }
    if let Some(t) = graph.tail {
        readers[t].push(Reader::Tail);
    }
    // Fusion: next[p] = c.
    let mut next = vec![None; n];
    let mut fused_into = vec![false; n];
    for (c, stage) in graph.stages.iter().enumerate() {
        let inputs: Vec<_> = stage.inputs(c).collect();
        let [(_, u)] = inputs.as_slice() else { continue };
        let p = u.from;
        if u.delay.is_some() || p >= c || readers[p].len() != 1 || next[p].is_some() {
            continue;
        }
        if graph.stages[p].stmt.options.get("buffer").is_some() || scope_text(graph, p) != scope_text(graph, c) {
            continue;
        }
        next[p] = Some(c);
        fused_into[c] = true;
    }
    let mut groups = Vec::new();
    let mut group_of = vec![0; n];
    for head in (0..n).filter(|&s| !fused_into[s]) {
        let mut stages = vec![head];
        while let Some(c) = next[*stages.last().expect("a group has a head")] {
            stages.push(c);
        }
        let last = *stages.last().expect("a group has a head");
        let many = readers[last].len() > 1;
        let ring = (!readers[last].is_empty()).then(|| Ring {
            producer: last,
            readers: readers[last]
                .iter()
                .map(|&r| {
                    let read = match r {
                        _ if !many => Read::Owned,
                        Reader::Tail => Read::Cloned,
                        Reader::Stage { stage, use_index } => {
                            let u = &graph.stages[stage].uses[use_index];
                            if u.delay.is_some() || u.by_value { Read::Cloned } else { Read::Borrowed }
                        }
                    };
                    (r, read)
                })
                .collect(),
        });
        for &s in &stages {
            group_of[s] = groups.len();
        }
        groups.push(Group { stages, ring });
    }
    Plan { groups, group_of }
}

/// The plan as a DOT graph: a cluster per group (one loop), an edge per
/// read labelled `fused`, `ring`, `fan-out` or `delay`.
#[cfg(test)]
pub(crate) fn to_dot(graph: &Graph, plan: &Plan) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("digraph streaming {\n");
    let label = |s: usize| graph.stages[s].stmt.label.clone();
    for (g, group) in plan.groups.iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_{g} {{ label=\"loop {g}\";");
        for &s in &group.stages {
            let _ = writeln!(out, "    s{s} [label=\"{}\"];", label(s));
        }
        out.push_str("  }\n");
    }
    for (c, stage) in graph.stages.iter().enumerate() {
        for (use_index, u) in stage.uses.iter().enumerate() {
            let kind = if u.from == c && u.delay.is_some() {
                "delay (carried)".to_owned()
            } else if plan.group_of[u.from] == plan.group_of[c] && u.delay.is_none() {
                "fused".to_owned()
            } else {
                let (_, _, read) = plan.reader_of(c, use_index).expect("every read has a ring");
                let fan = plan.groups[plan.group_of[u.from]].ring.as_ref().is_some_and(|r| r.readers.len() > 1);
                let ring = if fan { "fan-out" } else { "ring" };
                let how = match read {
                    Read::Owned => "",
                    Read::Borrowed => ", borrowed",
                    Read::Cloned => ", cloned",
                };
                let delay = if u.delay.is_some() { "delay, " } else { "" };
                format!("{delay}{ring}{how}")
            };
            let _ = writeln!(out, "  s{} -> s{c} [label=\"{kind}\"];", u.from);
        }
    }
    if let Some((producer, _, read)) = plan.tail_reader() {
        let how = if read == Read::Cloned { "fan-out, cloned" } else { "ring" };
        let _ = writeln!(out, "  s{producer} -> tail [label=\"{how}\"];");
    }
    out.push_str("}\n");
    out
}
