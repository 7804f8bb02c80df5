//! `File<T>`: a typed value on disk, loaded by the task that needs it.
//!
//! A dirk file is a 64-byte header (`transport/dirkfile.rs`) and a
//! payload. Everything in the header is checked before the payload is
//! touched, and an rkyv archive is validated (bytecheck) before it is read.

use std::fs::File as StdFile;
use std::io::Read;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rkyv::Archived;
use rkyv::vec::ArchivedVec;

use super::io;
use crate::Error;
use crate::cluster::probe::Plain;
use crate::transport::wire::{self, Wire};

use crate::transport::dirkfile::{self, HEADER, codec_error, io_error, open_std};

/// How a [`File`]'s payload is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// An rkyv archive of the value (the default): memory-mapped,
    /// validated, and read in place.
    Rkyv,
    /// The elements of a `Vec` of plain numbers, little-endian, one after
    /// another (other programs write and read these easily).
    Raw,
}

impl Format {
    fn code(self) -> u16 {
        match self {
            Format::Rkyv => dirkfile::RKYV,
            Format::Raw => dirkfile::RAW,
        }
    }
}

/// A user's own pair of functions for a file's contents.
type Reader<T> = fn(&Path) -> Result<T, Error>;

enum Kind<T> {
    Dirk(Format),
    Custom(Reader<T>),
}

impl<T> Clone for Kind<T> {
    fn clone(&self) -> Self {
        match self {
            Kind::Dirk(f) => Kind::Dirk(*f),
            Kind::Custom(r) => Kind::Custom(*r),
        }
    }
}

/// A value of type `T` in a file: Dagger's `File`.
///
/// Opening checks that the file exists and that its header says it holds a
/// `T`; nothing else is read until a task needs the value. Pass a `File<T>`
/// to `spawn!` where the function takes a `T`, a `&T` or (for a
/// `File<Vec<E>>` of plain numbers) a `&[E]`: the task that runs loads it,
/// and a `&[E]` is read in place from a memory map.
///
/// ```
/// use dirk::fs::{File, tofile};
/// use dirk::prelude::*;
///
/// fn total(xs: &[f64]) -> f64 { xs.iter().sum() }
///
/// let dir = std::env::temp_dir().join(format!("dirk-doc-file-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let v: Vec<f64> = (1..=100).map(f64::from).collect();
/// let f: File<Vec<f64>> = tofile(&v, dir.join("v.dirk"))?;       // written atomically
/// let g = File::<Vec<f64>>::open(dir.join("v.dirk"))?;           // checks the header only
/// assert_eq!(spawn!(total(g)).fetch()?, 5050.0);                 // read where the task runs
/// assert_eq!(f.load()?, v);
/// assert!(matches!(File::<String>::open(dir.join("v.dirk")), Err(dirk::Error::Codec(m)) if m.contains("v.dirk")));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), dirk::Error>(())
/// ```
pub struct File<T> {
    path: Arc<PathBuf>,
    kind: Kind<T>,
    /// The value or the map, once a task loaded it through this handle.
    loaded: OnceLock<Loaded<T>>,
}

enum Loaded<T> {
    Value(T),
    Map(memmap2::Mmap),
}

impl<T> Clone for File<T> {
    fn clone(&self) -> Self {
        File { path: self.path.clone(), kind: self.kind.clone(), loaded: OnceLock::new() }
    }
}

