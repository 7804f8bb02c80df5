use dirk::prelude::*;
use std::hint::black_box;

#[derive(Clone, Copy)]
struct Out {
    t: u32,
    i: u32,
    v: f64,
}

#[task]
fn point(t: usize, i: usize, inputs: &[&Out]) -> Out {
    let v: f64 = inputs.iter().map(|o| o.v + o.t as f64 + o.i as f64).sum();
    Out { t: t as u32, i: i as u32, v: black_box(v) }
}

fn main() {
    let rt = Runtime::builder().threads(2).build().unwrap();
    let (w, steps) = (4usize, 1000usize);
    for _ in 0..30 {
        let t0 = std::time::Instant::now();
        rt.run(|| {
            dirk::sync(|| {
                let mut prev: Vec<Task<Out>> = Vec::new();
                for t in 0..steps {
                    prev = (0..w)
                        .map(|i| {
                            let inputs: Vec<Task<Out>> = if t == 0 {
                                vec![]
                            } else {
                                (i.saturating_sub(1)..=(i + 1).min(w - 1)).map(|d| prev[d].clone()).collect()
                            };
                            spawn!(point(t, i, inputs))
                        })
                        .collect();
                }
            })
            .unwrap()
        });
        black_box(t0.elapsed());
    }
    let t0 = std::time::Instant::now();
    for _ in 0..10 {
        rt.run(|| {
            dirk::sync(|| {
                let mut prev: Vec<Task<Out>> = Vec::new();
                for t in 0..steps {
                    prev = (0..w)
                        .map(|i| {
                            let inputs: Vec<Task<Out>> = if t == 0 {
                                vec![]
                            } else {
                                (i.saturating_sub(1)..=(i + 1).min(w - 1)).map(|d| prev[d].clone()).collect()
                            };
                            spawn!(point(t, i, inputs))
                        })
                        .collect();
                }
            })
            .unwrap()
        });
    }
    println!("{:.0} ns/task", t0.elapsed().as_nanos() as f64 / (10 * w * steps) as f64);
}
