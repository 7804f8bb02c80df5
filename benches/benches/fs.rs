//! Files and checkpoints: `dirk::fs` against `dd` on the same filesystem,
//! in the same run.
//!
//! What each case times, and how, is [`ABOUT`] (BENCHMARKS.md shows it too).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dirk::Runtime;
use dirk::fs::{Checkpoint, File, tofile};
use dirk::prelude::*;
use dirk_benches::harness::{about, pick, report, sample_of, target, target_ratio, time};

const ABOUT: &str = "\
- `tofile 1 GiB`: `tofile(&v, path)` of a `Vec<u8>` of 1 GiB (archiving it, writing it through the I/O thread on io_uring, `fsync`, rename) against `dd if=/dev/zero of=path bs=8M count=128 conv=fsync` into the same directory (the target directory's filesystem), as MB/s; the runs alternate, each file removed after it is timed.\n\
- `open + first access`: `File::<Vec<f64>>::open` of a 1 GiB file written by `tofile`, then `map()` and the first element through `get()` (header check, memory map, archive validation), in µs.\n\
- `checkpoint restart, 1000 tasks`: a graph of 1000 checkpointed tasks (each squaring its input) run once to store the checkpoints, then again: the second run's time (no body runs) against the time to open and load the same 1000 files directly, in ms.\n\
Medians of 5 runs (3 for the 1 GiB writes) after a warm-up.";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-fs");
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("a scratch directory under target/");
    d
}

fn bench_tofile(d: &Path) {
    let bytes: usize = pick(1 << 30, 64 << 20);
    let case = format!("tofile {} MiB", bytes >> 20);
    let v = vec![7u8; bytes];
    let path = d.join("big.dirk");
    let dd_path = d.join("big.dd");
    let (mut ours, mut dd) = (Vec::new(), Vec::new());
    for run in 0..=pick(3, 1) {
        let t = time(|| drop(tofile(&v, &path).expect("tofile")));
        let _ = std::fs::remove_file(&path);
        let out = format!("of={}", dd_path.display());
        let count = format!("count={}", bytes >> 23);
        let u = time(|| {
            let status = Command::new("dd")
                .args(["if=/dev/zero", &out, "bs=8M", &count, "conv=fsync", "status=none"])
                .status()
                .expect("dd runs");
            assert!(status.success());
        });
        let _ = std::fs::remove_file(&dd_path);
        if run > 0 {
            ours.push(bytes as f64 / 1e6 / t.as_secs_f64());
            dd.push(bytes as f64 / 1e6 / u.as_secs_f64());
        }
    }
    report("fs", &case, "dirk tofile", sample_of(ours), "MB/s", false);
    report("fs", &case, "dd conv=fsync", sample_of(dd), "MB/s", false);
    target_ratio(
        "fs",
        &case,
        "dirk tofile",
        "dd conv=fsync",
        0.8,
        "tofile of 1 GiB: at least 0.8× dd conv=fsync on the same filesystem (issue 26)",
    );
}

fn bench_open(d: &Path) {
    let n: usize = pick(1 << 27, 1 << 20);
    let path = d.join("floats.dirk");
    tofile(&vec![1.5f64; n], &path).expect("tofile");
    let case = format!("open + first access, {} MiB of f64", (n * 8) >> 20);
    let mut us = Vec::new();
    for run in 0..=5 {
        let mut first = 0.0;
        let t = time(|| {
            let f = File::<Vec<f64>>::open(&path).expect("open");
            let m = f.map().expect("map");
            first = m.get().expect("valid")[0].to_native();
        });
        assert_eq!(first, 1.5);
        if run > 0 {
            us.push(t.as_secs_f64() * 1e6);
        }
    }
    report("fs", &case, "dirk File::open + map + get", sample_of(us), "µs", true);
    target(
        "fs",
        &case,
        "dirk File::open + map + get",
        50.0,
        "File::open and the first &[f64] access: at most 50 µs (issue 26)",
    );
}

fn square(x: u64) -> u64 {
    x * x
}

fn bench_checkpoints(d: &Path, rt: &Runtime) {
    let n = pick(1000, 100);
    let ck = d.join("ckpt");
    let graph = || {
        rt.run(|| {
            let tasks: Vec<Task<u64>> =
                (0..n as u64).map(|i| spawn!(checkpoint = Checkpoint::dir(&ck), square(i))).collect();
            dirk::join_all(tasks).take().expect("the graph runs")
        })
    };
    let first = graph();
    let files: Vec<PathBuf> = std::fs::read_dir(&ck).expect("checkpoints").map(|e| e.expect("entry").path()).collect();
    assert_eq!(files.len(), n);
    let (mut again, mut direct) = (Vec::new(), Vec::new());
    for run in 0..=5 {
        let t = time(|| assert_eq!(graph(), first));
        let u = time(|| {
            for f in &files {
                let _ = File::<u64>::open(f).expect("open").load().expect("load");
            }
        });
        if run > 0 {
            again.push(ms(t));
            direct.push(ms(u));
        }
    }
    let case = format!("checkpoint restart, {n} tasks");
    report("fs", &case, "dirk, every checkpoint present", sample_of(again), "ms", true);
    report("fs", &case, "open + load the same files", sample_of(direct), "ms", true);
    target_ratio(
        "fs",
        &case,
        "dirk, every checkpoint present",
        "open + load the same files",
        2.0,
        "restart of a 1000-task checkpointed graph: at most 2× opening and validating its files (issue 26)",
    );
}

fn main() {
    about("fs", ABOUT);
    let d = dir();
    let rt = Runtime::builder().threads(2).build().expect("a runtime");
    eprintln!("  fs: I/O backend {:?}", dirk::fs::backend());
    bench_checkpoints(&d, &rt);
    bench_open(&d);
    bench_tofile(&d);
    let _ = std::fs::remove_dir_all(&d);
}
