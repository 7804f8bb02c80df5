use std::rc::Rc;

use dirk::prelude::*;

#[task]
fn length(v: Rc<Vec<u8>>) -> usize {
    v.len()
}

fn main() {
    let shared = Rc::new(vec![1, 2, 3]);
    let _ = spawn!(length(shared));
}
