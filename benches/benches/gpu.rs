//! GPU tasks: what dirk adds to a GPU's own costs, on the first GPU the
//! runtime finds (named in every group; Mesa's software Vulkan driver on a
//! machine without a GPU).
//!
//! What each case times, and how, is [`ABOUT`] (BENCHMARKS.md shows it too).

use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cubecl::prelude::*;
use dirk::Scope;
use dirk::gpu::{Gpu, GpuVec, processors, with_gpu};
use dirk::prelude::*;
use dirk_benches::harness::{about, ns_per, pick, report, sample, time};
use filter::{edge_fraction, edges, image};

#[path = "../../examples/shared/filter.rs"]
mod filter;

#[task(gpu)]
fn empty(_gpu: &Gpu) {}

#[cube(launch)]
fn write_one(out: &mut [u32]) {
    if ABSOLUTE_POS == 0 {
        out[0] = 7;
    }
}

#[task(gpu)]
fn tiny(gpu: &Gpu) -> GpuVec<u32> {
    let mut out = gpu.empty::<u32>(1);
    write_one::launch(gpu.client(), CubeCount::Static(1, 1, 1), CubeDim::new_1d(1), out.arg_mut(gpu));
    out
}

/// What each case of this benchmark times, and how.
const ABOUT: &str = "\
- `empty task, spawn+fetch`: one GPU task with an empty body at a time, from a thread outside the pool, against handing a closure to a thread and back over channels (the floor of any runner-thread design) and an empty CubeCL kernel launched and waited for directly.\n\
- `empty task, 1000 queued`: spawn 1000 empty GPU tasks, then wait for all, against 1000 closures queued to a thread over a channel.\n\
- `tiny kernel + read, per task`: a GPU task that launches a one-element kernel and whose result is read back, against the same launch and read through CubeCL on the calling thread.\n\
- `upload` / `download`: host↔device bandwidth through `GpuVec` (a GPU task uploading its host input; `host()` of a device-only result, what a CPU task taking `&[T]` gets) against CubeCL's `create_from_slice` and `read_one` directly.\n\
- `image filter, frames/s`: 320×240 frames made on the CPU, blurred and edge-detected by two kernels on GPU 0, measured on the CPU: as a `streaming!` region whose GPU stage uploads the next frame while the current one's kernels run, against the same pipeline as three tasks per frame (examples/gpu_filter.rs).\n\
- Each figure the median of 10 runs, with the least and greatest.";

/// Makes the task upload its host input, and waits for the copy.
#[task(gpu)]
fn upload(gpu: &Gpu, data: GpuVec<f32>) {
    black_box(data.handle(gpu));
    gpu.sync().unwrap();
}

