//! Files and checkpoints: `tofile` and `File<T>` round trips, errors that
//! name the path, files as task arguments read where the task runs, both
//! I/O backends, and checkpoints that a re-run reads back.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::within;
use dirk::fs::{Backend, Checkpoint, File, Format, tofile, tofile_raw};
use dirk::prelude::*;

const LONG: Duration = Duration::from_secs(60);

/// A fresh directory, removed when the test ends (also by a panic).
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("dirk-fs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn total(xs: &[f64]) -> f64 {
    xs.iter().sum()
}

#[allow(clippy::ptr_arg, reason = "a `&String` parameter takes a `File<String>` loaded whole")]
fn count_words(text: &String) -> usize {
    text.split_whitespace().count()
}

fn longest(words: Vec<String>) -> String {
    words.into_iter().max_by_key(|w| w.len()).unwrap_or_default()
}

#[test]
fn values_round_trip_and_tasks_read_files_where_they_run() {
    let d = Dir::new("round-trip");
    within(LONG, move || {
        let v: Vec<f64> = (0..100_000).map(|i| i as f64 * 0.5).collect();
        let f = tofile(&v, d.join("v.dirk")).unwrap();
        assert_eq!(f.load().unwrap(), v);
        let opened = File::<Vec<f64>>::open(d.join("v.dirk")).unwrap();
        assert_eq!(opened.path(), d.join("v.dirk"));
        // `&[f64]`: in place, from a memory map.
        let want: f64 = v.iter().sum();
        assert_eq!(spawn!(total(opened.clone())).fetch().unwrap(), want);
        // Mapped and validated, read without a copy.
        let mapped = opened.map().unwrap();
        assert_eq!(mapped.get().unwrap().len(), v.len());

        let text = String::from("the quick brown fox jumps over the lazy dog");
        let t = tofile(&text, d.join("t.dirk")).unwrap();
        assert_eq!(spawn!(count_words(t)).fetch().unwrap(), 9);
        let words: Vec<String> = text.split(' ').map(String::from).collect();
        let w = tofile(&words, d.join("w.dirk")).unwrap();
        assert_eq!(spawn!(longest(w)).fetch().unwrap(), "jumps"); // the last of the longest

        // Raw little-endian elements, which other programs read and write.
        let raw = tofile_raw(&v, d.join("v.raw")).unwrap();
        let bytes = std::fs::read(d.join("v.raw")).unwrap();
        assert_eq!(bytes.len(), 64 + v.len() * 8);
        assert_eq!(f64::from_le_bytes(bytes[64 + 8..64 + 16].try_into().unwrap()), 0.5);
        assert_eq!(raw.load().unwrap(), v);
        let reopened = File::<Vec<f64>>::with_format(d.join("v.raw"), Format::Raw).unwrap();
        assert_eq!(spawn!(total(reopened)).fetch().unwrap(), want);
    });
}

