//! Files and checkpoints: Dagger's `File`/`tofile` and per-task
//! checkpointing, with the I/O on a thread of its own (io_uring where the
//! kernel allows it).
//!
//! - [`File<T>`]: a typed value on disk, opened lazily (the header is
//!   checked, nothing else is read) and loaded by the task that needs it;
//!   pass it to `spawn!` where a `T`, `&T` or `&[E]` goes.
//! - [`tofile`]: writes a value atomically (temporary file, `fsync`,
//!   rename) and returns its `File`.
//! - [`Checkpoint`]: `spawn!(checkpoint = Checkpoint::dir("ckpt"), f(x))`
//!   stores the result under a key made of the task's name and its inputs'
//!   bytes; a later run with the same inputs reads it back instead of
//!   running `f`, and a changed input is a miss, never a stale answer.
//!
//! Errors name the path: `Error::Io` for what the system refused (a
//! missing file, a full disk), `Error::Codec` for bytes that are not what
//! they should be (a truncated file, a file of another type).

mod file;
mod io;

use std::path::{Path, PathBuf};

pub use self::file::{File, Format, Mapped, tofile, tofile_raw};
pub use self::io::{Backend, backend};

use crate::task::remote::Encode;
use crate::task::slots::{RemoteSlots, SlotRef};
use crate::transport::wire::{BlobWriter, Wire};
use crate::{Error, Options, Task};

/// A `File<T>` argument's path and type fingerprint, for the worker that
/// will open it.
pub(crate) fn where_is<T: Send + Sync + 'static>(value: &dyn std::any::Any) -> Option<(String, u64)> {
    let file = value.downcast_ref::<File<T>>()?;
    Some((file.path().to_str()?.to_owned(), file::fingerprint::<T>()))
}

/// Maps the dirk file at `path` for a task in this (worker) process: its
/// header must be an rkyv payload of the type `fingerprint` names. The
/// payload is `&map[HEADER..]`.
pub(crate) fn map_for_worker(path: &str, fingerprint: u64) -> Result<std::sync::Arc<memmap2::Mmap>, Error> {
    file::map_checked(Path::new(path), fingerprint).map(std::sync::Arc::new)
}

pub(crate) use self::file::HEADER;

/// Where `spawn!(checkpoint = ..)` keeps a task's result.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    dir: PathBuf,
}

impl Checkpoint {
    /// Results kept as dirk files in `dir` (created when first needed),
    /// one per task name and inputs.
    ///
    /// ```
    /// use dirk::fs::Checkpoint;
    /// use dirk::prelude::*;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// static RUNS: AtomicUsize = AtomicUsize::new(0);
    /// fn slow(x: u64) -> u64 { RUNS.fetch_add(1, Ordering::Relaxed); x * x }
    ///
    /// let dir = std::env::temp_dir().join(format!("dirk-doc-ckpt-{}", std::process::id()));
    /// let first = spawn!(checkpoint = Checkpoint::dir(&dir), slow(12)).fetch()?;
    /// let again = spawn!(checkpoint = Checkpoint::dir(&dir), slow(12)).fetch()?;  // read back
    /// let other = spawn!(checkpoint = Checkpoint::dir(&dir), slow(13)).fetch()?;  // another input: runs
    /// assert_eq!((first, again, other), (144, 144, 169));
    /// assert_eq!(RUNS.load(Ordering::Relaxed), 2);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn dir(dir: impl AsRef<Path>) -> Checkpoint {
        Checkpoint { dir: dir.as_ref().to_path_buf() }
    }

    /// The file that holds the result of task `name` with inputs `key`.
    fn file(&self, name: &str, key: &[u8; 32]) -> PathBuf {
        let stem: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
        let hex: String = key[..16].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{stem}-{hex}.dirk"))
    }
}

/// The key of a call: its name and the archived bytes of every argument.
fn key<S: RemoteSlots>(name: &str, slots: &S, encoders: &[Option<Encode>]) -> Result<[u8; 32], Error> {
    let mut hash = blake3::Hasher::new();
    hash.update(name.as_bytes());
    let mut i = 0;
    let mut failed = None;
    slots.each_slot(&mut |slot| {
        let value = match slot {
            SlotRef::Value(v) | SlotRef::Task(_, Some(v)) => Some(v),
            _ => None,
        };
        let bytes = match (value, encoders.get(i).copied().flatten()) {
            (Some(v), Some(encode)) => {
                (encode.write)(v, BlobWriter::growable()).map(|w| w.into_vec().unwrap_or_default())
            }
            _ => Err(Error::Config(format!(
                "a checkpointed task's argument {} must archive (rkyv) and be in this process: it is part of the key",
                i + 1
            ))),
        };
        match bytes {
            Ok(b) => {
                hash.update(&(b.len() as u64).to_le_bytes());
                hash.update(&b);
            }
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
        i += 1;
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(*hash.finalize().as_bytes()),
    }
}

/// `spawn!(checkpoint = c, f(..))`: the task reads its result from `c`
/// when a run with the same name and inputs stored it, and runs `f` (then
/// stores the result) otherwise. A checkpoint that cannot be read back
/// (truncated, of another type) is a miss; a result that cannot be stored
/// fails the task with `Error::Io` naming the file.
#[doc(hidden)]
pub fn spawn_checkpointed<S, F, R>(
    checkpoint: Checkpoint,
    options: Option<Options>,
    name: &'static str,
    encoders: &[Option<Encode>],
    slots: S,
    f: F,
) -> Task<R>
where
    S: RemoteSlots + Send + 'static,
    F: FnOnce(S) -> R + Send + 'static,
    R: Wire + Send + Sync + 'static,
{
    let encoders: Vec<Option<Encode>> = encoders.to_vec();
    let label = options.as_ref().and_then(|o| o.name.clone()).map_or_else(|| name.to_owned(), |n| n.to_string());
    let body = move |slots: S| -> R {
        let key = key(&label, &slots, &encoders).unwrap_or_else(|e| crate::error::fail_task(e));
        let path = checkpoint.file(&label, &key);
        if let Ok(Ok(value)) = File::<R>::open(&path).map(|f| f.load()) {
            return value;
        }
        let value = f(slots);
        if let Err(e) = std::fs::create_dir_all(&checkpoint.dir) {
            crate::error::fail_task(Error::Io(format!(
                "{}: cannot create the checkpoint directory: {e}",
                checkpoint.dir.display()
            )));
        }
        if let Err(e) = tofile(&value, &path) {
            crate::error::fail_task(e);
        }
        value
    };
    crate::cluster::remote::spawn_task(options, name, "", &[], slots, body)
}
