use std::sync::Mutex;

use dirk::prelude::*;

struct Grid {
    cells: Vec<f64>,
}

fn clear(cells: &mut Vec<f64>) {
    cells.clear();
}

fn main() {
    let grid = Mutex::new(Grid { cells: vec![1.0] });
    let mut guard = grid.lock().unwrap();
    let _ = datadeps! {
        clear(InOut(guard.cells));
    };
}
