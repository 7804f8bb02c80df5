//! GPU stages in `streaming!`: a stage scoped to a GPU runs its iterations
//! on that GPU's runner, processes every frame in order with the CPU's
//! answer, keeps data on the device between GPU stages, uploads the next
//! frame while the current one's kernels run, and ends the region like
//! any other stage when it fails, is capped, cancelled or misplaced.
//! Transfer counts come from a runtime of each test's own.

#![cfg(feature = "gpu")]

mod common;
mod gpu_common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::within;
use cubecl::prelude::*;
use dirk::gpu::cubecl::device::{WgpuDevice, WgpuDeviceKind};
use dirk::gpu::{Device, Gpu, GpuVec, Transfers, processors};
use dirk::prelude::*;
use dirk::{Error, Runtime, Scope};
use gpu_common::{GPU_LIMIT, oversized_launch};

/// Samples per frame.
const N: usize = 1024;

/// `y[i] = 3 x[i] + 2 x[i-1] + x[i-2]`, with zeros before the start.
#[cube(launch)]
fn fir_kernel(x: &[f32], y: &mut [f32]) {
    let i = ABSOLUTE_POS;
    if i < y.len() {
        let mut acc = 3.0f32 * x[i];
        if i >= 1 {
            acc += 2.0f32 * x[i - 1];
        }
        if i >= 2 {
            acc += x[i - 2];
        }
        y[i] = acc;
    }
}

#[cube(launch)]
fn double_kernel(x: &[f32], y: &mut [f32]) {
    let i = ABSOLUTE_POS;
    if i < y.len() {
        y[i] = 2.0f32 * x[i];
    }
}

#[task(gpu)]
fn fir(gpu: &Gpu, x: GpuVec<f32>) -> GpuVec<f32> {
    let mut y = gpu.empty::<f32>(x.len());
    let (count, dim) = gpu.grid(x.len());
    fir_kernel::launch(gpu.client(), count, dim, x.arg(gpu), y.arg_mut(gpu));
    y
}

#[task(gpu)]
fn double(gpu: &Gpu, x: GpuVec<f32>) -> GpuVec<f32> {
    let mut y = gpu.empty::<f32>(x.len());
    let (count, dim) = gpu.grid(x.len());
    double_kernel::launch(gpu.client(), count, dim, x.arg(gpu), y.arg_mut(gpu));
    y
}

#[task(gpu)]
fn fir_unless(gpu: &Gpu, x: GpuVec<f32>, k: u32, bad: u32) -> GpuVec<f32> {
    assert!(k != bad, "frame {k} is corrupt");
    let mut y = gpu.empty::<f32>(x.len());
    let (count, dim) = gpu.grid(x.len());
    fir_kernel::launch(gpu.client(), count, dim, x.arg(gpu), y.arg_mut(gpu));
    y
}

/// Frame `k`: small integers, so every sum below is exact in `f32`.
fn synth(k: u32) -> Vec<f32> {
    (0..N as u32).map(|i| ((i * 7 + k * 13) % 97) as f32).collect()
}

fn fir_cpu(x: &[f32]) -> Vec<f32> {
    (0..x.len())
        .map(|i| 3.0 * x[i] + if i >= 1 { 2.0 * x[i - 1] } else { 0.0 } + if i >= 2 { x[i - 2] } else { 0.0 })
        .collect()
}

fn checksum(xs: &[f32]) -> f64 {
    xs.iter().map(|&x| f64::from(x)).sum()
}

/// The frame number and the checksum of its (downloaded) result; fails the
/// stage if the result is not exactly the CPU filter's, scaled by `scale`.
fn check(k: u32, y: GpuVec<f32>, scale: f32) -> (u32, f64) {
    let got = y.to_vec().expect("download");
    let want: Vec<f32> = fir_cpu(&synth(k)).into_iter().map(|v| v * scale).collect();
    assert_eq!(got, want, "frame {k}");
    (k, checksum(&got))
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_owned()
}

/// Runs `f` on a fresh runtime; returns its value and GPU 0's transfers.
fn counting<R>(f: impl FnOnce() -> R) -> (R, Transfers) {
    let rt = Runtime::builder().threads(2).build().unwrap();
    rt.enter(|| {
        let gpu = processors().into_iter().next().expect("a GPU (or Mesa's software driver)");
        let before = gpu.transfers();
        let value = f();
        (value, gpu.transfers() - before)
    })
}

