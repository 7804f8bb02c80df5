//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::sync::mpsc;
use std::time::Duration;

/// Runs `f` on its own thread and fails the test if it takes longer than
/// `limit`: a hang becomes a failure with a message, not a stuck CI run.
pub(crate) fn within<R: Send + 'static>(limit: Duration, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => {
            worker.join().expect("the test body finished");
            value
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("timed out after {limit:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the body sends before it returns"),
        },
    }
}

/// Ten seconds: the bound for tests that should take milliseconds.
pub(crate) const SHORT: Duration = Duration::from_secs(10);

/// Resident memory of this process in bytes (Linux).
pub(crate) fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("resident pages");
    pages * 4096
}

/// How many of this process's threads have a name starting with `prefix`,
/// and the user plus system CPU time they used (Linux, in 10 ms ticks).
pub(crate) fn threads_cpu_time(prefix: &str) -> (usize, Duration) {
    let mut ticks = 0u64;
    let mut threads = 0;
    for entry in std::fs::read_dir("/proc/self/task").expect("/proc/self/task").flatten() {
        let path = entry.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !name.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let Some(close) = stat.rfind(')') else { continue };
        threads += 1;
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        ticks += fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    }
    (threads, Duration::from_millis(ticks * 10))
}

/// Instantiates each test body twice: on a runtime with one thread and on
/// one with a thread per core. The body runs on the test's own thread with
/// that runtime entered, so everything it spawns or streams goes there.
///
/// ```ignore
/// on_each_runtime! {
///     fn name() { /* body */ }
/// }
/// ```
#[allow(unused_macros)]
macro_rules! on_each_runtime {
    ($(fn $name:ident() $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                fn body() $body

                #[test]
                fn one_thread() {
                    crate::common::within(crate::common::SHORT, || {
                        let rt = dirk::Runtime::builder().threads(1).build().unwrap();
                        rt.enter(body)
                    });
                }

                #[test]
                fn all_threads() {
                    crate::common::within(crate::common::SHORT, || {
                        let n = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
                        let rt = dirk::Runtime::builder().threads(n).build().unwrap();
                        rt.enter(body)
                    });
                }
            }
        )*
    };
}
