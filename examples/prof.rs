use dirk::prelude::*;
use std::hint::black_box;
#[task]
fn noop(i: u64) -> u64 {
    black_box(i)
}
#[task]
fn next(p: u64) -> u64 {
    black_box(p + 1)
}
fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let threads: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(2);
    let pin = std::env::args().nth(3).is_none();
    let rt = Runtime::builder().threads(threads).pin_threads(pin).build().unwrap();
    match which.as_str() {
        "chain" => {
            for _ in 0..10 {
                rt.run(|| {
                    let mut p = spawn!(noop(0));
                    for _ in 0..100_000 {
                        p = spawn!(next(p));
                    }
                    p.fetch().unwrap()
                });
            }
        }
        "latency" => {
            rt.run(|| ());
            for _ in 0..5 {
                let t = std::time::Instant::now();
                for i in 0..20000u64 {
                    let x = rt.run(|| 0);
                    black_box(x);
                    let _ = i;
                }
                let a = t.elapsed() / 20000;
                let t = std::time::Instant::now();
                rt.enter(|| {
                    for i in 0..20000u64 {
                        black_box(dirk::spawn(move || black_box(i)).fetch().unwrap());
                    }
                });
                println!("run {:?}  spawn+fetch {:?}", a, t.elapsed() / 20000);
            }
        }
        _ => {
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
        }
    }
}
