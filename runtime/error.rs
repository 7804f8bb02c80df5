//! `dirk::Error`: every way a task, a stream or the runtime can fail.
//!
//! Errors are values that travel down the task graph. A task whose input
//! failed does not run; it fails with [`Error::Upstream`], whose `cause` is
//! the error of the task where the failure started (the *root*), shared
//! behind an `Arc` so that a failure fanning out to a million dependents is
//! stored once and a chain of a million failed tasks drops without recursion.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::id::TaskId;

/// A task's name as errors and traces show it: the function's name unless
/// the spawn gave one with `name = ...`.
pub type Name = Cow<'static, str>;

/// Everything that can go wrong when running tasks.
///
/// `Display` is one line that names the task; `source()` leads from an
/// [`Error::Upstream`] to the root failure.
///
/// ```
/// use dirk::prelude::*;
///
/// #[task]
/// fn boom(x: i64) -> i64 { if x > 0 { panic!("x is {x}") } x }
/// #[task]
/// fn double(x: i64) -> i64 { 2 * x }
///
/// let a = spawn!(boom(1));
/// let b = spawn!(double(&a));
/// let err = b.fetch().unwrap_err();
/// assert!(matches!(err, Error::Upstream { .. }));
/// assert!(matches!(err.root(), Error::Panicked { message, .. } if message == "x is 1"));
/// assert!(err.to_string().contains("`boom`"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The task's function panicked; `message` is the panic's payload.
    Panicked {
        /// The task that panicked.
        task: TaskId,
        /// Its name.
        name: Name,
        /// The panic message (`"<non-string panic payload>"` when it was not a string).
        message: String,
    },
    /// The task's function returned an error: a streaming stage whose `?`
    /// met an `Err`. `message` is the error's `Display`.
    Failed {
        /// The task (stage) that failed.
        task: TaskId,
        /// Its name.
        name: Name,
        /// The error, as its `Display` shows it.
        message: String,
    },
    /// An input of the task failed, so the task did not run.
    Upstream {
        /// The task that did not run.
        task: TaskId,
        /// Its name.
        name: Name,
        /// The error of the task where the failure started (never itself `Upstream`).
        cause: Arc<Error>,
    },
    /// The task was cancelled (by [`Task::cancel`](crate::Task::cancel), or
    /// because its runtime shut down before it ran).
    Cancelled {
        /// The cancelled task.
        task: TaskId,
    },
    /// No processor satisfies the task's scope.
    Scope(ScopeError),
    /// The worker process running the task was lost.
    WorkerLost {
        /// The worker that was lost.
        worker: u32,
        /// The task that was running or stored there.
        task: TaskId,
    },
    /// Moving bytes between processes failed.
    Transport(String),
    /// Bytes from another process did not decode to the expected value.
    Codec(String),
    /// A GPU device or kernel failed.
    Gpu(String),
    /// An option or setting was invalid.
    Config(String),
    /// The system refused a file operation (a missing file, a full disk);
    /// the message names the path.
    Io(String),
    /// Shapes that do not fit: an array operation's operands, or a shape
    /// and its data. The message names both shapes.
    Shape(String),
}

/// Why a scope could not be satisfied: see [`Error::Scope`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeError {
    /// The task that could not be placed.
    pub task: TaskId,
    /// Its name.
    pub name: Name,
    /// The scope it asked for, as written (`Scope::thread(7)`).
    pub scope: String,
    /// What is missing, in words (`"the runtime has threads 0..=1"`).
    pub reason: String,
}

impl Error {
    /// The error of the task where the failure started: follows
    /// [`Error::Upstream`] causes, and returns `self` for every other variant.
    pub fn root(&self) -> &Error {
        match self {
            Error::Upstream { cause, .. } => cause.root(),
            other => other,
        }
    }

    /// The task this error belongs to, when it belongs to one.
    pub fn task(&self) -> Option<TaskId> {
        match self {
            Error::Panicked { task, .. }
            | Error::Failed { task, .. }
            | Error::Upstream { task, .. }
            | Error::Cancelled { task }
            | Error::WorkerLost { task, .. } => Some(*task),
            Error::Scope(e) => Some(e.task),
            _ => None,
        }
    }

