//! Task Bench's dependency patterns (Slaughter et al., SC'20), exactly as
//! `TaskGraph::dependencies` in StanfordLegion/task-bench `core/core.cc`
//! defines them: which points of step `t - 1` the point `(t, i)` reads.
//!
//! As in core.cc, every point of a step depends on the *same* dependence
//! set (`dset`), chosen by the step: fft cycles through its ⌈log₂ W⌉
//! distances, spread and random_nearest through a period of 3 (Task
//! Bench's default). A dependency outside the previous step's points is
//! dropped (core.cc's executors intersect with the last step's
//! offset and width), so windows are clipped at the edges, never shifted.

/// A Task Bench dependency pattern; `usize` fields are the radix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    Trivial,
    NoComm,
    Stencil1d,
    Nearest(usize),
    Spread(usize),
    Fft,
    Tree,
    AllToAll,
    RandomNearest(usize),
}

/// Every pattern the benchmark runs, with Task Bench's default radix.
pub const ALL: [Pattern; 9] = [
    Pattern::Trivial,
    Pattern::NoComm,
    Pattern::Stencil1d,
    Pattern::Nearest(3),
    Pattern::Spread(3),
    Pattern::Fft,
    Pattern::Tree,
    Pattern::AllToAll,
    Pattern::RandomNearest(3),
];

/// core.cc's default period of the spread and random patterns.
const PERIOD: usize = 3;

/// core.cc's default `fraction_connected` for random_nearest.
const FRACTION_CONNECTED: f64 = 0.25;

impl Pattern {
    pub fn name(self) -> String {
        match self {
            Pattern::Trivial => "trivial".into(),
            Pattern::NoComm => "no_comm".into(),
            Pattern::Stencil1d => "stencil_1d".into(),
            Pattern::Nearest(r) => format!("nearest(r={r})"),
            Pattern::Spread(r) => format!("spread(r={r})"),
            Pattern::Fft => "fft".into(),
            Pattern::Tree => "tree".into(),
            Pattern::AllToAll => "all_to_all".into(),
            Pattern::RandomNearest(r) => format!("random_nearest(r={r})"),
        }
    }

    /// How many points step `t` has (`width_at_timestep`: the tree grows,
    /// the others are full).
    pub fn width_at(self, t: usize, width: usize) -> usize {
        match self {
            Pattern::Tree => (1usize << t.min(62)).min(width),
            _ => width,
        }
    }

    /// Which of the pattern's dependence sets step `t` uses
    /// (`dependence_set_at_timestep`).
    fn dset(self, t: usize, width: usize) -> usize {
        match self {
            Pattern::Fft => {
                let sets = fft_sets(width);
                (t + sets - 1) % sets
            }
            Pattern::Spread(_) | Pattern::RandomNearest(_) => t % PERIOD,
            _ => 0,
        }
    }

    /// The points of step `t - 1` that point `(t, i)` depends on, sorted,
    /// each once.
    pub fn deps(self, t: usize, i: usize, width: usize) -> Vec<usize> {
        if t == 0 {
            return Vec::new();
        }
        let last = self.width_at(t - 1, width);
        let dset = self.dset(t, width);
        let (p, w) = (i as i64, width as i64);
        let mut deps: Vec<i64> = match self {
            Pattern::Trivial => Vec::new(),
            Pattern::NoComm => vec![p],
            Pattern::Stencil1d => ((p - 1).max(0)..=(p + 1).min(w - 1)).collect(),
            Pattern::Nearest(r) => nearest(p, r as i64, w).collect(),
            Pattern::Spread(r) => {
                let r = r as i64;
                (0..r).map(|k| (p + k * w / r + if k > 0 { dset as i64 } else { 0 }) % w).collect()
            }
            Pattern::Fft => {
                let d = 1i64 << dset;
                [p - d, p, p + d].into_iter().filter(|&j| j >= 0 && j < w).collect()
            }
            Pattern::Tree => vec![p / 2],
            Pattern::AllToAll => (0..w).collect(),
            Pattern::RandomNearest(r) => nearest(p, r as i64, w)
                .filter(|&j| {
                    random_uniform(&[0, r as i64, dset as i64, j, p]) < FRACTION_CONNECTED || (r > 0 && j == p)
                })
                .collect(),
        };
        deps.retain(|&j| 0 <= j && j < last as i64);
        deps.sort_unstable();
        deps.dedup();
        deps.into_iter().map(|j| j as usize).collect()
    }
}

/// fft's number of dependence sets, ⌈log₂ W⌉ (at least 1: core.cc divides by it).
fn fft_sets(width: usize) -> usize {
    (width.next_power_of_two().trailing_zeros() as usize).max(1)
}

/// nearest's window: `max(0, p - r/2) ..= min(p + (r-1)/2, W-1)`, empty for radix 0.
fn nearest(p: i64, r: i64, w: i64) -> impl Iterator<Item = i64> {
    let (lo, hi) = if r > 0 { ((p - r / 2).max(0), (p + (r - 1) / 2).min(w - 1)) } else { (0, -1) };
    lo..=hi
}

