//! A `File<T>` as an argument of `spawn!`: loaded by the task that runs
//! (here, or on the worker it is sent to, which maps the file itself).

use std::any::Any;

use super::File;
use crate::Error;
use crate::cluster::probe::{FileSlot, Plain, SlotProbe};
use crate::task::remote::Encode;
use crate::task::slots::{PassAs, Value};
use crate::transport::wire::{BlobWriter, Wire};

/// A file's value, loaded by the task that runs, for `fn f(x: T)`: a file
/// that cannot be read fails the task.
#[diagnostic::do_not_recommend]
impl<'a, T: Wire + Clone + Send + Sync + 'static> PassAs<'a, T> for Value<File<T>> {
    fn provide(&'a mut self) -> T {
        let file = self.peek().expect("each argument is provided once");
        file.load().unwrap_or_else(|e| crate::error::fail_task(e))
    }
}

/// A file's value, loaded by the task that runs, for `fn f(x: &T)`.
#[diagnostic::do_not_recommend]
impl<'a, T: Wire + Send + Sync + 'static> PassAs<'a, &'a T> for Value<File<T>> {
    fn provide(&'a mut self) -> &'a T {
        let file = self.peek().expect("each argument is provided once");
        file.loaded().unwrap_or_else(|e| crate::error::fail_task(e))
    }
}

/// A file of plain numbers, read in place from a memory map, for
/// `fn f(xs: &[E])`.
#[diagnostic::do_not_recommend]
impl<'a, E: Plain + Wire + Send + Sync> PassAs<'a, &'a [E]> for Value<File<Vec<E>>> {
    fn provide(&'a mut self) -> &'a [E] {
        let file = self.peek().expect("each argument is provided once");
        file.slice().unwrap_or_else(|e| crate::error::fail_task(e))
    }
}

/// A file goes to another worker as its path and type fingerprint; that
/// worker maps it itself.
impl<T: Wire + Send + Sync + 'static> FileSlot for &&&SlotProbe<File<T>> {
    fn encoder(&self) -> Option<Encode> {
        Some(Encode { write: no_bytes, pin: None, file: Some(where_is::<T>) })
    }
}

/// A file's bytes are never written into a frame: the worker maps them.
fn no_bytes(_: &dyn Any, _: BlobWriter) -> Result<BlobWriter, Error> {
    Err(Error::Codec("a file argument travels as its path".to_owned()))
}

/// A `File<T>` argument's path and type fingerprint, for the worker that
/// will open it.
fn where_is<T: Send + Sync + 'static>(value: &dyn Any) -> Option<(String, u64)> {
    let file = value.downcast_ref::<File<T>>()?;
    Some((file.path().to_str()?.to_owned(), super::file::fingerprint::<T>()))
}
