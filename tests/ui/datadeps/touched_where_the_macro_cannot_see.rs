use dirk::prelude::*;

fn sort(xs: &mut [i32]) {
    xs.sort();
}

fn main() {
    let mut x = vec![3, 1, 2];
    let _ = datadeps! {
        sort(InOut(x));
        // Hidden in a format string, the use escapes the macro's check; the
        // borrow the block holds on `x` still refuses it.
        println!("{x:?}");
    };
}
