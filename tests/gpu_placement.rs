//! GPU processors beside CPU threads: which thread runs a GPU task, GPU
//! tasks nested in others, `dirk::sync` and `with_gpu` over GPU work.

#![cfg(feature = "gpu")]

mod common;
mod gpu_common;

use common::within;
use dirk::gpu::{Gpu, GpuVec, processors, with_any_gpu, with_gpu};
use dirk::prelude::*;
use gpu_common::{GPU_LIMIT, body_thread, oversized_launch, scale};

#[test]
fn gpu_tasks_run_on_their_processors_runner_thread() {
    within(GPU_LIMIT, || {
        assert_eq!(spawn!(scope = Scope::gpu(0), body_thread()).fetch().unwrap(), "dirk-gpu-0");
        let unscoped = spawn!(body_thread()).fetch().unwrap();
        assert!(unscoped.starts_with("dirk-gpu-"), "{unscoped}");
        // Any closure placed on a GPU runs there too.
        let closure = dirk::with_options(Options::new().scope(Scope::gpu(0)), || {
            dirk::spawn(|| std::thread::current().name().map(str::to_owned))
        });
        assert_eq!(closure.fetch().unwrap().as_deref(), Some("dirk-gpu-0"));
    });
}

#[test]
fn processors_are_named_after_their_devices() {
    within(GPU_LIMIT, || {
        let gpus = processors();
        assert!(!gpus.is_empty());
        for (i, gpu) in gpus.iter().enumerate() {
            assert_eq!(gpu.index(), i);
            gpu.open().unwrap();
            assert!(!gpu.name().is_empty());
            assert_eq!(gpu.to_string(), format!("GPU {i} ({})", gpu.name()));
        }
    });
}

#[task]
fn cpu_square(x: u64) -> u64 {
    x * x
}

/// A GPU task that waits for a CPU task and for a GPU task on its own GPU,
/// which only its runner can run.
#[task(gpu)]
fn waits_for_others(gpu: &Gpu, depth: u32) -> u64 {
    let cpu = spawn!(cpu_square(u64::from(depth)));
    let inner = if depth == 0 {
        0
    } else {
        let here = Scope::gpu(gpu.index());
        spawn!(scope = here, waits_for_others(depth - 1)).fetch().unwrap()
    };
    cpu.fetch().unwrap() + inner
}

#[test]
fn a_gpu_task_waiting_for_tasks_on_its_own_gpu_does_not_deadlock() {
    within(GPU_LIMIT, || {
        let rt = Runtime::builder().threads(1).build().unwrap();
        let total = rt.run(|| spawn!(scope = Scope::gpu(0), waits_for_others(5)).fetch().unwrap());
        assert_eq!(total, (0..=5).map(|d| d * d).sum::<u64>());
    });
}

#[test]
fn many_unscoped_gpu_tasks_on_one_cpu_thread() {
    within(GPU_LIMIT, || {
        let rt = Runtime::builder().threads(1).build().unwrap();
        let sums = rt.run(|| {
            let tasks: Vec<_> = (0..64).map(|i| spawn!(scale(GpuVec::from(vec![i as f32; 32]), 2.0))).collect();
            tasks.iter().map(|t| t.fetch_vec().unwrap().iter().sum::<f32>()).collect::<Vec<_>>()
        });
        let expected: Vec<f32> = (0..64).map(|i| 64.0 * i as f32).collect();
        assert_eq!(sums, expected);
    });
}

#[test]
fn sync_waits_for_gpu_tasks_and_reports_their_errors() {
    within(GPU_LIMIT, || {
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = out.clone();
        dirk::sync(move || {
            for i in 0..8 {
                let sink = sink.clone();
                let v = spawn!(scope = Scope::gpu(0), scale(GpuVec::from(vec![i as f32]), 10.0));
                dirk::spawn(move || {
                    // Fetched before locking: a worker waiting in `fetch` runs other tasks.
                    let value = v.fetch_vec().unwrap()[0];
                    sink.lock().unwrap().push(value);
                });
            }
        })
        .unwrap();
        let mut got = out.lock().unwrap().clone();
        got.sort_by(f32::total_cmp);
        assert_eq!(got, (0..8).map(|i| 10.0 * i as f32).collect::<Vec<_>>());
        let failed = dirk::sync(|| {
            spawn!(scope = Scope::gpu(0), oversized_launch(GpuVec::from(vec![1.0_f32])));
        });
        assert!(matches!(failed, Err(Error::Gpu(m)) if m.contains("`oversized_launch`")));
    });
}

#[test]
fn with_gpu_runs_closures_from_any_thread() {
    within(GPU_LIMIT, || {
        // A thread outside the runtime.
        let v = with_gpu(0, |gpu| gpu.upload(&[4_i32, 5, 6])).unwrap();
        assert_eq!(v.gpus(), [0]);
        assert_eq!(v.to_vec().unwrap(), [4, 5, 6]);
        // Inside a CPU task, and on the runner itself (nested).
        let index = dirk::spawn(|| with_any_gpu(|gpu| with_gpu(gpu.index(), |inner| inner.index()).unwrap()))
            .fetch()
            .unwrap()
            .unwrap();
        assert_eq!(index, 0);
        // A panic in the closure resumes on the caller.
        let caught = std::panic::catch_unwind(|| with_gpu(0, |_| panic!("in the closure")));
        assert!(caught.is_err());
        assert_eq!(with_gpu(0, |gpu| gpu.index()).unwrap(), 0, "the runner survived");
    });
}
