use dirk::prelude::*;

fn source() -> Option<usize> {
    Some(1)
}

fn main() {
    let _ = streaming! {
        let x = source()?;
        #[dirk(buffer = x)] let y = x + 1;
        let total = y + delay(total, x);
        total
    };
}
