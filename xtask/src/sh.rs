//! Running commands: echo them, stream their output, fail with a message.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root of the clone being worked on, found at run time: a
/// target directory shared by several clones holds one xtask binary, so a
/// path built into it would name whichever clone built it last.
pub(crate) fn root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        // `cargo run` (what `cargo xtask` is) sets this for the program it runs.
        if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
            let xtask = PathBuf::from(dir);
            if xtask.join("../Cargo.toml").is_file() {
                return xtask.parent().expect("xtask/ has a parent").to_path_buf();
            }
        }
        let located = Command::new(cargo_program())
            .args(["locate-project", "--workspace", "--message-format", "plain"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        match located.as_deref().and_then(|manifest| manifest.parent()) {
            Some(dir) => dir.to_path_buf(),
            None => std::env::current_dir().expect("a current directory"),
        }
    })
    .clone()
}

fn cargo_program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// `cargo` as the one running xtask, in the workspace root.
pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(cargo_program());
    cmd.current_dir(root());
    cmd
}

/// `cargo` on the rustup toolchain `toolchain`, in the workspace root.
pub(crate) fn cargo_on(toolchain: &str) -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", toolchain, "cargo"]).current_dir(root());
    cmd
}

/// Whether `program --version` runs.
pub(crate) fn has(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success())
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
