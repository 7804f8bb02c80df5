use std::rc::Rc;

use dirk::prelude::*;

fn main() {
    let shared = Rc::new(5u32);
    let _ = streaming! {
        #![dirk(max_evals = 1)]
        let x = *shared + 1;
        x
    };
}
