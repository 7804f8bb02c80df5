//! The compute-bound kernel of Task Bench and the input check every task
//! runs: 64 doubles, `a = a * a + a` repeated, 128 flops per iteration plus
//! 64 for the final sum.

/// What a task produces: who it is, and a value that depends on the kernel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Out {
    pub t: u32,
    pub i: u32,
    pub value: f64,
}

pub fn flops(iterations: u64) -> f64 {
    128.0 * iterations as f64 + 64.0
}

/// Runs the kernel for `iterations` and returns the sum of the 64 values.
#[inline(never)]
pub fn kernel(iterations: u64, seed: f64) -> f64 {
    let mut a = [0.0f64; 64];
    for (k, x) in a.iter_mut().enumerate() {
        *x = -0.5 + seed * 1e-9 + k as f64 * 1e-4;
    }
    for _ in 0..iterations {
        for x in a.iter_mut() {
            *x = *x * *x + *x;
        }
    }
    std::hint::black_box(a).iter().sum()
}

/// Checks that a task received exactly the outputs of `(t - 1, deps)` and
/// computes its own output.
pub fn point(t: usize, i: usize, deps: &[usize], inputs: &[&Out], iterations: u64) -> Out {
    assert_eq!(inputs.len(), deps.len(), "point ({t}, {i}) got {} inputs, expected {}", inputs.len(), deps.len());
    for (input, &d) in inputs.iter().zip(deps) {
        assert!(
            input.t as usize + 1 == t && input.i as usize == d,
            "point ({t}, {i}) received the output of ({}, {}), expected ({}, {d})",
            input.t,
            input.i,
            t - 1
        );
    }
    let seed = inputs.iter().map(|o| o.value).sum::<f64>() + (t * 31 + i) as f64;
    Out { t: t as u32, i: i as u32, value: kernel(iterations, seed) }
}
