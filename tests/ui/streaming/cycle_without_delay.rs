use dirk::prelude::*;

fn step(x: f64) -> f64 {
    x * 0.5
}

fn main() {
    let _ = streaming! {
        let a = step(b);
        let b = step(a);
        b
    };
}
