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
mod slot;

use std::path::{Path, PathBuf};

pub use self::file::{File, Format, Mapped, tofile, tofile_raw};
pub use self::io::{Backend, backend};

use crate::task::remote::Encode;
use crate::task::slots::{RemoteSlots, SlotRef};
use crate::transport::wire::{BlobWriter, Wire};
use crate::{Error, Options, Task};

/// Where `spawn!(checkpoint = ..)` keeps a task's result: dirk files in a
/// directory ([`Checkpoint::dir`]), or your own pair of functions
/// ([`Checkpoint::custom`], Dagger's `checkpoint`/`restore`).
#[derive(Clone)]
pub struct Checkpoint {
    dir: PathBuf,
    /// `Callbacks<R>` for the result type `R` they were made for.
    custom: Option<std::sync::Arc<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.custom {
            None => f.debug_struct("Checkpoint").field("dir", &self.dir).finish(),
            Some(_) => f.write_str("Checkpoint(custom)"),
        }
    }
}

type Save<R> = Box<dyn Fn(&str, &R) -> Result<(), Error> + Send + Sync>;
type Restore<R> = Box<dyn Fn(&str) -> Option<R> + Send + Sync>;

struct Callbacks<R> {
    save: Save<R>,
    restore: Restore<R>,
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
        Checkpoint { dir: dir.as_ref().to_path_buf(), custom: None }
    }

    /// Your own storage, as Dagger's `checkpoint`/`restore` callbacks:
    /// before the task runs, `restore(key)` may give its result (`None`
    /// runs the task); after it ran, `save(key, &result)` keeps it. `key`
    /// names the task and hashes its inputs (a changed input is another
    /// key). For tasks whose result is an `R` (another type fails the task
    /// with `Error::Config`).
    ///
    /// ```
    /// use dirk::fs::Checkpoint;
    /// use dirk::prelude::*;
    /// use std::collections::HashMap;
    /// use std::sync::{Arc, Mutex};
    ///
    /// fn cube(x: i64) -> i64 { x * x * x }
    ///
    /// let store: Arc<Mutex<HashMap<String, i64>>> = Arc::default();
    /// let (s, r) = (store.clone(), store.clone());
    /// let c = Checkpoint::custom(
    ///     move |key: &str, v: &i64| { s.lock().unwrap().insert(key.to_owned(), *v); Ok(()) },
    ///     move |key: &str| r.lock().unwrap().get(key).copied(),
    /// );
    /// assert_eq!(spawn!(checkpoint = c.clone(), cube(3)).fetch()?, 27);
    /// assert_eq!(store.lock().unwrap().len(), 1);
    /// assert_eq!(spawn!(checkpoint = c, cube(3)).fetch()?, 27);  // restored
    /// # Ok::<(), dirk::Error>(())
    /// ```
    pub fn custom<R: 'static>(
        save: impl Fn(&str, &R) -> Result<(), Error> + Send + Sync + 'static,
        restore: impl Fn(&str) -> Option<R> + Send + Sync + 'static,
    ) -> Checkpoint {
        let callbacks = Callbacks::<R> { save: Box::new(save), restore: Box::new(restore) };
        Checkpoint { dir: PathBuf::new(), custom: Some(std::sync::Arc::new(callbacks)) }
    }

    /// The file that holds the result of task `name` with inputs `key`.
    fn file(&self, name: &str, key: &[u8; 32]) -> PathBuf {
        self.dir.join(format!("{}.dirk", key_name(name, key)))
    }
}

/// What a result is stored under: the task's name (as a file name allows)
/// and the first half of its key, in hex.
fn key_name(name: &str, key: &[u8; 32]) -> String {
    let stem: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    let hex: String = key[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{stem}-{hex}")
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
        if let Some(custom) = &checkpoint.custom {
            let Some(callbacks) = custom.downcast_ref::<Callbacks<R>>() else {
                crate::error::fail_task(Error::Config(format!(
                    "the checkpoint callbacks of task `{label}` are not for its result type `{}`",
                    std::any::type_name::<R>()
                )))
            };
            let name = key_name(&label, &key);
            if let Some(value) = (callbacks.restore)(&name) {
                return value;
            }
            let value = f(slots);
            if let Err(e) = (callbacks.save)(&name, &value) {
                crate::error::fail_task(e);
            }
            return value;
        }
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
    crate::task::spawn::spawn_body_on(crate::exec::current(), options, name, crate::task::slots::Call::new(slots, body))
}
