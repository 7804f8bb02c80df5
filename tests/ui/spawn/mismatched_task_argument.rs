use dirk::prelude::*;

#[task]
fn greet() -> String {
    "hello".to_owned()
}

#[task]
fn double(x: i64) -> i64 {
    2 * x
}

fn main() {
    let text = spawn!(greet());
    let _ = spawn!(double(&text));
}
