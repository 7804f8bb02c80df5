//! `cargo xtask bench [--quick] [--peers]`: run every benchmark binary,
//! collect the `@bench`, `@curve`, `@target` and `@about` lines (JSON) they
//! print, and write BENCHMARKS.md (per group, what is timed and one table
//! of every case with dirk's figure, each peer's, and dirk ÷ peer, all
//! measured in the same run) and one SVG chart per curve plot under
//! `bench-plots/`. `--quick` (DIRK_BENCH_QUICK=1) cuts sizes and
//! repetitions for a smoke run that keeps the harness from rotting.
//! `--peers` also measures the peers outside Rust (`benches/peers/`: Dask
//! and Ray) on Task Bench's stencil, and Dask arrays on the `array`
//! benchmark's cases, from a virtual environment under the
//! target directory that it fills from PyPI.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::plot;
use crate::sh::{self, cargo, root};

/// The benchmark binaries of `benches/` (the `dirk-benches` package), run in this order.
const BENCHES: &[&str] = &["tasks", "taskbench", "stream", "memory", "cluster", "datadeps", "array", "fs", "gpu"];

/// The cargo features a benchmark binary needs (its `required-features`).
const BENCH_FEATURES: &[(&str, &str)] = &[("gpu", "gpu"), ("array", "array")];

/// One point of a curve: `plot` names the chart, `system` the line.
#[derive(Debug, Deserialize)]
struct CurvePoint {
    plot: String,
    system: String,
    x: f64,
    y: f64,
}

/// What a benchmark group times, in the benchmark's own words.
#[derive(Debug, Deserialize)]
struct About {
    group: String,
    text: String,
}

/// A target an issue sets for a figure (see `benches/src/harness.rs`).
#[derive(Debug, Deserialize)]
struct Target {
    group: String,
    case: String,
    system: String,
    peer: Option<String>,
    limit: f64,
    what: String,
}

#[derive(Debug, Deserialize)]
struct Record {
    group: String,
    case: String,
    system: String,
    value: f64,
    min: f64,
    max: f64,
    unit: String,
    lower_is_better: bool,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let (mut quick, mut peers) = (false, false);
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            "--peers" => peers = true,
            other => return Err(format!("unknown argument {other:?}: use `cargo xtask bench [--quick] [--peers]`")),
        }
    }
    let mut out = Output::default();
    for bench in BENCHES {
        eprintln!("== benchmark `{bench}`{}", if quick { " (quick)" } else { "" });
        run_bench(bench, quick, &mut out)?;
    }
    if peers {
        eprintln!("== peers outside Rust (Dask, Ray){}", if quick { " (quick)" } else { "" });
        run_peers(quick, &mut out)?;
    }
    let Output { records, curves, targets, abouts } = out;
    if records.is_empty() {
        return Err("the benchmarks reported no results".to_owned());
    }
    let command =
        format!("cargo xtask bench{}{}", if quick { " --quick" } else { "" }, if peers { " --peers" } else { "" });
    // A quick run must not replace the recorded figures: it writes under target/.
    let out_dir = if quick { root().join("target/bench-quick") } else { root() };
    let charts = write_charts(&curves, &out_dir)?;
    let page =
        render(&Page { records: &records, targets: &targets, abouts: &abouts, charts: &charts }, &command, quick);
    let path = out_dir.join("BENCHMARKS.md");
    std::fs::write(&path, page).map_err(|e| format!("could not write {}: {e}", path.display()))?;
    eprintln!("wrote {} ({} results)", path.display(), records.len());
    Ok(())
}

/// Writes one SVG per plot; returns (plot name, file path relative to the root).
fn write_charts(curves: &[CurvePoint], out_dir: &std::path::Path) -> Result<Vec<(String, String)>, String> {
    let mut plots: BTreeMap<&str, BTreeMap<String, plot::Series>> = BTreeMap::new();
    for p in curves {
        plots.entry(&p.plot).or_default().entry(p.system.clone()).or_default().push((p.x, p.y));
    }
    let dir = out_dir.join("bench-plots");
    std::fs::create_dir_all(&dir).map_err(|e| format!("could not create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for (name, series) in &plots {
        let (title, x_label, y_label, reference) = if name.starts_with("taskbench") {
            (
                format!("Task Bench {}: efficiency vs task granularity", &name["taskbench ".len()..]),
                "task granularity (µs, wall time × cores ÷ tasks)",
                "efficiency (of peak flop/s)",
                Some((0.5, "50%")),
            )
        } else {
            (name.to_string(), "x", "y", None)
        };
        let chart = plot::Chart { title: &title, x_label, y_label, reference };
        let file: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        let rel = format!("bench-plots/{}.svg", file.trim_matches('-'));
        std::fs::write(out_dir.join(&rel), plot::svg(&chart, series))
            .map_err(|e| format!("could not write {rel}: {e}"))?;
        written.push((name.to_string(), rel));
    }
    Ok(written)
}

/// Everything the benchmark binaries reported.
#[derive(Default)]
struct Output {
    records: Vec<Record>,
    curves: Vec<CurvePoint>,
    targets: Vec<Target>,
    abouts: Vec<About>,
}

impl Output {
    /// Reads the result lines a benchmark prints on `stdout`, to its end.
    fn collect(&mut self, name: &str, stdout: impl std::io::Read) -> Result<(), String> {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| format!("reading the output of `{name}`: {e}"))?;
            let Some((kind, json)) = line.split_once(' ') else { continue };
            let bad = |e: serde_json::Error| format!("{e}: bad line from `{name}`: {line}");
            match kind {
                "@bench" => self.records.push(serde_json::from_str(json).map_err(bad)?),
                "@curve" => self.curves.push(serde_json::from_str(json).map_err(bad)?),
                "@target" => self.targets.push(serde_json::from_str(json).map_err(bad)?),
                "@about" => self.abouts.push(serde_json::from_str(json).map_err(bad)?),
                _ => {}
            }
        }
        Ok(())
    }
}