    /// Whether the root failure is a cancellation.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.root(), Error::Cancelled { .. })
    }

    /// The error a task fails with when `input` (one of its inputs) failed.
    pub(crate) fn upstream(task: TaskId, name: Name, input: &Error) -> Error {
        let cause = match input {
            Error::Upstream { cause, .. } => Arc::clone(cause),
            root => Arc::new(root.clone()),
        };
        Error::Upstream { task, name, cause }
    }

    /// The error a task fails with when its body panicked with `payload`.
    /// A body unwinding with an `Error` as its payload (the runtime's own
    /// way to fail a task from inside it, e.g. a GPU kernel that failed)
    /// fails with that error.
    pub(crate) fn panicked(task: TaskId, name: Name, payload: &(dyn std::any::Any + Send)) -> Error {
        if let Some(error) = payload.downcast_ref::<Error>() {
            return error.clone();
        }
        Error::Panicked { task, name, message: panic_message(payload) }
    }
}

/// Fails the running task with `error` (unwinding without the panic
/// hook's message: the task's error is `error` itself).
pub(crate) fn fail_task(error: Error) -> ! {
    std::panic::resume_unwind(Box::new(error))
}

/// The text of a panic's payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Panicked { task, name, message } => {
                write!(f, "task {task} `{name}` panicked: {message}")
            }
            Error::Failed { task, name, message } => write!(f, "task {task} `{name}` failed: {message}"),
            Error::Upstream { task, name, cause } => match cause.task() {
                Some(root) => write!(f, "task {task} `{name}` did not run: its input task {root} failed: {cause}"),
                None => write!(f, "task {task} `{name}` did not run: an input failed: {cause}"),
            },
            Error::Cancelled { task } => write!(f, "task {task} was cancelled"),
            Error::Scope(e) => fmt::Display::fmt(e, f),
            Error::WorkerLost { worker, task } => {
                write!(f, "task {task} failed: worker {worker} was lost")
            }
            Error::Transport(m) => write!(f, "transport error: {m}"),
            Error::Codec(m) => write!(f, "codec error: {m}"),
            Error::Gpu(m) => write!(f, "GPU error: {m}"),
            Error::Config(m) => write!(f, "invalid configuration: {m}"),
            Error::Shape(m) => write!(f, "shape mismatch: {m}"),
            Error::Io(m) => write!(f, "I/O error: {m}"),
        }
    }
}

impl fmt::Display for ScopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "task {} `{}` cannot run: no processor satisfies {} ({})",
            self.task, self.name, self.scope, self.reason
        )
    }
}

impl std::error::Error for ScopeError {}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Upstream { cause, .. } => Some(&**cause),
            Error::Scope(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panicked() -> Error {
        Error::Panicked { task: TaskId(3), name: "load".into(), message: "bad row".into() }
    }

    #[test]
    fn upstream_points_at_the_root_not_the_chain() {
        let first = Error::upstream(TaskId(4), "parse".into(), &panicked());
        let second = Error::upstream(TaskId(5), "sum".into(), &first);
        match &second {
            Error::Upstream { cause, .. } => assert!(matches!(**cause, Error::Panicked { .. })),
            other => panic!("expected Upstream, got {other:?}"),
        }
        assert_eq!(second.root().task(), Some(TaskId(3)));
        assert_eq!(
            second.to_string(),
            "task 5 `sum` did not run: its input task 3 failed: task 3 `load` panicked: bad row"
        );
    }

    #[test]
    fn source_chain_ends_at_the_root() {
        use std::error::Error as _;
        let e = Error::upstream(TaskId(9), "f".into(), &panicked());
        let src = e.source().expect("upstream has a source");
        assert_eq!(src.to_string(), "task 3 `load` panicked: bad row");
        assert!(src.source().is_none());
    }

    #[test]
    fn panic_payloads_become_messages() {
        let e = Error::panicked(TaskId(1), "f".into(), &"static");
        assert!(matches!(e, Error::Panicked { ref message, .. } if message == "static"));
        let e = Error::panicked(TaskId(1), "f".into(), &String::from("owned"));
        assert!(matches!(e, Error::Panicked { ref message, .. } if message == "owned"));
        let e = Error::panicked(TaskId(1), "f".into(), &17_u8);
        assert!(matches!(e, Error::Panicked { ref message, .. } if message.contains("non-string")));
    }
}
