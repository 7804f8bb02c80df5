use dirk::prelude::*;

fn set(x: &mut i32) {
    *x = 1;
}

fn main() {
    let x = 1;
    let _ = datadeps! {
        set(Out(x + 1));
    };
}
