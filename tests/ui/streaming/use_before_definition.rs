use dirk::prelude::*;

fn source() -> Option<u32> {
    Some(1)
}

fn main() {
    let _ = streaming! {
        let y = x + 1;
        let x = source()?;
        y
    };
}
