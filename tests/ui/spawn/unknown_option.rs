use dirk::prelude::*;

#[task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() {
    // One mistake, one error: the code after it is not "unreachable", and
    // the task's type is not asked for.
    let sum = spawn!(priority = 3, add(1, 2));
    println!("{}", sum.fetch().unwrap());
}
