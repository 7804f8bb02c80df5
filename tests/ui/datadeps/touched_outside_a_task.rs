use dirk::prelude::*;

fn sort(xs: &mut [i32]) {
    xs.sort();
}

fn main() {
    let mut x = vec![3, 1, 2];
    let _ = datadeps! {
        sort(InOut(x));
        let n = x.len(); // the sort may still be running
        n
    };
}
