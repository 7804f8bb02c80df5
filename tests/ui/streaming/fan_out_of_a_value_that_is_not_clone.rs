use dirk::prelude::*;

struct Frame(Vec<u8>);

fn capture() -> Frame {
    Frame(vec![0; 16])
}

fn store(f: Frame) -> usize {
    f.0.len()
}

fn measure(f: &Frame) -> usize {
    f.0.len()
}

fn main() {
    let _ = streaming! {
        #![dirk(max_evals = 1)]
        let frame = capture();
        let size = measure(&frame);
        let kept = store(frame);
        size + kept
    };
}
