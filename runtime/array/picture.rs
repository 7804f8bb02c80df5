//! Where the tiles are: the notebook's `myid()` / `threadid()` matrices,
//! drawn as an SVG grid.

use std::fmt::Write;

use super::{DArray, Element};
use crate::Error;

/// Cell size in pixels.
const CELL: usize = 56;

impl<T: Element, const N: usize> DArray<T, N> {
    /// An SVG picture of the grid of tiles, each cell coloured by the
    /// worker that made the tile and labelled `w<worker> t<thread>`. A
    /// 2-D array draws its grid; other ranks draw the last axis across and
    /// the others down. Waits for the tiles.
    pub fn placement_svg(&self) -> Result<String, Error> {
        let places = self.placement()?;
        let across = if N == 0 { 1 } else { self.grid.counts[N - 1].max(1) };
        let down = places.len().div_ceil(across).max(1);
        let (width, height) = (across * CELL + 2, down * CELL + 24);
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = write!(
            svg,
            r#"<text x="1" y="15">{} tiles of {:?} over {:?}: worker and thread of each</text>"#,
            places.len(),
            self.grid.blocks,
            self.grid.shape
        );
        for (k, (worker, thread)) in places.iter().enumerate() {
            let (x, y) = (1 + (k % across) * CELL, 22 + (k / across) * CELL);
            let hue = (worker * 137 + 210) % 360;
            let light = 55 + (thread.unwrap_or(0) % 4) * 8;
            let label = match thread {
                Some(t) => format!("w{worker} t{t}"),
                None => format!("w{worker}"),
            };
            let _ = write!(
                svg,
                r#"<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="hsl({hue},60%,{light}%)" stroke="white"/><text x="{}" y="{}" text-anchor="middle">{label}</text>"#,
                x + CELL / 2,
                y + CELL / 2 + 4
            );
        }
        svg.push_str("</svg>\n");
        Ok(svg)
    }
}