#[test]
fn a_gpu_stage_filters_a_thousand_frames_in_order_on_its_runner() {
    within(GPU_LIMIT, || {
        const FRAMES: u32 = 1000;
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let threads = seen.clone();
        let ((got, result), moved) = counting(move || {
            let mut next = 0u32;
            let out = streaming! {
                let k = { next += 1; (next <= FRAMES).then_some(next - 1) }?;
                #[dirk(buffer = 8)] let frame = GpuVec::from(synth(k));
                #[dirk(scope = Scope::gpu(0))] let y = { threads.lock().unwrap().insert(thread_name()); fir(frame) };
                let r = check(k, y, 1.0);
                r
            };
            let got: Vec<(u32, f64)> = out.iter().collect();
            (got, out.wait())
        });
        result.unwrap();
        assert_eq!(got.len(), FRAMES as usize, "no frame lost or duplicated");
        for (i, &(k, sum)) in got.iter().enumerate() {
            assert_eq!(k, i as u32, "frames in order");
            assert_eq!(sum, checksum(&fir_cpu(&synth(k))), "frame {k}");
        }
        assert_eq!(*seen.lock().unwrap(), BTreeSet::from(["dirk-gpu-0".to_owned()]), "turns ran on GPU 0's runner");
        assert_eq!((moved.uploads, moved.downloads), (u64::from(FRAMES), u64::from(FRAMES)));
        assert!(moved.prefetches > 0 && moved.prefetches <= moved.uploads, "{moved:?}");
    });
}

#[test]
fn consecutive_gpu_stages_keep_frames_on_the_device() {
    within(GPU_LIMIT, || {
        const FRAMES: u32 = 200;
        let ((got, result), moved) = counting(|| {
            let mut next = 0u32;
            let out = streaming! {
                let k = { next += 1; (next <= FRAMES).then_some(next - 1) }?;
                #[dirk(buffer = 8)] let frame = GpuVec::from(synth(k));
                #[dirk(scope = Scope::gpu(0))] let y = fir(frame);
                #[dirk(scope = Scope::gpu(0), buffer = 4)] let z = double(y);
                let r = check(k, z, 2.0);
                r
            };
            let got: Vec<u32> = out.iter().map(|(k, _)| k).collect();
            (got, out.wait())
        });
        result.unwrap();
        assert_eq!(got, (0..FRAMES).collect::<Vec<_>>());
        let bytes = (FRAMES as usize * N * size_of::<f32>()) as u64;
        assert_eq!(
            (moved.uploads, moved.downloads, moved.bytes_uploaded, moved.bytes_downloaded),
            (u64::from(FRAMES), u64::from(FRAMES), bytes, bytes),
            "one upload and one download per frame: {moved:?}"
        );
    });
}

#[test]
fn the_next_frame_is_uploaded_while_the_current_one_is_filtered() {
    within(GPU_LIMIT, || {
        const FRAMES: u32 = 8;
        // The GPU stage waits, on its first frame, until every frame is in
        // its input ring; from then on each iteration finds the next frame
        // waiting and starts its upload.
        let all_made = Arc::new(AtomicBool::new(false));
        let (made, waited) = (all_made.clone(), all_made.clone());
        let first = Arc::new(AtomicBool::new(true));
        let ((sums, result), moved) = counting(move || {
            let mut next = 0u32;
            let out = streaming! {
                let k = {
                    next += 1;
                    if next > FRAMES { made.store(true, Ordering::Release); }
                    (next <= FRAMES).then_some(next - 1)
                }?;
                #[dirk(buffer = 16)] let frame = GpuVec::from(synth(k));
                #[dirk(scope = Scope::gpu(0))] let y = {
                    if first.swap(false, Ordering::AcqRel) {
                        while !waited.load(Ordering::Acquire) { std::thread::sleep(Duration::from_millis(1)); }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    fir(frame)
                };
                let r = check(k, y, 1.0);
                r
            };
            let sums: Vec<f64> = out.iter().map(|(_, s)| s).collect();
            (sums, out.wait())
        });
        result.unwrap();
        assert_eq!(sums.len(), FRAMES as usize);
        assert_eq!(moved.uploads, u64::from(FRAMES), "a prefetched frame is not uploaded again: {moved:?}");
        assert_eq!(moved.prefetches, u64::from(FRAMES) - 1, "every frame after the first: {moved:?}");
    });
}

#[test]
fn a_gpu_stage_parks_on_a_slow_source_and_is_woken_on_its_runner() {
    within(GPU_LIMIT, || {
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let threads = seen.clone();
        let rt = Runtime::builder().threads(1).build().unwrap();
        let got: Vec<u32> = rt.enter(|| {
            let mut next = 0u32;
            let out = streaming! {
                let k = { dirk::sleep(Duration::from_millis(2)); next += 1; (next <= 20).then_some(next - 1) }?;
                let frame = GpuVec::from(synth(k));
                #[dirk(scope = Scope::gpu(0))] let y = { threads.lock().unwrap().insert(thread_name()); fir(frame) };
                let r = check(k, y, 1.0);
                r
            };
            let got = out.iter().map(|(k, _)| k).collect();
            out.wait().unwrap();
            got
        });
        assert_eq!(got, (0..20).collect::<Vec<_>>());
        assert_eq!(*seen.lock().unwrap(), BTreeSet::from(["dirk-gpu-0".to_owned()]));
    });
}