fn run_bench(bench: &str, quick: bool, out: &mut Output) -> Result<(), String> {
    let mut cmd = cargo();
    cmd.args(["bench", "-p", "dirk-benches", "--bench", bench]).stdout(Stdio::piped()).stderr(Stdio::inherit());
    if let Some((_, features)) = BENCH_FEATURES.iter().find(|(b, _)| *b == bench) {
        cmd.args(["--features", features]);
    }
    if quick {
        // A smoke run keeps the harness from rotting; its figures are not
        // kept (they go under target/), so it reuses the unoptimized build
        // the tests made rather than compiling every peer again optimized.
        cmd.env("DIRK_BENCH_QUICK", "1").args(["--profile", "dev"]);
    }
    let mut child = cmd.spawn().map_err(|e| format!("could not start cargo bench: {e}"))?;
    out.collect(bench, child.stdout.take().expect("piped stdout"))?;
    let status = child.wait().map_err(|e| format!("waiting for `{bench}`: {e}"))?;
    if !status.success() {
        return Err(format!("benchmark `{bench}` failed ({status})"));
    }
    Ok(())
}

/// Task Bench's stencil on Dask and Ray (`benches/peers/taskbench.py`),
/// from a virtual environment under the target directory, filled from PyPI
/// with the pinned versions of `benches/peers/requirements.txt`. Each step
/// runs every time and does nothing when its work is done.
fn run_peers(quick: bool, out: &mut Output) -> Result<(), String> {
    let target = target_dir()?;
    let venv = target.join("peers-venv");
    let mut create = Command::new("python3");
    create.args(["-m", "venv"]).arg(&venv);
    sh::run(create).map_err(|e| format!("{e}: the peers need Python 3 with venv (Debian: python3-venv)"))?;
    let mut install = Command::new(venv.join("bin/pip"));
    install.args(["install", "--quiet", "--disable-pip-version-check", "-r"]);
    install.arg(root().join("benches/peers/requirements.txt"));
    sh::run(install)?;
    // Task Bench's kernel, built optimized, for the peers to call.
    let mut build = cargo();
    build.args(["build", "--release", "-p", "dirk-benches", "--lib"]);
    sh::run(build)?;
    let kernel = target.join("release").join(format!(
        "{}dirk_benches{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    // Task Bench's stencil (Dask and Ray), then Dask arrays on the cases of
    // the `array` benchmark.
    for (script, what) in [("taskbench.py", "the peers' Task Bench"), ("darray.py", "the Dask array cases")] {
        let mut cmd = Command::new(venv.join("bin/python"));
        cmd.arg(root().join("benches/peers").join(script))
            .env("DIRK_TASKBENCH_KERNEL", &kernel)
            .env("DIRK_BENCH_QUICK", if quick { "1" } else { "0" })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().map_err(|e| format!("could not start {what}: {e}"))?;
        out.collect("peers", child.stdout.take().expect("piped stdout"))?;
        let status = child.wait().map_err(|e| format!("waiting for {what}: {e}"))?;
        if !status.success() {
            return Err(format!("{what} failed ({status})"));
        }
    }
    Ok(())
}

/// The target directory cargo builds into (`CARGO_TARGET_DIR` or the workspace's).
fn target_dir() -> Result<std::path::PathBuf, String> {
    let mut cmd = cargo();
    cmd.args(["metadata", "--format-version", "1", "--no-deps"]);
    let output = cmd.output().map_err(|e| format!("could not run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    #[derive(Deserialize)]
    struct Metadata {
        target_directory: std::path::PathBuf,
    }
    let meta: Metadata = serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    Ok(meta.target_directory)
}

/// Everything a page shows.
struct Page<'a> {
    records: &'a [Record],
    targets: &'a [Target],
    abouts: &'a [About],
    charts: &'a [(String, String)],
}

/// The targets table: each target with the figure measured and whether it
/// is met. A target whose figure was not reported stays in the table, as
/// not measured and not met.
fn render_targets(records: &[Record], targets: &[Target], out: &mut String) {
    if targets.is_empty() {
        return;
    }
    let find = |t: &Target, system: &str| {
        records.iter().find(|r| r.group == t.group && r.case == t.case && r.system == system)
    };
    let _ = writeln!(out, "## Targets\n");
    let _ = writeln!(out, "| target | figure | measured | limit | met |");
    let _ = writeln!(out, "|---|---|---:|---:|:---:|");
    for t in targets {
        let figure = match &t.peer {
            None => format!("{} {} ({})", t.group, t.case, t.system),
            Some(peer) => format!("{} {}: {} ÷ {peer}", t.group, t.case, t.system),
        };
        let measured = find(t, &t.system).and_then(|mine| match &t.peer {
            None => Some((mine, mine.value, format!(" {}", mine.unit))),
            Some(peer) => find(t, peer).filter(|p| p.value > 0.0).map(|p| (mine, mine.value / p.value, "×".to_owned())),
        });
        let Some((mine, value, unit)) = measured else {
            let _ = writeln!(out, "| {} | {figure} | not measured | {} | **no** |", t.what, num(t.limit));
            continue;
        };
        let met = if mine.lower_is_better { value <= t.limit } else { value >= t.limit };
        let _ = writeln!(
            out,
            "| {} | {figure} | {}{unit} | {}{unit} | {} |",
            t.what,
            num(value),
            num(t.limit),
            if met { "yes" } else { "**no**" }
        );
    }
    out.push('\n');
}

/// How every figure on the page is taken; each group adds what it times.
const METHOD: &str = "\
Written by `{command}`. How the figures are taken:

- Every figure is the **median** of several runs (the count is in each group's notes below), with the \
least and greatest run beside it. Peers are measured **in the same run** as dirk, on the same machine and \
thread count, doing the same work, so a ratio compares like with like on a noisy shared machine.
- `dirk ÷ system` divides dirk's median by the peer's (the first system of the case whose name starts with \
`dirk` is dirk). Below 1 means dirk is faster for times, slower for rates; ✓ marks where dirk is better.
- Each peer is driven the way its users drive it when they want speed (the notes say how).
- Where dirk spins while it waits, a `CPU time` row gives the CPU time of the whole process per item, \
beside the wall time.
- Task Bench figures follow StanfordLegion/task-bench: its patterns (core.cc, each tested in \
`benches/src/taskbench/pattern.rs`), its kernel, METG extracted from each sweep by its rule \
(scripts/chart_metg.py: the smallest passing granularity, then linear interpolation to 50% with the next \
point), the median of the sweeps reported with the smallest passing point beside it.
- Targets are the figures issues set; a target whose figure is missing reads *not measured*.";

fn render(page: &Page<'_>, command: &str, quick: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# dirk benchmarks\n");
    let _ = writeln!(out, "{}\n", METHOD.replace("{command}", command));
    if quick {
        let _ = writeln!(
            out,
            "**Quick smoke run: sizes and repetitions are cut and nothing is optimized; do not quote these figures.**\n"
        );
    }
    let _ = writeln!(out, "- machine: {}", machine());
    let _ = writeln!(out, "- date: {}\n", date());
    render_targets(page.records, page.targets, &mut out);

    let mut groups: BTreeMap<&str, BTreeMap<&str, Vec<&Record>>> = BTreeMap::new();
    for r in page.records {
        groups.entry(&r.group).or_default().entry(&r.case).or_default().push(r);
    }
    for (group, cases) in &groups {
        let _ = writeln!(out, "## {group}\n");
        for about in page.abouts.iter().filter(|a| a.group == *group) {
            let _ = writeln!(out, "{}\n", about.text);
        }
        let _ = writeln!(out, "| case | system | median | min | max | dirk ÷ system |");
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|");
        for (case, rs) in cases {
            let dirk = rs.iter().find(|r| r.system.starts_with("dirk"));
            for r in rs {
                let ratio = match dirk {
                    Some(d) if !r.system.starts_with("dirk") && r.value > 0.0 => {
                        let ratio = d.value / r.value;
                        let better = if r.lower_is_better { ratio < 1.0 } else { ratio > 1.0 };
                        format!("{ratio:.2}{}", if better { " ✓" } else { "" })
                    }
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "| {case} | {} | {} {} | {} | {} | {ratio} |",
                    r.system,
                    num(r.value),
                    r.unit,
                    num(r.min),
                    num(r.max)
                );
            }
        }
        out.push('\n');
        for (name, path) in page.charts.iter().filter(|(name, _)| name.starts_with(group)) {
            let _ = writeln!(out, "![{name}]({path})\n");
        }
    }
    out
}

fn num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()))
        .map_or_else(String::new, |kib| format!(", {} GiB", kib / (1 << 20)));
    format!("{cpu}, {cores} cores{mem}, {} {}", std::env::consts::OS, std::env::consts::ARCH)
}

fn date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown date".to_owned())
}
