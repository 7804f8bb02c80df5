use dirk::prelude::*;

fn copy(to: &mut [i32], from: &[i32]) {
    to.copy_from_slice(from);
}

fn main() {
    let mut x = vec![1, 2, 3];
    let _ = datadeps! {
        copy(Out(x), In(x));
    };
}