impl<T> std::fmt::Debug for File<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("File")
            .field("path", &self.path)
            .field("type", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

/// A fingerprint of `T` stored in a file's header: a file written for one
/// type is not read as another.
pub(crate) fn fingerprint<T>() -> u64 {
    dirkfile::fingerprint_of(std::any::type_name::<T>())
}

/// The header of a dirk file for a `T` in `format` with `len` payload bytes.
fn header<T>(format: Format, len: u64) -> [u8; HEADER] {
    dirkfile::header(format.code(), fingerprint::<T>(), len)
}

/// Checks `h` (the first bytes of `path`, of `size` bytes in all) as the
/// header of a `T` in `format`; the payload length.
fn check_header<T>(path: &Path, h: &[u8], size: u64, format: Format) -> Result<u64, Error> {
    dirkfile::check(path, h, size, format.code(), fingerprint::<T>(), std::any::type_name::<T>())
}

impl<T: Send + Sync + 'static> File<T> {
    fn new(path: PathBuf, kind: Kind<T>) -> File<T> {
        File { path: Arc::new(path), kind, loaded: OnceLock::new() }
    }

    /// Opens a dirk file written for a `T` (rkyv, as [`tofile`] writes):
    /// checks that it exists and that its header is a `T`'s; reads nothing
    /// else.
    ///
    /// `Error::Io` when it cannot be opened, `Error::Codec` when its header
    /// is not a `T`'s or its length does not match; both name the path.
    pub fn open(path: impl AsRef<Path>) -> Result<File<T>, Error> {
        Self::with_format(path, Format::Rkyv)
    }

    /// Opens a dirk file in `format`, checking its header as [`open`](File::open) does.
    pub fn with_format(path: impl AsRef<Path>, format: Format) -> Result<File<T>, Error> {
        let path = path.as_ref();
        let (mut f, size) = open_std(path)?;
        let mut h = [0u8; HEADER];
        let got = f.read(&mut h).map_err(|e| io_error(path, "cannot read its header", e))?;
        check_header::<T>(path, &h[..got], size, format)?;
        Ok(Self::new(path.to_path_buf(), Kind::Dirk(format)))
    }

    /// A file read by `read` (any format of your own) when a task needs
    /// it: Dagger's `File(path; serialize, deserialize)`. Opening checks
    /// only that it exists.
    pub fn custom(path: impl AsRef<Path>, read: fn(&Path) -> Result<T, Error>) -> Result<File<T>, Error> {
        let path = path.as_ref();
        std::fs::metadata(path).map_err(|e| io_error(path, "cannot open", e))?;
        Ok(Self::new(path.to_path_buf(), Kind::Custom(read)))
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl<T: Wire + Send + Sync + 'static> File<T> {
    /// Reads the whole file (through the I/O thread), validates it and
    /// rebuilds the value.
    pub fn load(&self) -> Result<T, Error> {
        let path = &*self.path;
        match &self.kind {
            Kind::Custom(read) => read(path),
            Kind::Dirk(format) => {
                let (f, size) = open_std(path)?;
                let f = Arc::new(f);
                let bytes = io::read_at(&f, size as usize, 0).map_err(|e| io_error(path, "cannot read", e))?;
                check_header::<T>(path, &bytes, size, *format)?;
                let payload = &bytes[HEADER..];
                match format {
                    Format::Rkyv => wire::decode::<T>(payload).map_err(|e| codec_error(path, e)),
                    Format::Raw => raw_decode::<T>(path, payload),
                }
            }
        }
    }
}

/// Decodes raw little-endian elements as a `T`, which must be a `Vec` of a
/// plain number type.
fn raw_decode<T: 'static>(path: &Path, bytes: &[u8]) -> Result<T, Error> {
    fn each<E: Plain, T: 'static>(bytes: &[u8]) -> Option<T> {
        let size = std::mem::size_of::<E>();
        let v: Vec<E> = bytes
            .chunks_exact(size)
            .map(|c| {
                let mut e = std::mem::MaybeUninit::<E>::uninit();
                // SAFETY: `E: Plain` is a number type, valid for any bit
                // pattern of its size; `c` has exactly that many bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(c.as_ptr(), e.as_mut_ptr().cast::<u8>(), size);
                    e.assume_init()
                }
            })
            .collect();
        (Box::new(v) as Box<dyn std::any::Any>).downcast::<T>().ok().map(|b| *b)
    }
    let decoded = each::<f64, T>(bytes)
        .or_else(|| each::<f32, T>(bytes))
        .or_else(|| each::<i64, T>(bytes))
        .or_else(|| each::<i32, T>(bytes))
        .or_else(|| each::<u64, T>(bytes))
        .or_else(|| each::<u32, T>(bytes))
        .or_else(|| each::<u8, T>(bytes));
    decoded.ok_or_else(|| {
        codec_error(
            path,
            format_args!(
                "the raw format holds a Vec of numbers (f64, f32, i64, i32, u64, u32, u8), not a `{}`",
                std::any::type_name::<T>()
            ),
        )
    })
}

/// A memory map of a dirk file whose archive was validated: the value read
/// in place with [`Mapped::get`].
pub struct Mapped<T: Wire> {
    map: memmap2::Mmap,
    value: PhantomData<T>,
}

impl<T: Wire> std::fmt::Debug for Mapped<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapped").field("bytes", &self.map.len()).finish()
    }
}

