use dirk::prelude::*;

fn reading() -> u32 {
    7
}

fn main() {
    let _ = streaming! {
        let x = reading()?;
        x
    };
}
