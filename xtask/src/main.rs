//! `cargo xtask <command>`: the project's chores, one module per command.
//!
//! - `test`: set up what a fresh machine lacks, check formatting and
//!   clippy (warnings denied), run every test, on a pinned toolchain.
//! - `bench [--quick]`: run the benchmarks with their peers and write
//!   BENCHMARKS.md.
//! - `bless`: rewrite the compile-fail snapshots after an intended change.
//! - `miri`: run the unsafe and lock-free pieces' unit tests under Miri.
//! - `fuzz [seconds]`: run each cargo-fuzz target from its corpus.

mod commands;
mod plot;
mod setup;
mod sh;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => commands::test::run(&args[1..]),
        Some("bench") => commands::bench::run(&args[1..]),
        Some("bless") => commands::bless::run(&args[1..]),
        Some("miri") => commands::miri::run(&args[1..]),
        Some("fuzz") => commands::fuzz::run(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <test | bench [--quick] | bless | miri | fuzz [seconds]>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