impl<T: Wire> Mapped<T> {
    /// The archived value, in the mapped file (validated again: a file
    /// rewritten in place under the map is an error, not a bad read).
    pub fn get(&self) -> Result<&Archived<T>, Error>
    where
        Archived<T>: for<'a> wire::Check<'a>,
    {
        wire::access::<Archived<T>>(&self.map[HEADER..])
    }
}

fn map_file<T>(path: &Path) -> Result<memmap2::Mmap, Error> {
    dirkfile::map_checked(path, fingerprint::<T>(), std::any::type_name::<T>())
}

impl<T: Wire + Send + Sync + 'static> File<T> {
    /// Maps the file and validates its archive: the value is then read in
    /// place, without a copy (`Format::Rkyv` files).
    pub fn map(&self) -> Result<Mapped<T>, Error>
    where
        Archived<T>: for<'a> wire::Check<'a>,
    {
        let map = map_file::<T>(&self.path)?;
        wire::access::<Archived<T>>(&map[HEADER..]).map_err(|e| codec_error(&self.path, e))?;
        Ok(Mapped { map, value: PhantomData })
    }

    /// The value, loaded once through this handle (a task's argument).
    pub(crate) fn loaded(&self) -> Result<&T, Error> {
        if let Some(Loaded::Value(v)) = self.loaded.get() {
            return Ok(v);
        }
        let value = self.load()?;
        match self.loaded.get_or_init(|| Loaded::Value(value)) {
            Loaded::Value(v) => Ok(v),
            Loaded::Map(_) => Err(codec_error(&self.path, "was mapped and loaded through one handle")),
        }
    }
}

impl<E: Plain + Wire + Send + Sync> File<Vec<E>> {
    /// The elements in place: mapped, validated once, never copied.
    pub(crate) fn slice(&self) -> Result<&[E], Error> {
        if self.loaded.get().is_none() {
            let map = match &self.kind {
                Kind::Dirk(Format::Rkyv) => {
                    let map = map_file::<Vec<E>>(&self.path)?;
                    wire::access::<ArchivedVec<Archived<E>>>(&map[HEADER..]).map_err(|e| codec_error(&self.path, e))?;
                    map
                }
                Kind::Dirk(Format::Raw) => {
                    let (f, size) = open_std(&self.path)?;
                    // SAFETY: as in `map_file`: read-only, validated below.
                    let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| io_error(&self.path, "cannot map", e))?;
                    let len = check_header::<Vec<E>>(&self.path, &map, size, Format::Raw)?;
                    if !(len as usize).is_multiple_of(std::mem::size_of::<E>()) {
                        return Err(codec_error(&self.path, "its length is not a whole number of elements"));
                    }
                    map
                }
                Kind::Custom(_) => {
                    let value = self.load()?;
                    let _ = self.loaded.set(Loaded::Value(value));
                    return self.slice();
                }
            };
            let _ = self.loaded.set(Loaded::Map(map));
        }
        match self.loaded.get() {
            Some(Loaded::Map(map)) => {
                let bytes = &map[HEADER..];
                let (ptr, n) = match &self.kind {
                    Kind::Dirk(Format::Rkyv) => {
                        let archived =
                            wire::access::<ArchivedVec<Archived<E>>>(bytes).map_err(|e| codec_error(&self.path, e))?;
                        (archived.as_slice().as_ptr().cast::<E>(), archived.len())
                    }
                    _ => (bytes.as_ptr().cast::<E>(), bytes.len() / std::mem::size_of::<E>()),
                };
                if !(ptr as usize).is_multiple_of(std::mem::align_of::<E>()) {
                    return Err(codec_error(&self.path, "its elements are not aligned"));
                }
                // SAFETY: `E: Plain` has its archived (little-endian) layout;
                // `ptr..ptr + n` lies in the map (validated above), which
                // lives as long as `self`; the alignment was just checked.
                Ok(unsafe { std::slice::from_raw_parts(ptr, n) })
            }
            Some(Loaded::Value(v)) => Ok(v),
            None => unreachable!("set above"),
        }
    }
}