#[test]
fn max_evals_and_cancel_end_a_gpu_stage() {
    within(GPU_LIMIT, || {
        let capped = counting(|| {
            let mut next = 0u32;
            let out = streaming! {
                let k = { next += 1; next - 1 };
                let frame = GpuVec::from(synth(k));
                #[dirk(scope = Scope::gpu(0), max_evals = 5)] let y = fir(frame);
                let r = check(k, y, 1.0);
                r
            };
            let got: Vec<u32> = out.iter().map(|(k, _)| k).collect();
            (got, out.wait())
        })
        .0;
        assert_eq!(capped, (vec![0, 1, 2, 3, 4], Ok(())));

        let filtered = Arc::new(AtomicU32::new(0));
        let count = filtered.clone();
        let rt = Runtime::builder().threads(2).build().unwrap();
        rt.enter(|| {
            let mut next = 0u32;
            let out = streaming! {
                let k = { next = next.wrapping_add(1); next };
                let frame = GpuVec::from(synth(k));
                #[dirk(scope = Scope::gpu(0))] let y = { count.fetch_add(1, Ordering::Relaxed); fir(frame) };
                let r = y.len();
                r
            };
            assert_eq!(out.iter().take(10).count(), 10);
            out.cancel();
            assert_eq!(out.wait(), Ok(()));
            assert!(out.is_finished());
        });
        let after = filtered.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(filtered.load(Ordering::Relaxed), after, "nothing runs after the region finished");
    });
}

#[test]
fn a_stage_on_a_gpu_the_machine_lacks_is_a_scope_error() {
    within(GPU_LIMIT, || {
        let out = streaming! {
            let frame = GpuVec::from(synth(0));
            #[dirk(scope = Scope::gpu(7))] let y = fir(frame);
            let r = y.len();
            r
        };
        match out.wait() {
            Err(Error::Scope(e)) => {
                assert!(e.name == "y" && e.scope == "Scope::gpu(7)", "{e:?}");
                assert!(e.reason.starts_with("there is no GPU 7"), "{}", e.reason);
            }
            other => panic!("expected a scope error, got {other:?}"),
        }
        assert_eq!(out.iter().count(), 0);
    });
}

#[test]
fn a_failing_gpu_stage_ends_the_region_with_its_error() {
    within(GPU_LIMIT, || {
        let device = processors()[0].to_string();
        let out = streaming! {
            let frame = GpuVec::from(synth(0));
            #[dirk(scope = Scope::gpu(0))] let bad = oversized_launch(frame);
            let r = bad.len();
            r
        };
        assert_eq!(out.iter().count(), 0);
        let error = out.wait().unwrap_err();
        let Error::Gpu(message) = &error else { panic!("expected Error::Gpu, got {error:?}") };
        assert!(message.contains(&format!("`bad`: a kernel launch on {device} failed: ")), "{message}");

        let mut next = 0u32;
        let out = streaming! {
            let k = { next += 1; next - 1 };
            let frame = GpuVec::from(synth(k));
            #[dirk(scope = Scope::gpu(0))] let y = fir_unless(frame, k, 3);
            let r = check(k, y, 1.0);
            r
        };
        let got: Vec<u32> = out.iter().map(|(k, _)| k).collect();
        assert!(got.len() <= 3 && got.iter().enumerate().all(|(i, &k)| k == i as u32), "{got:?}");
        match out.wait() {
            Err(Error::Panicked { name, message, .. }) => {
                assert_eq!(name, "y");
                assert_eq!(message, "frame 3 is corrupt");
            }
            other => panic!("expected Panicked, got {other:?}"),
        }
    });
}

#[test]
fn a_gpu_stage_on_a_device_that_cannot_open_fails_with_a_gpu_error() {
    within(GPU_LIMIT, || {
        let missing = Device::Wgpu(WgpuDevice::new(WgpuDeviceKind::DiscreteGpu(7)));
        let rt = Runtime::builder().threads(1).gpus([missing]).build().unwrap();
        rt.enter(|| {
            let out = streaming! {
                let frame = GpuVec::from(synth(0));
                #[dirk(scope = Scope::gpu(0))] let y = fir(frame);
                let r = y.len();
                r
            };
            assert_eq!(out.iter().count(), 0);
            match out.wait() {
                Err(Error::Gpu(message)) => {
                    assert!(message.contains("`y` cannot run: GPU 0 (wgpu DiscreteGpu(7)) is unavailable"), "{message}")
                }
                other => panic!("expected Error::Gpu, got {other:?}"),
            }
        });
    });
}

#[test]
fn a_gpu_region_whose_runtime_shut_down_ends_with_cancelled() {
    within(GPU_LIMIT, || {
        let rt = Runtime::builder().threads(1).build().unwrap();
        let out = rt.enter(|| {
            let mut next = 0u32;
            streaming! {
                let k = { next = next.wrapping_add(1); next };
                let frame = GpuVec::from(synth(k));
                #[dirk(scope = Scope::gpu(0))] let y = fir(frame);
                let r = y.len();
                r
            }
        });
        assert_eq!(out.next_timeout(Duration::from_secs(60)), Ok(Some(N)));
        drop(rt);
        let err = out.wait().unwrap_err();
        assert!(err.is_cancelled(), "{err:?}");
        assert!(out.is_finished());
    });
}
