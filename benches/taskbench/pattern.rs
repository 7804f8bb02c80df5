//! Task Bench dependency patterns: which points of step `t - 1` the point
//! `(t, i)` reads (Slaughter et al., SC'20).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pattern {
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

pub(crate) const ALL: [Pattern; 9] = [
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

impl Pattern {
    pub(crate) fn name(self) -> String {
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

    /// How many points step `t` has (the tree grows, the others are full).
    pub(crate) fn width_at(self, t: usize, width: usize) -> usize {
        match self {
            Pattern::Tree => (1usize << t.min(30)).min(width),
            _ => width,
        }
    }

    /// The points of step `t - 1` that point `(t, i)` depends on, sorted.
    pub(crate) fn deps(self, t: usize, i: usize, width: usize) -> Vec<usize> {
        if t == 0 {
            return Vec::new();
        }
        let prev = self.width_at(t - 1, width);
        let mut deps: Vec<usize> = match self {
            Pattern::Trivial => Vec::new(),
            Pattern::NoComm => vec![i],
            Pattern::Stencil1d => window(i, 3, prev),
            Pattern::Nearest(r) => window(i, r, prev),
            Pattern::Spread(r) => (0..r).map(|k| (i + k * prev.div_ceil(r)) % prev).collect(),
            Pattern::Fft => {
                let levels = prev.max(2).ilog2() as usize;
                let dist = 1usize << ((t - 1) % levels);
                let mut d = vec![i];
                if i >= dist {
                    d.push(i - dist);
                }
                if i + dist < prev {
                    d.push(i + dist);
                }
                d
            }
            Pattern::Tree => vec![i / 2],
            Pattern::AllToAll => (0..prev).collect(),
            Pattern::RandomNearest(r) => window(i, r, prev).into_iter().filter(|&j| j == i || keep(t, i, j)).collect(),
        };
        deps.retain(|&j| j < prev);
        deps.sort_unstable();
        deps.dedup();
        deps
    }
}

/// `r` points centred on `i`, clipped to `0..width`.
fn window(i: usize, r: usize, width: usize) -> Vec<usize> {
    let lo = i.saturating_sub((r - 1) / 2);
    (lo..lo + r).filter(|&j| j < width).collect()
}

/// A reproducible coin with probability 1/4.
fn keep(t: usize, i: usize, j: usize) -> bool {
    let mut x = (t as u64) << 42 ^ (i as u64) << 21 ^ j as u64;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x.is_multiple_of(4)
}
