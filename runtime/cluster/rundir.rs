//! The run directory: where a cluster's sockets live, private to its user
//! and removed on every way out.
//!
//! Process 0 makes `$TMPDIR/dirk-run-<pid>-<random>` with mode 0700 (its
//! name is not guessable, and nobody else can enter it, so nobody else can
//! reach or squat the sockets inside); its own socket and each worker's
//! peer socket are made inside with mode 0600. The directory goes away:
//! - when the runtime is dropped (normal end, and a panic that unwinds past
//!   it): [`RunDir::remove`] from the cluster's shutdown;
//! - when the process exits without dropping it (the global runtime, or
//!   `std::process::exit`): an `atexit` hook;
//! - on SIGINT, SIGTERM or SIGHUP: a handler removes the files (only
//!   `unlink` and `rmdir`, which a signal handler may call), then lets the
//!   signal do what it would have done. The workers see their connection
//!   close and exit.
//! - when process 0 is killed outright (SIGKILL), nothing in it runs: its
//!   workers exit as their connection closes, and the next cluster started
//!   by the same user removes directories whose process is gone.
//!
//! The handler and the hook read a fixed table of paths, published before
//! they are installed: no allocation or lock in a signal handler.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

use crate::Error;

const PREFIX: &str = "dirk-run-";

/// A run directory and the files a cluster makes in it.
#[derive(Debug)]
pub(crate) struct RunDir {
    path: PathBuf,
    slot: usize,
}

impl RunDir {
    /// Makes a new private directory under the temporary directory, after
    /// removing those of this user whose process is gone.
    pub(crate) fn create(random: &[u8]) -> Result<RunDir, Error> {
        let base = std::env::temp_dir();
        sweep(&base);
        let name = format!("{PREFIX}{}-{}", std::process::id(), super::launch::hex(random));
        let path = base.join(name);
        std::fs::DirBuilder::new().mode(0o700).create(&path).map_err(|e| {
            Error::Transport(format!("could not make the cluster's private directory {}: {e}", path.display()))
        })?;
        let slot = publish(&path);
        install_cleanup();
        Ok(RunDir { path, slot })
    }

    /// Where process 0 listens.
    pub(crate) fn main_socket(&self) -> PathBuf {
        self.path.join("p0.sock")
    }

    /// Removes the directory and everything in it, and forgets it.
    pub(crate) fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.path);
        unpublish(self.slot);
    }
}

/// Makes the socket at `path` readable and writable by its owner only.
pub(crate) fn private(path: &Path) -> Result<(), Error> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::Transport(format!("could not make {} private: {e}", path.display())))
}

