use dirk::prelude::*;

fn count(xs: &[i32]) -> usize {
    xs.len()
}

fn main() {
    let x = vec![3, 1, 2];
    let _ = datadeps! {
        let n = count(In(x));
        n.fetch().unwrap()
    };
}
