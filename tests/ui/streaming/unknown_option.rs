use dirk::prelude::*;

fn main() {
    let _ = streaming! {
        #![dirk(parallel = true)]
        #[dirk(priority = 3)] let x = 1u8;
        x
    };
    // Nothing after the region is reported as unreachable.
    println!("done");
}