fn main() {
    let runs = pick(10, 3);
    let rt = Runtime::builder().threads(2).build().expect("dirk runtime");
    let Some(gpu) = rt.enter(processors).into_iter().next() else {
        eprintln!("gpu: no GPU found (install a Vulkan driver such as Debian's mesa-vulkan-drivers); nothing measured");
        return;
    };
    gpu.open().expect("the first GPU opens");
    let device = gpu.name();
    let client = gpu.device().client();
    let group = format!("gpu tasks on {device}");
    about(&group, ABOUT);
    eprintln!("gpu: {gpu}, median of {runs} runs");

    // A thread that runs closures sent to it: the peer of a runner thread.
    let (to_runner, jobs) = mpsc::channel::<Box<dyn FnOnce() + Send>>();
    std::thread::spawn(move || {
        for job in jobs {
            job();
        }
    });
    let round_trip = |job: Box<dyn FnOnce() + Send>| {
        let (done, wait) = mpsc::channel();
        to_runner
            .send(Box::new(move || {
                job();
                let _ = done.send(());
            }))
            .unwrap();
        wait.recv().unwrap();
    };

    // empty task, spawn+fetch
    let m = pick(5_000, 500);
    let case = "empty task, spawn+fetch";
    let s = sample(runs, || {
        ns_per(
            time(|| {
                for _ in 0..m {
                    spawn_on(&rt, Scope::gpu(0)).fetch().unwrap();
                }
            }),
            m,
        )
    });
    report(&group, case, "dirk Scope::gpu(0)", s, "ns/task", true);
    let s = sample(runs, || {
        ns_per(
            time(|| {
                for _ in 0..m {
                    spawn_on(&rt, Scope::any()).fetch().unwrap();
                }
            }),
            m,
        )
    });
    report(&group, case, "dirk unscoped (via a CPU thread)", s, "ns/task", true);
    let s = sample(runs, || ns_per(time(|| (0..m).for_each(|_| round_trip(Box::new(|| ())))), m));
    report(&group, case, "thread + mpsc round trip", s, "ns/task", true);
    let k = pick(500, 50);
    let scratch = client.empty(4);
    let s = sample(runs, || {
        ns_per(
            time(|| {
                for _ in 0..k {
                    // SAFETY: the buffer holds one u32.
                    let arg = unsafe { BufferArg::from_raw_parts(scratch.clone(), 1) };
                    write_one::launch(&client, CubeCount::Static(1, 1, 1), CubeDim::new_1d(1), arg);
                    cubecl::future::block_on(client.sync()).unwrap();
                }
            }),
            k,
        )
    });
    report(&group, case, "CubeCL kernel launch + sync", s, "ns/task", true);

    // empty task, 1000 queued
    let n = 1000;
    let case = "empty task, 1000 queued";
    let s = sample(runs, || {
        ns_per(
            time(|| {
                let tasks: Vec<_> = (0..n).map(|_| spawn_on(&rt, Scope::gpu(0))).collect();
                tasks.iter().for_each(|t| t.wait().unwrap());
            }),
            n,
        )
    });
    report(&group, case, "dirk Scope::gpu(0)", s, "ns/task", true);
    let s = sample(runs, || {
        ns_per(
            time(|| {
                let (done, wait) = mpsc::channel();
                for _ in 0..n {
                    let done = done.clone();
                    to_runner.send(Box::new(move || done.send(()).unwrap())).unwrap();
                }
                (0..n).for_each(|_| wait.recv().unwrap());
            }),
            n,
        )
    });
    report(&group, case, "thread + mpsc queue", s, "ns/task", true);

    // one tiny kernel and a read per task
    let case = "tiny kernel + read, per task";
    let s = sample(runs, || {
        ns_per(
            time(|| {
                for _ in 0..k {
                    let t = rt.enter(|| spawn!(scope = Scope::gpu(0), tiny()));
                    assert_eq!(t.fetch_vec().unwrap(), [7]);
                }
            }),
            k,
        )
    });
    report(&group, case, "dirk Scope::gpu(0)", s, "ns/task", true);
    let s = sample(runs, || {
        ns_per(
            time(|| {
                for _ in 0..k {
                    let out = client.empty(4);
                    // SAFETY: the buffer holds one u32.
                    let arg = unsafe { BufferArg::from_raw_parts(out.clone(), 1) };
                    write_one::launch(&client, CubeCount::Static(1, 1, 1), CubeDim::new_1d(1), arg);
                    assert_eq!(u32::from_bytes(&client.read_one(out).unwrap())[0], 7);
                }
            }),
            k,
        )
    });
    report(&group, case, "CubeCL on the calling thread", s, "ns/task", true);

    // bandwidth
    let group = format!("gpu transfers on {device}");
    for mib in [1, pick(64, 8)] {
        let floats = mib << 18;
        let data: Vec<f32> = (0..floats).map(|i| i as f32).collect();
        let case = format!("upload {mib} MiB");
        let s = sample(runs, || {
            let input = GpuVec::from(data.clone());
            let elapsed = time(|| rt.enter(|| spawn!(scope = Scope::gpu(0), upload(input))).wait().unwrap());
            mib_per_s(mib, elapsed)
        });
        report(&group, &case, "dirk (GpuVec into a GPU task)", s, "MiB/s", false);
        let s = sample(runs, || {
            mib_per_s(
                mib,
                time(|| {
                    black_box(client.create_from_slice(f32::as_bytes(&data)));
                    cubecl::future::block_on(client.sync()).unwrap();
                }),
            )
        });
        report(&group, &case, "CubeCL create_from_slice", s, "MiB/s", false);

        let case = format!("download {mib} MiB");
        let s = sample(runs, || {
            let resident = rt.enter(|| with_gpu(0, |gpu| gpu.upload(&data))).unwrap();
            with_gpu_sync(&rt);
            let start = Instant::now();
            black_box(resident.host().unwrap());
            mib_per_s(mib, start.elapsed())
        });
        report(&group, &case, "dirk (GpuVec::host)", s, "MiB/s", false);
        let s = sample(runs, || {
            let handle = client.create_from_slice(f32::as_bytes(&data));
            cubecl::future::block_on(client.sync()).unwrap();
            let start = Instant::now();
            black_box(client.read_one(handle).unwrap());
            mib_per_s(mib, start.elapsed())
        });
        report(&group, &case, "CubeCL read_one", s, "MiB/s", false);
    }

    // a streaming GPU stage against tasks per frame
    let group = format!("gpu streaming on {device}");
    let case = "image filter, frames/s";
    let frames = pick(200, 20);
    let s = sample(runs, || {
        let start = Instant::now();
        let seen = rt.enter(|| {
            let mut next = 0;
            let out = streaming! {
                let k = { next += 1; (next <= frames).then_some(next - 1) }?;
                #[dirk(buffer = 4)] let pixels = GpuVec::from(image(k));
                #[dirk(scope = Scope::gpu(0), buffer = 4)] let found = edges(pixels);
                let fraction = edge_fraction(found.host().unwrap());
                fraction
            };
            let seen = out.iter().count();
            out.wait().unwrap();
            seen
        });
        assert_eq!(seen, frames);
        frames as f64 / start.elapsed().as_secs_f64()
    });
    report(&group, case, "dirk streaming! (GPU stage, prefetch)", s, "frames/s", false);
    let s = sample(runs, || {
        let start = Instant::now();
        rt.enter(|| {
            let found: Vec<_> =
                (0..frames).map(|k| spawn!(scope = Scope::gpu(0), edges(spawn!(frame_task(k))))).collect();
            let fractions: Vec<_> = found.iter().map(|e| spawn!(edge_fraction(e))).collect();
            fractions.iter().for_each(|f| f.wait().unwrap());
        });
        frames as f64 / start.elapsed().as_secs_f64()
    });
    report(&group, case, "dirk tasks per frame", s, "frames/s", false);
}

#[task]
fn frame_task(k: usize) -> GpuVec<f32> {
    image(k).into()
}

/// Spawns an empty GPU task on `rt` with `scope`.
fn spawn_on(rt: &Runtime, scope: Scope) -> Task<()> {
    rt.enter(|| spawn!(scope = scope, empty()))
}

/// Waits until GPU 0 of `rt` has run everything queued on it.
fn with_gpu_sync(rt: &Runtime) {
    rt.enter(|| with_gpu(0, |gpu| gpu.sync())).unwrap().unwrap();
}

fn mib_per_s(mib: usize, elapsed: Duration) -> f64 {
    mib as f64 / elapsed.as_secs_f64()
}
