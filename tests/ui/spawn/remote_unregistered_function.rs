use dirk::prelude::*;

fn triple(x: i64) -> i64 {
    3 * x
}

#[task]
fn double(x: i64) -> i64 {
    2 * x
}

fn main() {
    // `double` is a #[task]: it may run on worker 1.
    let _ = spawn!(scope = Scope::worker(1), double(21));
    // `triple` is not registered, so no worker but 0 can run it.
    let _ = spawn!(scope = Scope::workers([1, 2]), triple(21));
}
