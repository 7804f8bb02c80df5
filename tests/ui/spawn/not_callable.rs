use dirk::prelude::*;

fn main() {
    let count = 3_i64;
    let _ = spawn!(count(1, 2));
}
