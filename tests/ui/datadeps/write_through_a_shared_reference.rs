use dirk::prelude::*;

fn bump(x: &mut i32) {
    *x += 1;
}

fn main() {
    let v = vec![1, 2, 3];
    let r = &v;
    let _ = datadeps! {
        bump(InOut(r[0]));
    };
}
