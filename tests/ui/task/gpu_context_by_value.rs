use dirk::prelude::*;

struct Gpu;

#[task(gpu)]
fn double(gpu: Gpu, x: f32) -> f32 {
    let _ = gpu;
    x * 2.0
}

fn main() {
    let _ = double(Gpu, 1.0);
}
