//! Whole algorithms written with `datadeps!` against their serial versions:
//! a tree reduction and the tiled Cholesky of `examples/cholesky.rs`.

mod common;

use std::time::Duration;

use common::within;
use dirk::prelude::*;

#[path = "../examples/cholesky.rs"]
#[allow(dead_code)]
mod cholesky;

fn add_into(to: &mut [f64], from: &[f64]) {
    to.iter_mut().zip(from).for_each(|(t, f)| *t += f);
}

#[test]
fn a_tree_reduction_of_1000_vectors_matches_the_serial_sum() {
    within(Duration::from_secs(60), || {
        let rt = Runtime::builder().threads(2).build().unwrap();
        let (count, len) = (1000, 1000);
        // Small integers, so every order of the additions gives the same sums.
        let vectors: Vec<Vec<f64>> =
            (0..count).map(|i| (0..len).map(|j| ((i * 31 + j * 7) % 13) as f64).collect()).collect();
        let mut serial = vec![0.0; len];
        for v in &vectors {
            add_into(&mut serial, v);
        }
        let mut vs = vectors.clone();
        rt.enter(|| {
            datadeps! {
                let mut stride = 1;
                while stride < count {
                    for i in (0..count - stride).step_by(2 * stride) {
                        add_into(InOut(vs[i]), In(vs[i + stride]));
                    }
                    stride *= 2;
                }
            }
        })
        .unwrap();
        assert_eq!(vs[0], serial);
    });
}

#[test]
fn tiled_cholesky_of_1000x1000_matches_the_serial_factor() {
    within(Duration::from_secs(200), || {
        let rt = Runtime::builder().threads(2).build().unwrap();
        let a = cholesky::spd(1000, 42);
        let mut tiled = a.clone();
        rt.enter(|| cholesky::tiled(&mut tiled, 100)).unwrap();
        let mut serial = a;
        cholesky::serial(&mut serial);
        let error = cholesky::relative_error(&tiled, &serial);
        assert!(error < 1e-8, "relative error {error}");
    });
}

#[test]
fn a_failed_kernel_fails_the_factorisation_with_its_message() {
    within(Duration::from_secs(30), || {
        let mut a = cholesky::spd(64, 1);
        a[(40, 40)] = -1e6; // not positive definite any more
        let err = cholesky::tiled(&mut a, 16).unwrap_err();
        match err.root() {
            Error::Panicked { name, message, .. } => {
                assert_eq!(name, "potrf");
                assert!(message.starts_with("the matrix is not positive definite"), "{message}");
            }
            other => panic!("expected a panic in potrf, got {other:?}"),
        }
    });
}
