//! The workshop notebook's "Array Programming with Dagger" cells, in
//! order, with `dirk::array`.
//!
//! Run it with `cargo run --release --example darray --features array`.
//! It writes `darray-placement.svg` (which worker and thread made each
//! tile of the big random array) into the current directory.

use std::time::Instant;

use dirk::Error;
use dirk::array::{Blocks, DArray};

/// Prints a small matrix, one row per line.
fn show<T: std::fmt::Debug>(name: &str, values: &[T], cols: usize) {
    println!("{name}:");
    for row in values.chunks(cols) {
        println!("  {row:?}");
    }
}

#[dirk::main]
fn main() -> Result<(), Error> {
    // DA = rand(Blocks(1024, 1024), 10240, 10240); sum(DA)
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10240);
    let start = Instant::now();
    let da = DArray::<f64, 2>::rand(Blocks([1024, 1024]), [n, n]);
    da.wait()?;
    println!(
        "rand(Blocks(1024, 1024), {n}, {n}): {} tiles made in {:?}",
        da.tile_counts().iter().product::<usize>(),
        start.elapsed()
    );
    let start = Instant::now();
    let s = da.sum()?;
    println!("sum(DA) = {s:.1} in {:?}", start.elapsed());
    let serial: f64 = da.collect_vec()?.iter().sum();
    assert!((s - serial).abs() <= 1e-9 * serial, "sum(collect(DA)) ≈ sum(DA)");
    // Which thread made each of its tiles: the picture.
    std::fs::write("darray-placement.svg", da.placement_svg()?).map_err(|e| Error::Config(e.to_string()))?;
    println!("wrote darray-placement.svg");

    // A = rand(64, 64); DA = distribute(A, Blocks(16, 16)); DB = map(x -> x * 2, DA)
    let a: Vec<f64> = DArray::<f64, 2>::rand(Blocks([64, 64]), [64, 64]).collect_vec()?;
    let da = DArray::from_vec(a.clone(), [64, 64], Blocks([16, 16]))?;
    let db = da.map(|x| x * 2.0);
    assert_eq!(db.collect_vec()?, a.iter().map(|x| x * 2.0).collect::<Vec<_>>());
    println!("map(x -> x * 2, DA): {:?}", db);

    // collect(DA .* 2 .+ DB): one fused task per tile.
    let dc = &da * 2.0 + &db;
    let v = dc.collect_vec()?;
    println!("DA .* 2 .+ DB, first row starts {:?}", &v[..4]);

    // DC = rand(Blocks(4, 4), 16, 16); map(x -> myid()), map(x -> threadid())
    let dc = DArray::<f64, 2>::rand(Blocks([4, 4]), [16, 16]);
    let places = dc.placement()?;
    let workers: Vec<usize> = places.iter().map(|p| p.0).collect();
    let threads: Vec<usize> = places.iter().map(|p| p.1.unwrap_or(usize::MAX)).collect();
    show("worker of each tile (myid)", &workers, 4);
    show("thread of each tile (threadid)", &threads, 4);
    // (Tiles this small are all made by whichever thread wakes first.)

    // fetch(DC.chunks[3, 4]): tiles are tasks.
    let tile = dc.tile([2, 3]).fetch()?;
    println!("tile [2, 3]: shape {:?}, made by worker {} thread {:?}", tile.shape(), tile.worker(), tile.thread());

    // collect(reshape(DC, 8, 32) * reshape(DC, 32, 8))
    let product = dc.reshape([8, 32])?.matmul(&dc.reshape([32, 8])?)?;
    println!("reshape(DC, 8, 32) * reshape(DC, 32, 8): shape {:?}, trace {:.3}", product.shape(), {
        let p = product.collect_vec()?;
        (0..8).map(|i| p[i * 8 + i]).sum::<f64>()
    });

    // DD = rand(Blocks(16), 64); collect(sort(DD))
    let dd = DArray::<f64, 1>::rand(Blocks([16]), [64]);
    let sorted = dd.sort().collect_vec()?;
    assert!(sorted.windows(2).all(|w| w[0] <= w[1]));
    println!("sort(DD): {:.3} .. {:.3}", sorted[0], sorted[63]);
    Ok(())
}
