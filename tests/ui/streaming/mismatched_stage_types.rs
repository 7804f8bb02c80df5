use dirk::prelude::*;

fn name() -> String {
    "dirk".to_owned()
}

fn double(x: i64) -> i64 {
    2 * x
}

fn main() {
    let _ = streaming! {
        #![dirk(max_evals = 1)]
        let s = name();
        let n = double(s);
        n
    };
}
