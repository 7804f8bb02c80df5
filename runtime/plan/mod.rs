//! Compiled plans: a task graph built once and run many times.
//!
//! When the shape of a computation is known before it runs (the same
//! stencil every time step, a fixed pipeline of stages), building it once
//! removes the per-task work of dynamic spawning: no allocation, no
//! listener lists, no reference counts per node at run time. A [`Graph`]
//! collects nodes (a function of its inputs' values); [`Graph::compile`]
//! turns it into a [`Plan`] with successor lists and in-degrees; every
//! [`Plan::run`] resets one counter per node and executes the graph on the
//! current runtime's threads (see [`run`] for the protocol).
//!
//! ```
//! let mut g = dirk::Graph::new();
//! let a = g.add(&[], |_| 1_u64);
//! let b = g.add(&[a], |x| x[0] + 1);
//! let c = g.add(&[a], |x| x[0] * 10);
//! let d = g.add(&[b, c], |x| x[0] + x[1]);
//! let mut plan = g.compile();
//! plan.run()?;
//! assert_eq!(plan.output(d), Some(&12));
//! plan.run()?; // and again, without rebuilding
//! assert_eq!(plan.output(d), Some(&12));
//! # Ok::<(), dirk::Error>(())
//! ```

mod run;

use std::cell::UnsafeCell;
use std::sync::Arc;

use crate::Error;

/// A node of a [`Graph`]: its position, used to name inputs and outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u32);

impl NodeId {
    /// The node's index in the order nodes were added.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

type NodeFn<T> = Box<dyn Fn(&[&T]) -> T + Send + Sync>;

/// A task graph under construction. Every node's inputs are nodes added
/// before it, so a graph is acyclic by construction.
pub struct Graph<T> {
    funcs: Vec<NodeFn<T>>,
    inputs: Vec<u32>,
    input_starts: Vec<u32>,
}

impl<T> std::fmt::Debug for Graph<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph").field("nodes", &self.funcs.len()).field("edges", &self.inputs.len()).finish()
    }
}

impl<T: Send + Sync + 'static> Default for Graph<T> {
    fn default() -> Self {
        Graph::new()
    }
}

impl<T: Send + Sync + 'static> Graph<T> {
    /// An empty graph.
    pub fn new() -> Self {
        Graph { funcs: Vec::new(), inputs: Vec::new(), input_starts: vec![0] }
    }

    /// Adds a node computing `f` from the values of `inputs` (in that
    /// order) and returns its id.
    ///
    /// # Panics
    ///
    /// When an input is not a node of this graph (a programming error, like
    /// indexing out of bounds), or past four billion nodes.
    pub fn add(&mut self, inputs: &[NodeId], f: impl Fn(&[&T]) -> T + Send + Sync + 'static) -> NodeId {
        let id = u32::try_from(self.funcs.len()).expect("a graph holds at most u32::MAX nodes");
        for input in inputs {
            assert!(input.0 < id, "input {} of node {id} is not an earlier node of this graph", input.0);
        }
        self.inputs.extend(inputs.iter().map(|i| i.0));
        self.input_starts.push(self.inputs.len() as u32);
        self.funcs.push(Box::new(f));
        NodeId(id)
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.funcs.len()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.funcs.is_empty()
    }

    /// Compiles the graph: successor lists, in-degrees and the roots.
    pub fn compile(self) -> Plan<T> {
        let n = self.funcs.len();
        let mut succ_count = vec![0u32; n + 1];
        let in_degree: Vec<u32> = (0..n)
            .map(|node| {
                let ins = &self.inputs[self.input_starts[node] as usize..self.input_starts[node + 1] as usize];
                for &i in ins {
                    succ_count[i as usize + 1] += 1;
                }
                ins.len() as u32
            })
            .collect();
        for k in 0..n {
            succ_count[k + 1] += succ_count[k];
        }
        let succ_starts = succ_count.clone();
        let mut fill = succ_count;
        let mut successors = vec![0u32; self.inputs.len()];
        for node in 0..n {
            for &i in &self.inputs[self.input_starts[node] as usize..self.input_starts[node + 1] as usize] {
                successors[fill[i as usize] as usize] = node as u32;
                fill[i as usize] += 1;
            }
        }
        let roots = (0..n as u32).filter(|&k| in_degree[k as usize] == 0).collect();
        let shape = Shape {
            funcs: self.funcs,
            inputs: self.inputs,
            input_starts: self.input_starts,
            successors,
            succ_starts,
            in_degree,
            roots,
        };
        Plan { state: Arc::new(run::RunState::new(shape)), runs: 0 }
    }
}

/// The immutable part of a compiled plan.
pub(crate) struct Shape<T> {
    funcs: Vec<NodeFn<T>>,
    inputs: Vec<u32>,
    input_starts: Vec<u32>,
    successors: Vec<u32>,
    succ_starts: Vec<u32>,
    in_degree: Vec<u32>,
    roots: Vec<u32>,
}

impl<T> Shape<T> {
    fn inputs_of(&self, node: usize) -> &[u32] {
        &self.inputs[self.input_starts[node] as usize..self.input_starts[node + 1] as usize]
    }

    fn successors_of(&self, node: usize) -> &[u32] {
        &self.successors[self.succ_starts[node] as usize..self.succ_starts[node + 1] as usize]
    }
}

/// A compiled [`Graph`], ready to run any number of times.
pub struct Plan<T> {
    state: Arc<run::RunState<T>>,
    runs: u64,
}

impl<T> std::fmt::Debug for Plan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan").field("nodes", &self.state.shape.funcs.len()).field("runs", &self.runs).finish()
    }
}

impl<T: Send + Sync + 'static> Plan<T> {
    /// Runs every node once, on the current runtime's threads, each after
    /// its inputs. Returns the first failure (a node that panicked); nodes
    /// downstream of a failure do not run, every other node does.
    pub fn run(&mut self) -> Result<(), Error> {
        self.runs += 1;
        run::execute(&self.state)
    }

    /// The value a node computed in the last run (`None` before the first
    /// run, or when the node failed or did not run).
    pub fn output(&self, node: NodeId) -> Option<&T> {
        self.state.output(node.index())
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.state.shape.funcs.len()
    }

    /// Whether the plan has no nodes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One value slot per node.
struct Slot<T>(UnsafeCell<Option<T>>);

// SAFETY: a slot is written only by the runner that executes its node
// (once per run) and read by the node's successors after they observed its
// completion through the counters, or by `Plan::output` when no run is in
// progress (`run` takes `&mut Plan`).
unsafe impl<T: Send + Sync> Sync for Slot<T> {}
