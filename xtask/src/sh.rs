//! Running commands: echo them, stream their output, fail with a message.

use std::path::PathBuf;
use std::process::Command;

/// The workspace root (the parent of `xtask/`).
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// `cargo` as the one running xtask.
pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    cmd.current_dir(root());
    cmd
}

/// Runs `cmd`, echoing it first; an error names the command.
pub(crate) fn run(mut cmd: Command) -> Result<(), String> {
    eprintln!("$ {}", show(&cmd));
    let status = cmd.status().map_err(|e| format!("could not start {}: {e}", show(&cmd)))?;
    if status.success() { Ok(()) } else { Err(format!("{} failed ({status})", show(&cmd))) }
}

fn show(cmd: &Command) -> String {
    std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(|s| s.to_string_lossy()).collect::<Vec<_>>().join(" ")
}
