use dirk::prelude::*;
#[task]
fn noop(i: u64) -> u64 {
    std::hint::black_box(i)
}
#[task]
fn next(p: u64) -> u64 {
    std::hint::black_box(p + 1)
}
fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let rt = Runtime::builder().threads(2).build().unwrap();
    for _ in 0..10 {
        if which == "chain" {
            rt.run(|| {
                let mut p = spawn!(noop(0));
                for _ in 0..100_000 {
                    p = spawn!(next(p));
                }
                p.fetch().unwrap()
            });
        } else {
            rt.run(|| {
                dirk::sync(|| {
                    for i in 0..1_000_000u64 {
                        spawn!(noop(i));
                    }
                })
                .unwrap()
            });
        }
    }
}