/// Removes this user's run directories whose process no longer exists.
fn sweep(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else { return };
    // SAFETY: `geteuid` has no preconditions.
    let me = unsafe { libc::geteuid() };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<libc::pid_t>().ok()) else { continue };
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_dir() || meta.uid() != me || alive(pid) {
            continue;
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

/// Whether process `pid` exists.
fn alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Run directories live at once in a process, at most.
const SLOTS: usize = 64;

/// The published directories: each a leaked C string, or null. The signal
/// handler and the exit hook read them; `publish` and `unpublish` write them
/// under `WRITERS`.
static PATHS: [AtomicPtr<libc::c_char>; SLOTS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS];
static WRITERS: Mutex<()> = Mutex::new(());
static PUBLISHED: AtomicUsize = AtomicUsize::new(0);

fn publish(path: &Path) -> usize {
    let _one = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else { return SLOTS };
    for (i, slot) in PATHS.iter().enumerate() {
        if slot.load(Ordering::Acquire).is_null() {
            slot.store(c.into_raw(), Ordering::Release);
            PUBLISHED.fetch_add(1, Ordering::AcqRel);
            return i;
        }
    }
    SLOTS // more than SLOTS clusters at once: this one is removed on drop only
}

fn unpublish(slot: usize) {
    if slot >= SLOTS {
        return;
    }
    let _one = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
    let old = PATHS[slot].swap(std::ptr::null_mut(), Ordering::AcqRel);
    if !old.is_null() {
        PUBLISHED.fetch_sub(1, Ordering::AcqRel);
        // A signal handler may be reading it right now: the string is
        // leaked rather than freed (a few bytes per cluster).
    }
}

/// Removes the files of every published directory, then the directories,
/// with async-signal-safe calls only (`opendir` is not one: the files a
/// cluster makes are named, `p0.sock` and `p0-w<k>.sock`).
fn remove_published() {
    if PUBLISHED.load(Ordering::Acquire) == 0 {
        return;
    }
    for slot in &PATHS {
        let dir = slot.load(Ordering::Acquire);
        if dir.is_null() {
            continue;
        }
        // SAFETY: a published pointer is a leaked, never freed C string.
        let dir = unsafe { std::ffi::CStr::from_ptr(dir) }.to_bytes();
        let mut buf = [0u8; 4096];
        let mut remove = |file: &[u8]| {
            let len = dir.len() + 1 + file.len();
            if len + 1 > buf.len() {
                return;
            }
            buf[..dir.len()].copy_from_slice(dir);
            buf[dir.len()] = b'/';
            buf[dir.len() + 1..len].copy_from_slice(file);
            buf[len] = 0;
            // SAFETY: `buf` holds a NUL-terminated path.
            unsafe { libc::unlink(buf.as_ptr().cast()) };
        };
        remove(b"p0.sock");
        let mut name = *b"p0-w00.sock";
        for w in 1..=63u8 {
            if w < 10 {
                remove(&[b'p', b'0', b'-', b'w', b'0' + w, b'.', b's', b'o', b'c', b'k']);
            } else {
                name[4] = b'0' + w / 10;
                name[5] = b'0' + w % 10;
                remove(&name);
            }
        }
        if dir.len() < buf.len() {
            buf[..dir.len()].copy_from_slice(dir);
            buf[dir.len()] = 0;
            // SAFETY: `buf` holds a NUL-terminated path.
            unsafe { libc::rmdir(buf.as_ptr().cast()) };
        }
    }
}

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// What each signal did before (`SIGNALS` order), to do it after cleaning.
static PREVIOUS: [AtomicUsize; 3] = [const { AtomicUsize::new(libc::SIG_DFL) }; 3];

extern "C" fn on_signal(signal: libc::c_int) {
    remove_published();
    let Some(i) = SIGNALS.iter().position(|&s| s == signal) else { return };
    let previous = PREVIOUS[i].load(Ordering::Acquire);
    if previous == libc::SIG_IGN {
        return;
    }
    if previous != libc::SIG_DFL {
        // SAFETY: it was installed as a plain one-argument handler (checked
        // when it was saved).
        let handler: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(previous) };
        return handler(signal);
    }
    // SAFETY: restoring the default action and raising the signal again
    // ends the process as the signal would have.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

extern "C" fn at_exit() {
    remove_published();
}

/// Installs the signal handlers and the exit hook, once per process. A
/// signal whose handler takes `siginfo` (`SA_SIGINFO`) is left alone.
fn install_cleanup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: `at_exit` only calls async-signal-safe functions on data
        // published before it can run.
        unsafe { libc::atexit(at_exit) };
        for (i, &signal) in SIGNALS.iter().enumerate() {
            // SAFETY: `sigaction` with a zeroed, then filled, struct; the
            // old action is read back before the new one is set.
            unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                // Left alone: a signal that is ignored (`nohup`), and one
                // whose handler takes `siginfo`.
                if libc::sigaction(signal, std::ptr::null(), &mut old) != 0
                    || old.sa_flags & libc::SA_SIGINFO != 0
                    || old.sa_sigaction == libc::SIG_IGN
                {
                    continue;
                }
                PREVIOUS[i].store(old.sa_sigaction, Ordering::Release);
                let mut new: libc::sigaction = std::mem::zeroed();
                new.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                new.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut new.sa_mask);
                libc::sigaction(signal, &new, std::ptr::null_mut());
            }
        }
    });
}
