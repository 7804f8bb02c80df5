use dirk::prelude::*;

fn main() {
    // A closure's code cannot be sent to another process.
    let _ = spawn!(scope = Scope::worker(2), (|x: i64| x * 2)(21));
}
