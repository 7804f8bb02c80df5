use dirk::prelude::*;

fn fill(xs: &mut [i32]) {
    xs.fill(7);
}

fn main() {
    let _ = datadeps! {
        let mut scratch = vec![0; 4];
        fill(Out(scratch));
    };
}
