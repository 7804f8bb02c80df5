//! Data moves between host and device only when it must: host inputs of a
//! GPU task are uploaded once, GPU results stay on the device for the next
//! GPU task, and are downloaded once when the host reads them. Counted
//! with each processor's transfer counters, on a runtime of the test's
//! own (its processors count only its transfers).

#![cfg(feature = "gpu")]

mod common;
mod gpu_common;

use common::within;
use dirk::gpu::{GpuVec, Processor, Transfers, processors};
use dirk::prelude::*;
use gpu_common::{GPU_LIMIT, saxpy, scale};

#[task]
fn ramp(n: usize) -> Vec<f32> {
    (0..n).map(|i| (i % 100) as f32).collect()
}

#[task]
fn total(xs: &[f32]) -> f64 {
    xs.iter().map(|&x| f64::from(x)).sum()
}

#[task]
fn first_and_last(xs: Vec<f32>) -> (f32, f32) {
    (xs[0], xs[xs.len() - 1])
}

fn gpu0() -> Processor {
    processors().into_iter().next().expect("the test machine has a GPU (or Mesa's software driver)")
}

/// The transfers `f` causes on GPU 0 of a fresh runtime, and its value.
fn counting<R: Send>(f: impl FnOnce() -> R + Send) -> (R, Transfers) {
    let rt = Runtime::builder().threads(2).build().unwrap();
    rt.run(|| {
        let before = gpu0().transfers();
        let value = f();
        (value, gpu0().transfers() - before)
    })
}

fn bytes(floats: usize) -> u64 {
    (floats * size_of::<f32>()) as u64
}

#[test]
fn a_dag_mixing_cpu_and_gpu_tasks_moves_each_value_once() {
    within(GPU_LIMIT, || {
        let n = 4096;
        let (values, moved) = counting(|| {
            let gpu = Scope::gpu(0);
            let x = spawn!(ramp(n)); // CPU
            let a = spawn!(scope = gpu.clone(), saxpy(2.0, &x, vec![1.0_f32; n])); // uploads x and the ones
            let b = spawn!(scope = gpu.clone(), scale(&a, 3.0)); // a is on the device
            let c = spawn!(scope = gpu.clone(), saxpy(1.0, &a, &b)); // both on the device; b copied there
            let d = spawn!(total(&b)); // downloads b
            let e = spawn!(first_and_last(&c)); // downloads c
            (d.fetch().unwrap(), e.fetch().unwrap(), c.fetch_vec().unwrap()) // c's host copy is kept
        });
        let a: Vec<f32> = (0..n).map(|i| 2.0 * (i % 100) as f32 + 1.0).collect();
        let b: Vec<f32> = a.iter().map(|a| 3.0 * a).collect();
        let c: Vec<f32> = a.iter().zip(&b).map(|(a, b)| a + b).collect();
        assert_eq!(values.0, b.iter().map(|&x| f64::from(x)).sum::<f64>());
        assert_eq!(values.1, (c[0], c[n - 1]));
        assert_eq!(values.2, c);
        let expected = Transfers {
            uploads: 2,
            downloads: 2,
            bytes_uploaded: bytes(2 * n),
            bytes_downloaded: bytes(2 * n),
            prefetches: 0,
        };
        assert_eq!(moved, expected);
    });
}

#[test]
fn a_chain_of_gpu_tasks_stays_on_the_device() {
    within(GPU_LIMIT, || {
        let n = 1000;
        let (out, moved) = counting(|| {
            let mut v = spawn!(scale(GpuVec::from(vec![1.0_f32; n]), 1.0));
            for _ in 0..20 {
                v = spawn!(scale(&v, 2.0)); // unscoped: any GPU
            }
            v.fetch_vec().unwrap()
        });
        assert_eq!(out, vec![(1u64 << 20) as f32; n]);
        let expected =
            Transfers { uploads: 1, downloads: 1, bytes_uploaded: bytes(n), bytes_downloaded: bytes(n), prefetches: 0 };
        assert_eq!(moved, expected);
    });
}

#[test]
fn fetching_a_gpu_result_downloads_only_when_read() {
    within(GPU_LIMIT, || {
        let ((on_host_before, on_gpus, value, on_host_after), moved) = counting(|| {
            let v = spawn!(scope = Scope::gpu(0), scale(GpuVec::from(vec![1.5_f32; 8]), 2.0));
            let handle = v.fetch().unwrap(); // the handle, not the data
            let before = handle.is_on_host();
            let value = handle.to_vec().unwrap();
            let again = handle.host().unwrap().to_vec(); // kept: no second download
            assert_eq!(value, again);
            (before, handle.gpus(), value, handle.is_on_host())
        });
        assert!(!on_host_before);
        assert_eq!(on_gpus, [0]);
        assert_eq!(value, [3.0; 8]);
        assert!(on_host_after);
        assert_eq!((moved.uploads, moved.downloads), (1, 1));
    });
}

#[test]
fn a_result_shared_by_gpu_tasks_is_copied_on_the_device_not_through_the_host() {
    within(GPU_LIMIT, || {
        let ((left, right, shared), moved) = counting(|| {
            let base = spawn!(scale(GpuVec::from(vec![1.0_f32; 64]), 1.0));
            // Both write into `base` (saxpy's y): each gets its own copy on the device.
            let left = spawn!(saxpy(1.0, vec![1.0_f32; 64], &base));
            let right = spawn!(saxpy(2.0, vec![1.0_f32; 64], &base));
            (left.fetch_vec().unwrap(), right.fetch_vec().unwrap(), base.fetch_vec().unwrap())
        });
        assert_eq!(left, [2.0; 64]);
        assert_eq!(right, [3.0; 64]);
        assert_eq!(shared, [1.0; 64], "the shared input is unchanged");
        assert_eq!((moved.uploads, moved.downloads), (3, 3));
    });
}