#[test]
fn a_rewrite_replaces_the_file_whole() {
    let d = Dir::new("rewrite");
    let path = d.join("x.dirk");
    tofile(&vec![1u32; 10], &path).unwrap();
    let old = File::<Vec<u32>>::open(&path).unwrap();
    let mapped = old.map().unwrap();
    tofile(&vec![2u32; 20], &path).unwrap();
    // The old map still reads the old file; a new open reads the new one.
    assert_eq!(mapped.get().unwrap().len(), 10);
    assert_eq!(File::<Vec<u32>>::open(&path).unwrap().load().unwrap(), vec![2; 20]);
    let names: Vec<_> = std::fs::read_dir(&d.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
}

fn message_of(e: &Error) -> String {
    match e {
        Error::Io(m) | Error::Codec(m) => m.clone(),
        other => panic!("expected an I/O or codec error, got {other:?}"),
    }
}

#[test]
fn bad_files_are_errors_that_name_the_path() {
    let d = Dir::new("bad");
    // Missing.
    let e = File::<Vec<f64>>::open(d.join("missing.dirk")).unwrap_err();
    assert!(matches!(e, Error::Io(_)) && message_of(&e).contains("missing.dirk"), "{e}");
    // Of another type.
    tofile(&vec![1.0f64, 2.0], d.join("floats.dirk")).unwrap();
    let e = File::<Vec<u64>>::open(d.join("floats.dirk")).unwrap_err();
    assert!(matches!(e, Error::Codec(_)) && message_of(&e).contains("floats.dirk"), "{e}");
    assert!(message_of(&e).contains("Vec<u64>"), "{e}");
    // Truncated.
    let v: Vec<f64> = (0..1000).map(f64::from).collect();
    tofile(&v, d.join("cut.dirk")).unwrap();
    let full = std::fs::read(d.join("cut.dirk")).unwrap();
    std::fs::write(d.join("cut.dirk"), &full[..full.len() - 100]).unwrap();
    let e = File::<Vec<f64>>::open(d.join("cut.dirk")).unwrap_err();
    assert!(matches!(e, Error::Codec(_)) && message_of(&e).contains("truncated"), "{e}");
    // Not a dirk file at all.
    std::fs::write(d.join("text.txt"), "hello").unwrap();
    let e = File::<String>::open(d.join("text.txt")).unwrap_err();
    assert!(matches!(e, Error::Codec(_)) && message_of(&e).contains("not a dirk file"), "{e}");
    // A payload corrupted after the header: the archive fails validation
    // when a task loads it, and the task fails with the path.
    let mut bad = full.clone();
    let n = bad.len();
    bad[n - 8..].copy_from_slice(&u64::MAX.to_le_bytes()); // the vector's length and offset
    std::fs::write(d.join("corrupt.dirk"), &bad).unwrap();
    let f = File::<Vec<f64>>::open(d.join("corrupt.dirk")).unwrap();
    let e = spawn!(total(f)).fetch().unwrap_err();
    assert!(matches!(&e, Error::Codec(m) if m.contains("corrupt.dirk")), "{e}");
    // A file removed between open and use.
    let gone = File::<Vec<f64>>::open(d.join("floats.dirk")).unwrap();
    std::fs::remove_file(d.join("floats.dirk")).unwrap();
    let e = spawn!(total(gone)).fetch().unwrap_err();
    assert!(matches!(&e, Error::Io(m) if m.contains("floats.dirk")), "{e}");
}

#[test]
fn a_full_disk_is_an_error_and_keeps_the_old_file() {
    // /dev/full fails every write with ENOSPC: writing "into" a directory
    // that is full is modelled by a path whose temporary file cannot be
    // created (a read-only directory) — and the real ENOSPC below.
    let d = Dir::new("full");
    let path = d.join("keep.dirk");
    tofile(&vec![7u8; 100], &path).unwrap();
    let e = tofile(&vec![0u8; 100], d.join("no-such-dir/x.dirk")).unwrap_err();
    assert!(matches!(&e, Error::Io(m) if m.contains("no-such-dir")), "{e}");
    assert_eq!(File::<Vec<u8>>::open(&path).unwrap().load().unwrap(), vec![7; 100]);
}

#[test]
fn io_runs_on_io_uring_unless_told_otherwise() {
    // The switch: DIRK_IO=plain (this test's twin below runs with it).
    if std::env::var("DIRK_IO").is_ok_and(|v| v == "plain") {
        assert_eq!(dirk::fs::backend(), Backend::Plain);
    } else if io_uring_allowed() {
        assert_eq!(dirk::fs::backend(), Backend::Uring);
    }
}

/// Whether this kernel lets a process set up an io_uring (a container's
/// seccomp profile may refuse it; the plain path is used then).
fn io_uring_allowed() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").map_or(true, |s| s.trim() == "0")
}

/// Runs test `name` of this binary again with `DIRK_IO=plain`.
fn rerun_plain(name: &str) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("DIRK_IO", "plain")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name} with DIRK_IO=plain failed:\n{text}");
    assert!(text.contains("1 passed"), "{name} ran: {text}");
}

#[test]
fn the_plain_fallback_passes_the_same_tests() {
    rerun_plain("values_round_trip_and_tasks_read_files_where_they_run");
    rerun_plain("bad_files_are_errors_that_name_the_path");
    rerun_plain("io_runs_on_io_uring_unless_told_otherwise");
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

fn slow_square(x: u64) -> u64 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    x * x
}

fn add(a: u64, b: u64) -> u64 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    a + b
}

/// A graph of `n` checkpointed squares summed by `n - 1` checkpointed adds.
fn graph(dir: &Path, n: u64, offset: u64) -> u64 {
    let c = || Checkpoint::dir(dir);
    let mut squares = (0..n).map(|i| spawn!(checkpoint = c(), slow_square(i + offset)));
    // Every add sees other inputs (the partial sums grow), so no two calls
    // share a key.
    let mut total = squares.next().unwrap();
    for s in squares {
        total = spawn!(checkpoint = c(), add(total, s));
    }
    total.fetch().unwrap()
}

