//! What the benchmark binaries in `benches/` share: the harness (timing,
//! medians with their spread, the result lines `cargo xtask bench`
//! collects into BENCHMARKS.md) and Task Bench's patterns and kernel, which
//! the unit tests here check against Task Bench's own definitions.

pub mod harness;
pub mod taskbench;

/// Task Bench's kernel for the peers outside Rust (`benches/peers/`), which
/// load this library and call it through ctypes: the same code dirk's
/// tasks run.
#[unsafe(no_mangle)]
pub extern "C" fn dirk_taskbench_kernel(iterations: u64, seed: f64) -> f64 {
    taskbench::kernel::kernel(iterations, seed)
}
