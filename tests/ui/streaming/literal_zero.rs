use dirk::prelude::*;

fn main() {
    let _ = streaming! {
        #![dirk(max_evals = 0)]
        #[dirk(buffer = 0)] let x = 1u8;
        x
    };
}
