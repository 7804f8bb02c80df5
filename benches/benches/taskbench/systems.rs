//! The systems Task Bench runs on: dirk (dynamic, and compiled with and
//! without its build), rayon and tokio. Each runs a whole graph and returns
//! the wall time; each gets the same precomputed dependency lists.

use std::time::{Duration, Instant};

use dirk::prelude::*;
use dirk_benches::taskbench::kernel::{self, Out};
use dirk_benches::taskbench::pattern::Pattern;
use futures::FutureExt;
use rayon::prelude::*;

/// A graph's dependency lists, `deps[t][i]`, computed once per graph and
/// kept for the whole run (a `&'static` every task can read, as rayon's
/// closures borrow them).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deps(&'static [Vec<Vec<usize>>]);

pub(crate) struct Shape {
    pub(crate) pattern: Pattern,
    pub(crate) deps: Deps,
}

impl Shape {
    pub(crate) fn new(pattern: Pattern, width: usize, steps: usize) -> Shape {
        let deps: Vec<Vec<Vec<usize>>> =
            (0..steps).map(|t| (0..pattern.width_at(t, width)).map(|i| pattern.deps(t, i, width)).collect()).collect();
        Shape { pattern, deps: Deps(Vec::leak(deps)) }
    }

    pub(crate) fn tasks(&self) -> usize {
        self.deps.0.iter().map(Vec::len).sum()
    }
}

pub(crate) trait System {
    fn name(&self) -> &str;
    fn run(&mut self, shape: &Shape, iterations: u64) -> Duration;
}

pub(crate) fn all(threads: usize) -> Vec<Box<dyn System>> {
    let dirk = || Runtime::builder().threads(threads).build().expect("dirk runtime");
    vec![
        Box::new(DirkDynamic(dirk())),
        Box::new(DirkStatic { rt: dirk(), replay: false, cached: None }),
        Box::new(DirkStatic { rt: dirk(), replay: true, cached: None }),
        Box::new(Rayon(rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("rayon pool"))),
        Box::new(Tokio(
            tokio::runtime::Builder::new_multi_thread().worker_threads(threads).build().expect("tokio runtime"),
        )),
    ]
}

#[task]
fn tb_point(deps: Deps, t: usize, i: usize, iterations: u64, inputs: &[&Out]) -> Out {
    kernel::point(t, i, &deps.0[t][i], inputs, iterations)
}

struct DirkDynamic(Runtime);

impl System for DirkDynamic {
    fn name(&self) -> &str {
        "dirk dynamic"
    }

    fn run(&mut self, shape: &Shape, iterations: u64) -> Duration {
        let deps = shape.deps;
        let start = Instant::now();
        self.0.run(|| {
            dirk::sync(|| {
                let mut prev: Vec<Task<Out>> = Vec::new();
                for (t, row) in deps.0.iter().enumerate() {
                    prev = row
                        .iter()
                        .enumerate()
                        .map(|(i, on)| {
                            let inputs: Vec<Task<Out>> = on.iter().map(|&d| prev[d].clone()).collect();
                            spawn!(tb_point(deps, t, i, iterations, inputs))
                        })
                        .collect();
                }
            })
            .expect("every point checks out");
        });
        start.elapsed()
    }
}

/// A compiled plan: built and compiled inside the timer, or (`replay`)
/// compiled once per graph and kernel size and only run inside it.
struct DirkStatic {
    rt: Runtime,
    replay: bool,
    cached: Option<(u64, Pattern, usize, dirk::Plan<Out>)>,
}

fn compile(deps: Deps, iterations: u64) -> dirk::Plan<Out> {
    let mut g = dirk::Graph::new();
    let mut prev: Vec<dirk::NodeId> = Vec::new();
    for (t, row) in deps.0.iter().enumerate() {
        prev = row
            .iter()
            .enumerate()
            .map(|(i, on)| {
                let inputs: Vec<dirk::NodeId> = on.iter().map(|&d| prev[d]).collect();
                g.add(&inputs, move |ins| kernel::point(t, i, &deps.0[t][i], ins, iterations))
            })
            .collect();
    }
    g.compile()
}

impl System for DirkStatic {
    fn name(&self) -> &str {
        if self.replay { "dirk static, replay" } else { "dirk static, build + run" }
    }

    fn run(&mut self, shape: &Shape, iterations: u64) -> Duration {
        if !self.replay {
            let start = Instant::now();
            let mut plan = compile(shape.deps, iterations);
            self.rt.run(|| plan.run()).expect("every point checks out");
            return start.elapsed();
        }
        let key = (iterations, shape.pattern, shape.tasks());
        if !matches!(&self.cached, Some((it, p, n, _)) if (*it, *p, *n) == key) {
            self.cached = Some((iterations, shape.pattern, shape.tasks(), compile(shape.deps, iterations)));
        }
        let (_, _, _, plan) = self.cached.as_mut().expect("compiled above");
        let start = Instant::now();
        self.rt.run(|| plan.run()).expect("every point checks out");
        start.elapsed()
    }
}

struct Rayon(rayon::ThreadPool);

impl System for Rayon {
    fn name(&self) -> &str {
        "rayon par_iter"
    }

    fn run(&mut self, shape: &Shape, iterations: u64) -> Duration {
        let deps = shape.deps;
        let start = Instant::now();
        self.0.install(|| {
            let mut prev: Vec<Out> = Vec::new();
            for (t, row) in deps.0.iter().enumerate() {
                prev = row
                    .par_iter()
                    .enumerate()
                    .map(|(i, on)| {
                        let inputs: Vec<&Out> = on.iter().map(|&d| &prev[d]).collect();
                        kernel::point(t, i, on, &inputs, iterations)
                    })
                    .collect();
            }
        });
        start.elapsed()
    }
}

struct Tokio(tokio::runtime::Runtime);

/// A point's result: its task's `JoinHandle`, shared by the points that read it.
type Handle = futures::future::Shared<
    futures::future::Map<tokio::task::JoinHandle<Out>, fn(Result<Out, tokio::task::JoinError>) -> Out>,
>;

fn joined(result: Result<Out, tokio::task::JoinError>) -> Out {
    result.expect("a point's task")
}

impl System for Tokio {
    fn name(&self) -> &str {
        "tokio task graph"
    }

    fn run(&mut self, shape: &Shape, iterations: u64) -> Duration {
        let deps = shape.deps;
        let start = Instant::now();
        // Spawned from a task on the runtime, as a tokio program builds its
        // graph: spawns then go to that worker's queue, not the global one.
        let graph = self.0.spawn(async move {
            let mut all: Vec<Handle> = Vec::with_capacity(deps.0.iter().map(Vec::len).sum());
            let mut prev: Vec<Handle> = Vec::new();
            for (t, row) in deps.0.iter().enumerate() {
                prev = row
                    .iter()
                    .enumerate()
                    .map(|(i, on)| {
                        let inputs: Vec<Handle> = on.iter().map(|&d| prev[d].clone()).collect();
                        let task = tokio::spawn(async move {
                            let mut outs = Vec::with_capacity(inputs.len());
                            for input in inputs {
                                outs.push(input.await);
                            }
                            let refs: Vec<&Out> = outs.iter().collect();
                            kernel::point(t, i, on, &refs, iterations)
                        });
                        let handle: Handle = task.map(joined as fn(_) -> Out).shared();
                        all.push(handle.clone());
                        handle
                    })
                    .collect();
            }
            for point in all {
                point.await;
            }
        });
        self.0.block_on(graph).expect("the graph's task");
        start.elapsed()
    }
}