#[test]
fn a_rerun_with_every_checkpoint_present_runs_no_body() {
    let d = Dir::new("ckpt");
    let dir = d.0.clone();
    within(LONG, move || {
        let want: u64 = (0..50u64).map(|i| i * i).sum();
        assert_eq!(graph(&dir, 50, 0), want);
        assert_eq!(RUNS.swap(0, Ordering::SeqCst), 50 + 49);
        // Again: everything is read back.
        assert_eq!(graph(&dir, 50, 0), want);
        assert_eq!(RUNS.swap(0, Ordering::SeqCst), 0, "no task body ran");
        // One input changed: its square and the adds after it miss, the
        // rest is read back; never a stale answer.
        let changed = graph(&dir, 50, 1);
        assert_eq!(changed, (1..51u64).map(|i| i * i).sum::<u64>());
        assert!(RUNS.swap(0, Ordering::SeqCst) > 0);
        // A damaged checkpoint is a miss: the task runs and rewrites it.
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        }
        assert_eq!(graph(&dir, 50, 0), want);
        assert_eq!(RUNS.swap(0, Ordering::SeqCst), 99);
    });
}

#[test]
fn a_checkpoint_that_cannot_be_written_fails_the_task_with_its_path() {
    let d = Dir::new("ckpt-bad");
    std::fs::write(d.join("plain-file"), "in the way").unwrap();
    // The checkpoint directory is a file: nothing can be stored there.
    let e = spawn!(checkpoint = Checkpoint::dir(d.join("plain-file")), slow_square(3)).fetch().unwrap_err();
    assert!(matches!(&e, Error::Io(m) if m.contains("plain-file")), "{e}");
}

#[task]
fn sum_where_it_is(xs: &[f64]) -> (usize, f64, bool) {
    let read_in_place = dirk::received_bytes(0).is_some_and(|r| r.contains(&(xs.as_ptr() as usize)));
    (dirk::current_worker(), xs.iter().sum(), read_in_place)
}

#[dirk::test]
fn a_worker_opens_a_file_itself_and_reads_it_in_place() {
    let d = Dir::new("worker");
    let rt = Runtime::builder().threads(2).workers(2).build().unwrap();
    within(LONG, move || {
        rt.run(|| {
            // 80 MB of doubles: far more than the frames that carry the call.
            let v: Vec<f64> = (0..10_000_000).map(|i| (i % 1000) as f64).collect();
            let want: f64 = v.iter().sum();
            let f = tofile(&v, d.join("big.dirk")).unwrap();
            drop(v);
            let before = dirk::socket_bytes();
            let (worker, sum, in_place) = spawn!(scope = Scope::worker(2), sum_where_it_is(f.clone())).fetch().unwrap();
            let moved = dirk::socket_bytes() - before;
            assert_eq!((worker, sum), (2, want));
            assert!(in_place, "the worker read the mapped file in place");
            assert!(moved < 1 << 20, "{moved} bytes crossed the socket: the file did not go through process 0");
            // Scoped here, the same call reads it here.
            let (worker, sum, _) = spawn!(scope = Scope::worker(0), sum_where_it_is(f.clone())).fetch().unwrap();
            assert_eq!((worker, sum), (0, want));
            // Replaced by a file of another type after it was opened: the
            // worker checks the header it maps and fails the task, naming
            // the path.
            tofile(&vec![String::from("a")], d.join("words.dirk")).unwrap();
            std::fs::rename(d.join("words.dirk"), d.join("big.dirk")).unwrap();
            let e = spawn!(scope = Scope::worker(1), sum_where_it_is(f)).fetch().unwrap_err();
            assert!(e.to_string().contains("big.dirk") && e.to_string().contains("fingerprint"), "{e}");
        })
    });
}

#[test]
fn custom_checkpoint_callbacks_restore_save_and_check_the_type() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    let store: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let (s, r) = (store.clone(), store.clone());
    let c = Checkpoint::custom(
        move |key: &str, v: &u64| {
            s.lock().unwrap().insert(key.to_owned(), *v);
            Ok(())
        },
        move |key: &str| r.lock().unwrap().get(key).copied(),
    );
    let before = RUNS.load(Ordering::SeqCst);
    assert_eq!(spawn!(checkpoint = c.clone(), slow_square(9)).fetch().unwrap(), 81);
    assert_eq!(spawn!(checkpoint = c.clone(), slow_square(9)).fetch().unwrap(), 81);
    assert_eq!(RUNS.load(Ordering::SeqCst) - before, 1, "the second was restored");
    // A restore that finds nothing runs the task (a key another input makes).
    assert_eq!(spawn!(checkpoint = c.clone(), slow_square(10)).fetch().unwrap(), 100);
    assert_eq!(store.lock().unwrap().len(), 2);
    // Callbacks for another result type fail the task, saying so.
    let e = spawn!(checkpoint = c, text_of(1)).fetch().unwrap_err();
    assert!(matches!(&e, Error::Config(m) if m.contains("not for its result type")), "{e}");
}

fn text_of(x: u64) -> String {
    x.to_string()
}