/// Writes `value` to `path` as a dirk file and returns it as a
/// [`File`]: Dagger's `tofile`. The bytes go to a temporary file beside
/// `path` through the I/O thread, are flushed to the disk (`fsync`), and
/// the temporary file is renamed over `path`: a reader sees the old file
/// or the new one, never a part, and a full disk leaves the old file as it
/// was (the error is `Error::Io` naming the path).
pub fn tofile<T: Wire + Send + Sync + 'static>(value: &T, path: impl AsRef<Path>) -> Result<File<T>, Error> {
    let path = path.as_ref();
    write_atomically(path, |f| {
        // The archive goes to the file in 8 MiB chunks while it is made:
        // archiving and writing overlap, and no buffer of the whole value is
        // ever allocated. At most `AHEAD` chunks are in flight.
        const AHEAD: usize = 4;
        let failed: Arc<crate::sync::Mutex<Option<Error>>> = Arc::default();
        let in_flight: Arc<crate::sync::Mutex<std::collections::VecDeque<io::InFlight>>> = Arc::default();
        let (file, seen, queue) = (f.clone(), failed.clone(), in_flight.clone());
        let mut offset = HEADER as u64;
        let p = path.to_path_buf();
        let sink = move |chunk: Vec<u8>| -> Result<(), Error> {
            let len = chunk.len() as u64;
            let started = io::write_at_async(&file, Box::new(chunk), offset);
            offset += len;
            let done = started.and_then(|w| {
                let mut q = queue.lock();
                q.push_back(w);
                while q.len() > AHEAD {
                    let oldest = q.pop_front().expect("more than AHEAD in flight");
                    oldest.wait()?;
                }
                Ok(())
            });
            done.map_err(|e| {
                let e = io_error(&p, "cannot write", e);
                *seen.lock() = Some(e.clone());
                e
            })
        };
        let archived = wire::serialize_into(value, crate::transport::wire::BlobWriter::streaming(Box::new(sink)));
        let len = archived.and_then(|w| w.finish());
        let waited: Vec<io::InFlight> = in_flight.lock().drain(..).collect();
        let mut write_error = None;
        for w in waited {
            if let Err(e) = w.wait() {
                write_error.get_or_insert(io_error(path, "cannot write", e));
            }
        }
        if let Some(e) = failed.lock().take().or(write_error) {
            return Err(e);
        }
        let len = len.map_err(|e| codec_error(path, e))?;
        Ok(header::<T>(Format::Rkyv, len as u64))
    })?;
    Ok(File::new(path.to_path_buf(), Kind::Dirk(Format::Rkyv)))
}

/// [`tofile`] in the raw format: the elements, little-endian, after the
/// header.
pub fn tofile_raw<E: Plain + Wire + Send + Sync>(values: &[E], path: impl AsRef<Path>) -> Result<File<Vec<E>>, Error> {
    let path = path.as_ref();
    let size = std::mem::size_of_val(values);
    // SAFETY: `E: Plain` is a number type without padding: its bytes are
    // initialized and, on this little-endian target, its file format.
    let bytes = unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), size) }.to_vec();
    write_atomically(path, |f| {
        io::write_at(f, Box::new(bytes), HEADER as u64).map_err(|e| io_error(path, "cannot write", e))?;
        Ok(header::<Vec<E>>(Format::Raw, size as u64))
    })?;
    Ok(File::new(path.to_path_buf(), Kind::Dirk(Format::Raw)))
}

/// Writes a dirk file at `path` through a temporary file beside it:
/// `payload` writes the bytes after the header and returns the header.
fn write_atomically(
    path: &Path,
    payload: impl FnOnce(&Arc<StdFile>) -> Result<[u8; HEADER], Error>,
) -> Result<(), Error> {
    let name = path.file_name().ok_or_else(|| Error::Io(format!("{}: not a file name", path.display())))?;
    let nonce = super::super::transport::auth::random()?;
    let tmp = path.with_file_name(format!(
        ".{}.{:016x}.tmp",
        name.to_string_lossy(),
        u64::from_le_bytes(nonce[..8].try_into().expect("8 bytes"))
    ));
    let written = (|| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io_error(path, "cannot create a temporary file beside it", e))?;
        let f = Arc::new(f);
        let header = payload(&f)?;
        io::write_at(&f, Box::new(header), 0).map_err(|e| io_error(path, "cannot write", e))?;
        f.sync_all().map_err(|e| io_error(path, "cannot flush to the disk", e))?;
        std::fs::rename(&tmp, path).map_err(|e| io_error(path, "cannot rename the temporary file over it", e))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = StdFile::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
