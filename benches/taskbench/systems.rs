//! The systems Task Bench runs on: dirk (dynamic and compiled), rayon and
//! tokio. Each runs a whole graph and returns the wall time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dirk::prelude::*;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use rayon::prelude::*;

use super::kernel::{self, Out};
use super::pattern::Pattern;

/// A graph's dependency lists, computed once: `deps[t][i]`.
pub(crate) struct Shape {
    pub(crate) pattern: Pattern,
    pub(crate) width: usize,
    pub(crate) deps: Arc<Vec<Vec<Vec<usize>>>>,
}

impl Shape {
    pub(crate) fn new(pattern: Pattern, width: usize, steps: usize) -> Shape {
        let deps =
            (0..steps).map(|t| (0..pattern.width_at(t, width)).map(|i| pattern.deps(t, i, width)).collect()).collect();
        Shape { pattern, width, deps: Arc::new(deps) }
    }

    pub(crate) fn tasks(&self) -> usize {
        self.deps.iter().map(Vec::len).sum()
    }
}

pub(crate) trait System {
    fn name(&self) -> &str;
    fn run(&mut self, shape: &Shape, iterations: u64) -> Duration;
}

pub(crate) fn all(threads: usize) -> Vec<Box<dyn System>> {
    vec![
        Box::new(DirkDynamic(Runtime::builder().threads(threads).build().expect("dirk runtime"))),
        Box::new(DirkStatic { rt: Runtime::builder().threads(threads).build().expect("dirk runtime"), cached: None }),
        Box::new(Rayon(rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("rayon pool"))),
        Box::new(Tokio(
            tokio::runtime::Builder::new_multi_thread().worker_threads(threads).build().expect("tokio runtime"),
        )),
    ]
}

#[task]
fn tb_point(pattern: Pattern, width: usize, t: usize, i: usize, iterations: u64, inputs: &[&Out]) -> Out {
    kernel::point(t, i, &pattern.deps(t, i, width), inputs, iterations)
}

struct DirkDynamic(Runtime);

impl System for DirkDynamic {
    fn name(&self) -> &str {
        "dirk dynamic"
    }

    fn run(&mut self, shape: &Shape, iterations: u64) -> Duration {
        let (pattern, width) = (shape.pattern, shape.width);
        let start = Instant::now();
        self.0.run(|| {
            dirk::sync(|| {
                let mut prev: Vec<Task<Out>> = Vec::new();
                for (t, row) in shape.deps.iter().enumerate() {
                    prev = row
                        .iter()
                        .enumerate()
                        .map(|(i, deps)| {
                            let inputs: Vec<Task<Out>> = deps.iter().map(|&d| prev[d].clone()).collect();
                            spawn!(tb_point(pattern, width, t, i, iterations, inputs))
                        })
                        .collect();
                }
            })
            .expect("every point checks out");
        });
        start.elapsed()
    }
}

struct DirkStatic {
    rt: Runtime,
    cached: Option<(u64, Pattern, usize, dirk::Plan<Out>)>,
}

impl System for DirkStatic {
    fn name(&self) -> &str {
        "dirk static"
    }

    fn run(&mut self, shape: &Shape, iterations: u64) -> Duration {
        let fresh = !matches!(&self.cached, Some((it, p, n, _)) if *it == iterations && *p == shape.pattern && *n == shape.tasks());
        if fresh {
            let mut g = dirk::Graph::new();
            let mut prev: Vec<dirk::NodeId> = Vec::new();
            for (t, row) in shape.deps.iter().enumerate() {
                prev = row
                    .iter()
                    .enumerate()
                    .map(|(i, deps)| {
                        let inputs: Vec<dirk::NodeId> = deps.iter().map(|&d| prev[d]).collect();
                        let deps = deps.clone();
                        g.add(&inputs, move |ins| kernel::point(t, i, &deps, ins, iterations))
                    })
                    .collect();
            }
            self.cached = Some((iterations, shape.pattern, shape.tasks(), g.compile()));
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
        let start = Instant::now();
        self.0.install(|| {
            let mut prev: Vec<Out> = Vec::new();
            for (t, row) in shape.deps.iter().enumerate() {
                prev = row
                    .par_iter()
                    .enumerate()
                    .map(|(i, deps)| {
                        let inputs: Vec<&Out> = deps.iter().map(|&d| &prev[d]).collect();
                        kernel::point(t, i, deps, &inputs, iterations)
                    })
                    .collect();
            }
        });
        start.elapsed()
    }
}

struct Tokio(tokio::runtime::Runtime);

type SharedOut = Shared<BoxFuture<'static, Arc<Out>>>;

impl System for Tokio {
    fn name(&self) -> &str {
        "tokio task graph"
    }

    fn run(&mut self, shape: &Shape, iterations: u64) -> Duration {
        let deps = shape.deps.clone();
        let start = Instant::now();
        self.0.block_on(async move {
            let mut all = Vec::new();
            let mut prev: Vec<SharedOut> = Vec::new();
            for (t, row) in deps.iter().enumerate() {
                prev = (0..row.len())
                    .map(|i| {
                        let inputs: Vec<SharedOut> = row[i].iter().map(|&d| prev[d].clone()).collect();
                        let (deps, deps_ti) = (deps.clone(), row[i].clone());
                        let handle = tokio::spawn(async move {
                            let mut outs = Vec::with_capacity(inputs.len());
                            for input in inputs {
                                outs.push(input.await);
                            }
                            let refs: Vec<&Out> = outs.iter().map(|o| &**o).collect();
                            drop(deps);
                            Arc::new(kernel::point(t, i, &deps_ti, &refs, iterations))
                        });
                        let shared = handle.map(|r| r.expect("point task")).boxed().shared();
                        all.push(shared.clone());
                        shared
                    })
                    .collect();
            }
            for point in all {
                point.await;
            }
        });
        start.elapsed()
    }
}
