use dirk::prelude::*;
#[task]
fn noop(i: u64) -> u64 {
    std::hint::black_box(i)
}
fn main() {
    let rt = Runtime::builder().threads(2).build().unwrap();
    for _ in 0..3 {
        rt.run(|| {
            dirk::sync(|| {
                for i in 0..1_000_000u64 {
                    spawn!(noop(i));
                }
            })
            .unwrap()
        });
    }
    let t = std::time::Instant::now();
    for _ in 0..10 {
        rt.run(|| {
            dirk::sync(|| {
                for i in 0..1_000_000u64 {
                    spawn!(noop(i));
                }
            })
            .unwrap()
        });
    }
    println!("{:.1} ns/task", t.elapsed().as_nanos() as f64 / 1e7);
}