/// core_random.c's `random_uniform`: SipHash-2-4 of the values' bytes (as
/// C `long`s, native endian) under the key 1, 2, .., 15, 0, scaled to [0, 1).
fn random_uniform(values: &[i64]) -> f64 {
    use std::hash::Hasher;
    let key: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0];
    let mut hasher = siphasher::sip::SipHasher24::new_with_key(&key);
    for v in values {
        hasher.write(&v.to_ne_bytes());
    }
    hasher.finish() as f64 * (-64f64).exp2()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `deps(t, i)` for every point of a step.
    fn step(pattern: Pattern, t: usize, width: usize) -> Vec<Vec<usize>> {
        (0..pattern.width_at(t, width)).map(|i| pattern.deps(t, i, width)).collect()
    }

    #[test]
    fn the_first_step_depends_on_nothing() {
        for pattern in ALL {
            assert!(step(pattern, 0, 8).iter().all(Vec::is_empty), "{}", pattern.name());
        }
    }

    #[test]
    fn trivial_and_no_comm() {
        // core.cc: TRIVIAL: return 0; NO_COMM: deps[0] = (point, point)
        assert_eq!(step(Pattern::Trivial, 3, 4), vec![Vec::<usize>::new(); 4]);
        assert_eq!(step(Pattern::NoComm, 3, 4), vec![vec![0], vec![1], vec![2], vec![3]]);
    }

    #[test]
    fn stencil_1d_clips_its_window_at_the_edges() {
        // core.cc: STENCIL_1D: deps[0] = (max(0, point-1), min(point+1, max_width-1))
        assert_eq!(
            step(Pattern::Stencil1d, 1, 5),
            vec![vec![0, 1], vec![0, 1, 2], vec![1, 2, 3], vec![2, 3, 4], vec![3, 4]]
        );
        assert_eq!(step(Pattern::Stencil1d, 2, 2), vec![vec![0, 1], vec![0, 1]]);
        assert_eq!(step(Pattern::Stencil1d, 7, 1), vec![vec![0]]);
    }

    #[test]
    fn nearest_is_a_clipped_window_of_radix_points() {
        // core.cc: NEAREST: (max(0, point - radix/2), min(point + (radix-1)/2, max_width-1))
        assert_eq!(step(Pattern::Nearest(3), 4, 4), vec![vec![0, 1], vec![0, 1, 2], vec![1, 2, 3], vec![2, 3]]);
        // An even radix reaches one further back than forward.
        assert_eq!(
            step(Pattern::Nearest(4), 1, 5),
            vec![vec![0, 1], vec![0, 1, 2], vec![0, 1, 2, 3], vec![1, 2, 3, 4], vec![2, 3, 4]]
        );
        assert_eq!(step(Pattern::Nearest(1), 1, 3), vec![vec![0], vec![1], vec![2]]);
        assert_eq!(step(Pattern::Nearest(0), 1, 3), vec![Vec::<usize>::new(); 3]);
    }

    #[test]
    fn spread_rotates_with_the_step_over_a_period_of_three() {
        // core.cc: SPREAD: dep = (point + i*max_width/radix + (i>0 ? dset : 0)) % max_width,
        // for i in 0..radix, with dset = timestep % period (period 3).
        let w = 9;
        // dset 1 (t = 1): offsets 0, 3+1, 6+1
        assert_eq!(Pattern::Spread(3).deps(1, 0, w), vec![0, 4, 7]);
        assert_eq!(Pattern::Spread(3).deps(1, 5, w), vec![0, 3, 5]);
        // dset 2 (t = 2): offsets 0, 5, 8
        assert_eq!(Pattern::Spread(3).deps(2, 0, w), vec![0, 5, 8]);
        // dset 0 (t = 3): offsets 0, 3, 6, and the period repeats
        assert_eq!(Pattern::Spread(3).deps(3, 2, w), vec![2, 5, 8]);
        assert_eq!(step(Pattern::Spread(3), 4, w), step(Pattern::Spread(3), 1, w));
        // width 2 (i*W/R rounds down): t = 1 gives 0, 0+1, 1+1 (mod 2) for point 0
        assert_eq!(step(Pattern::Spread(3), 1, 2), vec![vec![0, 1], vec![0, 1]]);
        assert_eq!(step(Pattern::Spread(3), 3, 2), vec![vec![0, 1], vec![0, 1]]);
        assert_eq!(step(Pattern::Spread(3), 3, 4), vec![vec![0, 1, 2], vec![1, 2, 3], vec![0, 2, 3], vec![0, 1, 3]]);
    }

    #[test]
    fn fft_cycles_its_butterfly_distance() {
        // core.cc: FFT: d1 = point - (1 << dset), point, d2 = point + (1 << dset), kept when in
        // 0..max_width; dset = (timestep + S - 1) % S with S = ceil(log2(max_width)).
        let w = 8; // S = 3: t = 1 -> dset 0, t = 2 -> 1, t = 3 -> 2, t = 4 -> 0
        assert_eq!(step(Pattern::Fft, 1, w)[..3], [vec![0, 1], vec![0, 1, 2], vec![1, 2, 3]]);
        assert_eq!(step(Pattern::Fft, 2, w)[..3], [vec![0, 2], vec![1, 3], vec![0, 2, 4]]);
        assert_eq!(step(Pattern::Fft, 3, w)[..5], [vec![0, 4], vec![1, 5], vec![2, 6], vec![3, 7], vec![0, 4]]);
        assert_eq!(step(Pattern::Fft, 4, w), step(Pattern::Fft, 1, w));
        // Width 5: S = 3 as well, and distance 4 leaves only point 4 with a partner.
        assert_eq!(step(Pattern::Fft, 3, 5), vec![vec![0, 4], vec![1], vec![2], vec![3], vec![0, 4]]);
        // Width 2: S = 1, distance 1 at every step.
        assert_eq!(step(Pattern::Fft, 5, 2), vec![vec![0, 1], vec![0, 1]]);
    }

    #[test]
    fn tree_doubles_its_width_and_reads_the_parent() {
        // core.cc: width_at_timestep = min(max_width, 1 << timestep); TREE: parent = point/2
        assert_eq!(step(Pattern::Tree, 0, 8).len(), 1);
        assert_eq!(step(Pattern::Tree, 1, 8), vec![vec![0], vec![0]]);
        assert_eq!(step(Pattern::Tree, 2, 8), vec![vec![0], vec![0], vec![1], vec![1]]);
        assert_eq!(
            step(Pattern::Tree, 3, 8),
            vec![vec![0], vec![0], vec![1], vec![1], vec![2], vec![2], vec![3], vec![3]]
        );
        // Once full, point/2 still: the upper half of the last step is not read.
        assert_eq!(step(Pattern::Tree, 4, 4), vec![vec![0], vec![0], vec![1], vec![1]]);
    }

    #[test]
    fn all_to_all_reads_every_point() {
        // core.cc: ALL_TO_ALL: deps[0] = (0, max_width-1)
        assert_eq!(step(Pattern::AllToAll, 2, 3), vec![vec![0, 1, 2]; 3]);
    }

    #[test]
    fn random_uniform_matches_task_bench() {
        // core_random.c: random_uniform(hash_value) = siphash(hash_value, key {1..15, 0}) * 2^-64,
        // hash_value = {graph_index, radix, dset, i, point}. Values printed by Task Bench's own
        // core_random.c and siphash.c, built with gcc on x86-64.
        let cases: [([i64; 5], f64); 6] = [
            ([0, 3, 0, 0, 0], 0.005858835906237567),
            ([0, 3, 0, 1, 0], 0.5455255434361385),
            ([0, 3, 1, 1, 2], 0.8531382445985662),
            ([0, 3, 2, 5, 4], 0.7879538475980099),
            ([0, 5, 1, 3, 2], 0.4238581715719612),
            ([1, 3, 0, 0, 1], 0.37633060797999895),
        ];
        for (values, expected) in cases {
            assert_eq!(random_uniform(&values), expected, "{values:?}");
        }
    }

    #[test]
    fn random_nearest_keeps_a_quarter_of_the_window_and_the_point_itself() {
        // core.cc: RANDOM_NEAREST: for i in nearest's window, include when
        // random_uniform({graph_index, radix, dset, i, point}) < fraction_connected (0.25)
        // or i == point; dset = timestep % period (period 3). Sets printed by Task Bench's
        // own code for width 8, radix 3.
        let expected: [[&[usize]; 8]; 3] = [
            [&[0], &[1], &[2], &[3], &[3, 4], &[5], &[6], &[7]],
            [&[0, 1], &[1], &[2], &[2, 3, 4], &[4], &[5], &[6], &[7]],
            [&[0, 1], &[1, 2], &[1, 2], &[3, 4], &[4], &[5], &[6, 7], &[6, 7]],
        ];
        for t in 1..=6 {
            let dset = t % 3;
            let got = step(Pattern::RandomNearest(3), t, 8);
            let want: Vec<Vec<usize>> = expected[dset].iter().map(|d| d.to_vec()).collect();
            assert_eq!(got, want, "step {t} (dependence set {dset})");
        }
    }

    #[test]
    fn every_dependency_is_a_point_of_the_step_before() {
        for pattern in ALL {
            for width in 1..=9 {
                for t in 1..8 {
                    let last = pattern.width_at(t - 1, width);
                    for deps in step(pattern, t, width) {
                        assert!(deps.iter().all(|&d| d < last), "{} width {width} step {t}: {deps:?}", pattern.name());
                        assert!(deps.windows(2).all(|w| w[0] < w[1]), "sorted and distinct: {deps:?}");
                    }
                }
            }
        }
    }
}
