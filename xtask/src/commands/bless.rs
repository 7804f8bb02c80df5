//! `cargo xtask bless`: rewrite the compile-fail snapshots (tests/ui/**/*.stderr)
//! from the current compiler output. Review the diff before committing.

use crate::sh::{self, cargo};

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(unknown) = args.first() {
        return Err(format!("`cargo xtask bless` takes no arguments, not {unknown:?}"));
    }
    let mut cmd = cargo();
    cmd.args(["test", "--test", "ui"]).env("TRYBUILD", "overwrite");
    sh::run(cmd)
}
