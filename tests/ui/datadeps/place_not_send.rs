use std::rc::Rc;

use dirk::prelude::*;

fn bump(x: &mut Rc<i32>) {
    *x = Rc::new(**x + 1);
}

fn main() {
    let mut shared = vec![Rc::new(1)];
    let _ = datadeps! {
        bump(InOut(shared[0]));
    };
}
