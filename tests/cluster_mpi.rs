//! Under an MPI launcher: rank 0 runs the program and the other ranks are
//! its workers, with frames over MPI. `three_ranks_under_mpirun` starts a
//! 3-process `mpirun` job of this very test binary running `mpi_job`.

#![cfg(feature = "mpi")]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dirk::prelude::*;

#[task]
fn who() -> usize {
    dirk::current_worker()
}

#[task]
fn fill(n: usize, x: f64) -> Vec<f64> {
    vec![x; n]
}

#[task]
fn twice(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| 2.0 * x).collect()
}

#[task]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The body of the MPI job that `three_ranks_under_mpirun` starts on 3
/// ranks; run any other way (no MPI launcher around it) it has nothing to do.
#[dirk::test]
fn mpi_job() {
    if std::env::var_os("OMPI_COMM_WORLD_SIZE").is_none() {
        return;
    }
    // Rank 0 gets here; ranks 1 and 2 become its workers.
    let rt = Runtime::builder().threads(1).build().unwrap();
    assert_eq!(rt.processes(), 3, "3 ranks: rank 0 and 2 workers");
    rt.run(|| {
        for w in 0..3 {
            assert_eq!(spawn!(scope = Scope::worker(w), who()).fetch().unwrap(), w);
        }
        // A graph across ranks: vectors made on 1 and 2, combined on 1,
        // with a value (8 MB) too large to come back with its result.
        let a = spawn!(scope = Scope::worker(1), fill(1 << 20, 2.0));
        let b = spawn!(scope = Scope::worker(2), fill(1 << 20, 3.0));
        let d = spawn!(scope = Scope::worker(1), dot(&a, &b));
        assert_eq!(d.fetch().unwrap(), 6.0 * (1 << 20) as f64);
        assert_eq!(a.fetch().unwrap().len(), 1 << 20);
        // Small values between ranks go from one to the other directly.
        let mut x = spawn!(scope = Scope::worker(1), fill(4, 1.0));
        for step in 0..6 {
            x = spawn!(scope = Scope::worker(1 + (step + 1) % 2), twice(&x));
        }
        assert_eq!(x.fetch().unwrap(), vec![64.0; 4]);
        let seen: std::collections::BTreeSet<usize> =
            (0..12).map(|_| spawn!(who())).collect::<Vec<_>>().iter().map(|t| t.fetch().unwrap()).collect();
        assert!(seen.len() >= 2, "unscoped tasks spread over ranks: {seen:?}");
    });
    println!("dirk MPI job passed on {} processes", rt.processes());
}

#[test]
fn three_ranks_under_mpirun() {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new("mpirun")
        .args(["--oversubscribe", "--allow-run-as-root", "-n", "3"])
        .arg(exe)
        .args(["--exact", "mpi_job", "--nocapture", "--test-threads=1"])
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun runs (OpenMPI: `apt-get install openmpi-bin libopenmpi-dev`, done by `cargo xtask test`)");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the MPI job did not end within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |r: Option<&mut dyn std::io::Read>| {
        let mut s = String::new();
        if let Some(r) = r {
            let _ = r.read_to_string(&mut s);
        }
        s
    };
    let out = read(child.stdout.as_mut().map(|s| s as &mut dyn std::io::Read));
    let err = read(child.stderr.as_mut().map(|s| s as &mut dyn std::io::Read));
    assert!(status.success(), "mpirun failed ({status})\nstdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("dirk MPI job passed on 3 processes"), "stdout:\n{out}\nstderr:\n{err}");
}
