//! GPU failures are typed errors that name the task and the device: a
//! scope no GPU satisfies (`Error::Scope`, at once), a kernel launch the
//! device refuses, a device that cannot be opened (`Error::Gpu`).

#![cfg(feature = "gpu")]

mod common;
mod gpu_common;

use common::within;
use dirk::gpu::cubecl::device::{WgpuDevice, WgpuDeviceKind};
use dirk::gpu::{Device, Gpu, GpuVec, processors, with_gpu};
use dirk::prelude::*;
use gpu_common::{GPU_LIMIT, body_thread, oversized_launch, scale};

#[task]
fn plus_one(xs: &[f32]) -> f32 {
    xs[0] + 1.0
}

#[test]
fn a_gpu_index_the_machine_lacks_fails_at_once_with_a_scope_error() {
    within(GPU_LIMIT, || {
        let count = processors().len();
        let t = spawn!(scope = Scope::gpu(7), scale(GpuVec::from(vec![1.0_f32]), 2.0));
        assert!(t.is_ready(), "refused at spawn, without running");
        match t.fetch().unwrap_err() {
            Error::Scope(e) => {
                assert_eq!(e.scope, "Scope::gpu(7)");
                assert_eq!(e.name, "scale");
                assert!(e.reason.starts_with("there is no GPU 7: this runtime has GPUs 0..="), "{}", e.reason);
                assert!(count < 8);
            }
            other => panic!("expected a scope error, got {other:?}"),
        }
        // Plain closures too.
        let closure = dirk::with_options(Options::new().scope(Scope::gpu(7)), || dirk::spawn(|| 1));
        assert!(matches!(closure.fetch(), Err(Error::Scope(_))));
    });
}

#[test]
fn a_failed_kernel_launch_fails_the_task_with_a_gpu_error_naming_it_and_the_device() {
    within(GPU_LIMIT, || {
        let device = processors()[0].to_string();
        let bad = spawn!(scope = Scope::gpu(0), oversized_launch(GpuVec::from(vec![1.0_f32; 16])));
        let after = spawn!(plus_one(&bad));
        let error = bad.fetch().unwrap_err();
        let Error::Gpu(message) = &error else { panic!("expected Error::Gpu, got {error:?}") };
        assert!(
            message.starts_with(&format!("task {} `oversized_launch`: a kernel launch on {device} failed: ", bad.id())),
            "{message}"
        );
        assert!(message.contains("Cube dim exceeds maximum bounds"), "{message}");
        assert!(!message.contains('\n'), "one line: {message}");
        assert!(error.to_string().starts_with("GPU error: task "), "{error}");
        // Its dependents fail with it as their root; the processor goes on.
        let downstream = after.fetch().unwrap_err();
        assert_eq!(downstream.root(), &error);
        let fine = spawn!(scope = Scope::gpu(0), scale(GpuVec::from(vec![1.0_f32; 4]), 2.0));
        assert_eq!(fine.fetch_vec().unwrap(), [2.0; 4]);
        // Unscoped, the same.
        let unscoped = spawn!(oversized_launch(GpuVec::from(vec![1.0_f32; 16])));
        assert!(matches!(unscoped.fetch(), Err(Error::Gpu(m)) if m.contains("`oversized_launch`")));
    });
}

fn missing_device() -> Device {
    Device::Wgpu(WgpuDevice::new(WgpuDeviceKind::DiscreteGpu(7)))
}

#[test]
fn a_device_that_cannot_be_opened_fails_its_tasks_with_a_gpu_error() {
    within(GPU_LIMIT, || {
        let rt = Runtime::builder().threads(1).gpus([missing_device()]).build().unwrap();
        rt.run(|| {
            let gpus = processors();
            assert_eq!(gpus.len(), 1);
            let opened = gpus[0].open().unwrap_err();
            assert!(opened.to_string().contains("GPU 0 (wgpu DiscreteGpu(7)) is unavailable"), "{opened}");

            let scoped = spawn!(scope = Scope::gpu(0), scale(GpuVec::from(vec![1.0_f32]), 2.0));
            let error = scoped.fetch().unwrap_err();
            let expected =
                format!("task {} `scale` cannot run: GPU 0 (wgpu DiscreteGpu(7)) is unavailable: ", scoped.id());
            assert!(matches!(&error, Error::Gpu(m) if m.starts_with(&expected)), "{error}");

            let unscoped = spawn!(body_thread());
            let error = unscoped.fetch().unwrap_err();
            let expected =
                format!("task {} `body_thread`: GPU 0 (wgpu DiscreteGpu(7)) is unavailable: ", unscoped.id());
            assert!(matches!(&error, Error::Gpu(m) if m.starts_with(&expected)), "{error}");

            let direct = with_gpu(0, |gpu: &Gpu| gpu.index());
            assert!(matches!(direct, Err(Error::Gpu(m)) if m.contains("is unavailable")));
        });
    });
}

#[test]
fn without_any_gpu_scopes_are_refused_and_gpu_tasks_fail() {
    within(GPU_LIMIT, || {
        let rt = Runtime::builder().threads(1).gpus([]).build().unwrap();
        rt.run(|| {
            assert!(processors().is_empty());
            let scoped = spawn!(scope = Scope::gpu(0), body_thread());
            assert!(
                matches!(scoped.fetch(), Err(Error::Scope(e)) if e.reason.starts_with("there is no GPU 0: this runtime found no GPU device"))
            );
            let unscoped = spawn!(body_thread());
            assert!(matches!(unscoped.fetch(), Err(Error::Gpu(m)) if m.contains("found no GPU device")));
            assert!(matches!(with_gpu(3, |_| ()), Err(Error::Gpu(m)) if m.starts_with("there is no GPU 3")));
        });
    });
}

#[task(gpu)]
fn panics(_gpu: &Gpu, message: String) -> u32 {
    panic!("{message}")
}

#[test]
fn a_panicking_gpu_task_fails_like_any_task() {
    within(GPU_LIMIT, || {
        for scope in [Scope::gpu(0), Scope::any()] {
            let t = spawn!(scope = scope, panics("kernel setup went wrong".to_owned()));
            assert!(matches!(t.fetch(), Err(Error::Panicked { message, .. }) if message == "kernel setup went wrong"));
        }
        // The processor still runs tasks.
        assert_eq!(spawn!(scope = Scope::gpu(0), body_thread()).fetch().unwrap(), "dirk-gpu-0");
    });
}

#[test]
fn a_gpu_function_called_outside_a_task_panics_with_the_error() {
    within(GPU_LIMIT, || {
        let result = std::panic::catch_unwind(|| oversized_launch(GpuVec::from(vec![1.0_f32; 4])));
        let payload = result.unwrap_err();
        let message = payload.downcast_ref::<String>().expect("a message");
        assert!(message.starts_with("GPU error: a kernel launch on GPU 0 ("), "{message}");
    });
}
