//! `cargo xtask bless`: rewrite the compile-fail snapshots (tests/ui/**/*.stderr)
//! from the compiler output, on the toolchain and with the (default)
//! features that `cargo xtask test` checks them with: rustc's wording
//! changes between releases, and it spells some paths differently when
//! more crates are linked. Review the diff before committing.

use crate::setup::{self, Gaps};
use crate::sh;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(unknown) = args.first() {
        return Err(format!("`cargo xtask bless` takes no arguments, not {unknown:?}"));
    }
    let mut gaps = Gaps::default();
    let checks = setup::toolchain(&mut gaps)?;
    let mut cmd = checks.cargo();
    cmd.args(["test", "-p", "dirk", "--test", "ui"]);
    cmd.env("TRYBUILD", "overwrite");
    sh::run(cmd)?;
    gaps.finish()
}
