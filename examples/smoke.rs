use dirk::prelude::*;

#[task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}
#[task]
fn total(xs: &Vec<f64>) -> f64 {
    xs.iter().sum()
}
#[task]
fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let a = spawn!(fib(n - 1));
    let b = spawn!(fib(n - 2));
    a.fetch().unwrap() + b.fetch().unwrap()
}

fn main() {
    let a = spawn!(add(1, 2));
    let b = spawn!(add(&a, 10));
    let c = spawn!(add(a, b));
    println!("c = {:?}", c.fetch());
    let xs = spawn!((|n: usize| vec![0.5; n])(4));
    println!("total = {:?}", spawn!(total(&xs)).fetch());
    let rt = Runtime::builder().threads(1).build().unwrap();
    let t = std::time::Instant::now();
    println!("fib(25) on 1 thread = {} in {:?}", rt.run(|| spawn!(fib(25)).fetch().unwrap()), t.elapsed());
    let rt2 = Runtime::builder().threads(2).build().unwrap();
    let t = std::time::Instant::now();
    let n = 1_000_000;
    rt2.run(|| {
        dirk::sync(|| {
            for i in 0..n {
                spawn!(add(i, 1));
            }
        })
        .unwrap()
    });
    println!("1M tasks: {:?} ({:.1} ns/task)", t.elapsed(), t.elapsed().as_nanos() as f64 / n as f64);
    let t = std::time::Instant::now();
    let mut prev = spawn!(add(0, 0));
    for _ in 0..100_000 {
        prev = spawn!(add(prev, 1));
    }
    println!("chain: {:?} in {:?}", prev.fetch(), t.elapsed());
    let t = std::time::Instant::now();
    for i in 0..10000 {
        let x = spawn!(add(i, 1));
        assert_eq!(x.fetch().unwrap(), i + 1);
    }
    println!("spawn+fetch: {:?}/task", t.elapsed() / 10000);
}
