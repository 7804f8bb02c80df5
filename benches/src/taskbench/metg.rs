//! METG: Task Bench's minimum effective task granularity, extracted from a
//! sweep by the rule of its own script (`scripts/chart_metg.py`,
//! `analyze`): take the smallest task granularity whose efficiency is at
//! least the threshold; when the next point of the sweep (smaller tasks)
//! falls below the threshold, interpolate linearly between the two, in
//! efficiency, to where the threshold is crossed.

/// One point of a sweep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Task granularity: wall time × cores ÷ tasks, in µs.
    pub granularity: f64,
    /// Achieved flop rate ÷ the machine's peak.
    pub efficiency: f64,
}

/// A sweep's METG.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metg {
    /// Interpolated to the threshold (Task Bench's figure).
    pub interpolated: f64,
    /// The smallest granularity measured that still reached the threshold
    /// (a power of two of kernel iterations).
    pub passing: f64,
}

/// The METG at `threshold` of a sweep whose `points` run from large tasks
/// to small ones; `None` when no point reaches the threshold.
pub fn metg(points: &[Point], threshold: f64) -> Option<Metg> {
    let (at, passing) = points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.efficiency >= threshold)
        .min_by(|a, b| a.1.granularity.total_cmp(&b.1.granularity))?;
    let mut interpolated = passing.granularity;
    // The next point has smaller tasks; being smaller than the smallest
    // passing one, it is below the threshold.
    if let Some(next) = points.get(at + 1).filter(|next| next.granularity < passing.granularity) {
        let f = (threshold - next.efficiency) / (passing.efficiency - next.efficiency);
        interpolated = next.granularity + f * (passing.granularity - next.granularity);
    }
    Some(Metg { interpolated, passing: passing.granularity })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(points: &[(f64, f64)]) -> Vec<Point> {
        points.iter().map(|&(granularity, efficiency)| Point { granularity, efficiency }).collect()
    }

    #[test]
    fn interpolates_linearly_between_the_points_around_the_threshold() {
        // 0.8 at 4 µs, 0.4 at 2 µs: the threshold 0.5 is a quarter of the way from 2 to 4.
        let points = sweep(&[(16.0, 0.95), (8.0, 0.9), (4.0, 0.8), (2.0, 0.4), (1.0, 0.1)]);
        assert_eq!(metg(&points, 0.5), Some(Metg { interpolated: 2.5, passing: 4.0 }));
    }

    #[test]
    fn a_point_exactly_at_the_threshold_passes() {
        let points = sweep(&[(4.0, 0.9), (2.0, 0.5), (1.0, 0.25)]);
        // Interpolating from (0.25, 1) to (0.5, 2) at 0.5 gives the passing point itself.
        assert_eq!(metg(&points, 0.5), Some(Metg { interpolated: 2.0, passing: 2.0 }));
    }

    #[test]
    fn a_noisy_sweep_takes_its_smallest_passing_point() {
        // 2 µs dips below and 1 µs recovers: chart_metg.py takes the smallest
        // passing granularity, 1 µs, and interpolates towards the point after it.
        let points = sweep(&[(4.0, 0.9), (2.0, 0.45), (1.0, 0.6), (0.5, 0.2)]);
        let m = metg(&points, 0.5).expect("a point passes");
        assert_eq!(m.passing, 1.0);
        assert!((m.interpolated - 0.875).abs() < 1e-12, "{m:?}");
    }

    #[test]
    fn a_sweep_that_never_falls_below_reports_its_last_point() {
        let points = sweep(&[(4.0, 0.9), (2.0, 0.8)]);
        assert_eq!(metg(&points, 0.5), Some(Metg { interpolated: 2.0, passing: 2.0 }));
    }

    #[test]
    fn a_sweep_that_never_reaches_the_threshold_has_none() {
        assert_eq!(metg(&sweep(&[(4.0, 0.4), (2.0, 0.2)]), 0.5), None);
    }
}
