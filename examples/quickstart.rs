//! dirk in five minutes: the opening of Dagger's workshop notebook, in Rust.
//!
//! Run it with `cargo run --release --example quickstart`.

use std::time::{Duration, Instant};

use dirk::prelude::*;

#[task]
fn add(a: f64, b: f64) -> f64 {
    a + b
}

#[task]
fn mul(a: f64, b: f64) -> f64 {
    a * b
}

#[task]
fn div(a: f64, b: f64) -> f64 {
    a / b
}

#[task]
fn sub(a: f64, b: f64) -> f64 {
    a - b
}

/// Some "expensive" steps that take different times: `f(i)` for the outer
/// loop, `g(i, j, y)` for the inner one, which needs `f(i)`'s result `y`.
/// The durations come from a fixed table, like the notebook's `crn`.
fn step_time(i: usize, j: usize) -> Duration {
    let x = (i * 7 + j).wrapping_mul(2_654_435_761) % 1000;
    Duration::from_micros(2_000 + 10 * x as u64) // 2 to 12 ms
}

#[task]
fn f(i: usize) -> usize {
    dirk::sleep(step_time(i, 6));
    i
}

#[task]
fn g(i: usize, j: usize, y: &usize) -> usize {
    dirk::sleep(step_time(i, j));
    i * j + y
}

#[task]
fn risky(x: f64) -> f64 {
    if x > 1.0 {
        panic!("{x} is too large");
    }
    x
}

#[dirk::main]
fn main() -> Result<(), dirk::Error> {
    // A task: spawn! schedules the call at once and returns a handle.
    let t = spawn!(add(1.0, 2.0));
    println!("1 + 2 = {}", t.fetch()?);

    // A graph: a handle passed where a value is expected is a dependency.
    //   a ---> b ---> d
    //   `----> c ----^
    let a = spawn!(add(1.0, 1.0));
    let b = spawn!(mul(&a, 2.0));
    let c = spawn!(div(&a, 2.0)); // runs in parallel with b
    let d = spawn!(sub(&b, &c));
    println!("(a * 2) - (a / 2) with a = 1 + 1: {}", d.fetch()?);

    // Nested loops: each inner step depends on its outer step. dirk runs
    // both loop levels in parallel, ordered only by the dependencies.
    let serial = Instant::now();
    for i in 0..20 {
        std::thread::sleep(step_time(i, 6));
        for j in 0..6 {
            std::thread::sleep(step_time(i, j));
        }
    }
    let serial = serial.elapsed();
    // A step that sleeps in `dirk::sleep` hands its thread to a spare one
    // meanwhile, so sleeps overlap: two threads and at most six spares
    // here, which the chart below shows as eight rows. (A plain
    // `std::thread::sleep` would hold its thread: see the README.)
    let rt = Runtime::builder().threads(2).max_blocking_threads(6).build()?;
    let parallel = Instant::now();
    let (checksum, trace) = dirk::trace::record(|| {
        rt.run(|| {
            let mut inner = Vec::new();
            for i in 0..20 {
                let y = spawn!(f(i));
                for j in 0..6 {
                    inner.push(spawn!(g(i, j, &y)));
                }
            }
            dirk::join_all(inner).take().map(|all| all.iter().sum::<usize>())
        })
    });
    let checksum = checksum?;
    let parallel = parallel.elapsed();
    println!(
        "nested loops, 140 steps: {serial:.2?} one after another, {parallel:.2?} with dirk ({:.0}x faster, checksum {checksum})",
        serial.as_secs_f64() / parallel.as_secs_f64()
    );

    // What ran where: a Gantt chart, the task graph, and a trace to open in
    // Perfetto (ui.perfetto.dev).
    let out = std::path::Path::new("target/dirk-quickstart");
    std::fs::create_dir_all(out).expect("an output directory");
    std::fs::write(out.join("gantt.svg"), dirk::trace::gantt_svg(&trace)).expect("the Gantt chart");
    std::fs::write(out.join("graph.dot"), dirk::trace::dot(&trace)).expect("the graph");
    trace.write_chrome(out.join("trace.json")).expect("the trace");
    println!("wrote {0}/gantt.svg, {0}/graph.dot and {0}/trace.json", out.display());

    // Errors: a panic fails the task and everything downstream of it, and
    // nothing else. The error names the task where it started.
    let bad = spawn!(risky(5.0));
    let downstream = spawn!(add(&bad, 1.0));
    let fine = spawn!(add(1.0, 1.0));
    match downstream.fetch() {
        Err(e) => println!("downstream failed: {e}"),
        Ok(v) => println!("unexpected success: {v}"),
    }
    println!("root cause: {}", downstream.fetch().unwrap_err().root());
    println!("an independent task is unaffected: {}", fine.fetch()?);
    Ok(())
}
