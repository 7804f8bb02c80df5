//! `cargo xtask bless`: rewrite the compile-fail snapshots (tests/ui/**/*.stderr)
//! from the current compiler output, with the features `cargo xtask test`
//! checks them with (rustc spells some paths differently when more crates
//! are linked). Review the diff before committing.

use crate::sh::{self, cargo};

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(unknown) = args.first() {
        return Err(format!("`cargo xtask bless` takes no arguments, not {unknown:?}"));
    }
    let mut cmd = cargo();
    cmd.args(["test", "--test", "ui"]).env("TRYBUILD", "overwrite");
    if !super::test::FEATURES.is_empty() {
        cmd.args(["--features", &super::test::FEATURES.join(",")]);
    }
    sh::run(cmd)
}
