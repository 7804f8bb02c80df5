use dirk::prelude::*;

#[task(cuda)]
fn double(x: f32) -> f32 {
    x * 2.0
}

fn main() {
    let _ = double(1.0);
}
