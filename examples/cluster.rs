//! Worker processes, as in Dagger's notebook: tasks scoped to workers,
//! tasks spread over every process and thread, and tasks that go where
//! their data lives, and a `streaming!` stage that runs on a worker.
//!
//! ```sh
//! cargo run --release --example cluster
//! mpirun -n 3 target/release/examples/cluster   # with `--features mpi`: ranks 1 and 2 are the workers
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use dirk::prelude::*;

#[task]
fn who_am_i() -> String {
    format!("worker {} thread {}", dirk::current_worker(), dirk::current_thread().unwrap_or(0))
}

#[task]
fn who_am_i_slowly() -> (usize, usize) {
    std::thread::sleep(Duration::from_millis(50));
    (dirk::current_worker(), dirk::current_thread().unwrap_or(0))
}

#[task]
fn random_array(n: usize, seed: u64) -> Vec<f64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

#[task]
fn where_am_i_data(a: &[f64]) -> (usize, f64) {
    (dirk::current_worker(), a.iter().sum())
}

/// A streaming stage: called once per element, on the worker its scope names.
#[task]
fn smooth(window: &[f64], weight: f64) -> (usize, f64) {
    (dirk::current_worker(), window.iter().sum::<f64>() * weight / window.len() as f64)
}

#[dirk::main]
fn main() -> Result<(), dirk::Error> {
    // Under mpirun the other ranks are the workers; otherwise start two.
    let workers = if std::env::var_os("OMPI_COMM_WORLD_SIZE").is_some() { 0 } else { 2 };
    let rt = Runtime::builder().threads(2).workers(workers).build()?;
    println!("{} processes", rt.processes());
    rt.run(|| {
        for w in 0..rt.processes() {
            println!("scoped to worker {w}: {}", spawn!(scope = Scope::worker(w), who_am_i()).fetch()?);
        }
        let tasks: Vec<_> = (0..20).map(|_| spawn!(who_am_i_slowly())).collect();
        let mut seen: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        for t in &tasks {
            *seen.entry(t.fetch()?).or_default() += 1;
        }
        println!("20 unscoped tasks ran on (worker, thread): {seen:?}");

        let last = rt.processes() - 1;
        let a = spawn!(scope = Scope::worker(last), random_array(1 << 20, 1));
        for _ in 0..5 {
            let (worker, sum) = spawn!(where_am_i_data(&a)).fetch()?;
            println!("the array lives on worker {last}; a task reading it ran on worker {worker} (sum {sum:.1})");
        }

        // A stream whose middle stage runs on the last worker: each window
        // travels through a shared-memory ring, is read in place there, and
        // the result comes back through a second ring, in order.
        let mut k = 0;
        let out = streaming! {
            let window = { k += 1; (k <= 5).then(|| vec![k as f64; 4096]) }?;
            #[dirk(scope = Scope::worker(last))]
            let smoothed = smooth(&window, 0.5);
            smoothed
        };
        for (worker, value) in out.iter() {
            println!("a window smoothed on worker {worker}: {value}");
        }
        out.wait()?;
        Ok(())
    })
}
