//! Task Bench (Slaughter et al., SC'20) as StanfordLegion/task-bench
//! defines it: the dependency patterns and compute-bound kernel of `core/`,
//! and the METG rule of `scripts/chart_metg.py`.

pub mod kernel;
pub mod metg;
pub mod pattern;
