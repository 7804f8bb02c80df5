//! `cargo xtask bench [--quick]`: run every benchmark binary, collect the
//! `@bench {json}` and `@curve {json}` lines they print, and write
//! BENCHMARKS.md (per group, one table of every case with dirk's figure,
//! each peer's, and dirk ÷ peer, all measured in the same run) and one SVG
//! chart per curve plot under `bench-plots/`. `--quick`
//! (DIRK_BENCH_QUICK=1) cuts sizes and repetitions for a smoke run that
//! keeps the harness from rotting.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::plot;
use crate::sh::{cargo, root};

/// The benchmark binaries of `benches/` (the `dirk-benches` package), run in this order.
const BENCHES: &[&str] = &["tasks", "taskbench", "stream", "cluster", "datadeps", "gpu"];

/// The cargo features a benchmark binary needs (its `required-features`).
const BENCH_FEATURES: &[(&str, &str)] = &[("gpu", "gpu")];

/// One point of a curve: `plot` names the chart, `system` the line.
#[derive(Debug, Deserialize)]
struct CurvePoint {
    plot: String,
    system: String,
    x: f64,
    y: f64,
}

/// A target an issue sets for a figure (see `benches/harness`).
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
    let mut quick = false;
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            other => return Err(format!("unknown argument {other:?}: use `cargo xtask bench [--quick]`")),
        }
    }
    let mut out = Output::default();
    for bench in BENCHES {
        eprintln!("== benchmark `{bench}`{}", if quick { " (quick)" } else { "" });
        run_bench(bench, quick, &mut out)?;
    }
    let Output { records, curves, targets } = out;
    if records.is_empty() {
        return Err("the benchmarks reported no results".to_owned());
    }
    let command = format!("cargo xtask bench{}", if quick { " --quick" } else { "" });
    // A quick run must not replace the recorded figures: it writes under target/.
    let out_dir = if quick { root().join("target/bench-quick") } else { root() };
    let charts = write_charts(&curves, &out_dir)?;
    let page = render(&records, &targets, &charts, &command, quick);
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
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading the output of `{bench}`: {e}"))?;
        let parse = |json: &str| format!("bad line from `{bench}`: {json}");
        if let Some(json) = line.strip_prefix("@bench ") {
            out.records.push(serde_json::from_str(json).map_err(|e| format!("{e}: {}", parse(json)))?);
        } else if let Some(json) = line.strip_prefix("@curve ") {
            out.curves.push(serde_json::from_str(json).map_err(|e| format!("{e}: {}", parse(json)))?);
        } else if let Some(json) = line.strip_prefix("@target ") {
            out.targets.push(serde_json::from_str(json).map_err(|e| format!("{e}: {}", parse(json)))?);
        }
    }
    let status = child.wait().map_err(|e| format!("waiting for `{bench}`: {e}"))?;
    if !status.success() {
        return Err(format!("benchmark `{bench}` failed ({status})"));
    }
    Ok(())
}

/// The targets table: each target with the figure measured and whether it is met.
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
        let Some(mine) = find(t, &t.system) else { continue };
        let (figure, value) = match &t.peer {
            None => (format!("{} {} ({})", t.group, t.case, t.system), mine.value),
            Some(peer) => match find(t, peer) {
                Some(p) if p.value > 0.0 => {
                    (format!("{} {}: {} ÷ {peer}", t.group, t.case, t.system), mine.value / p.value)
                }
                _ => continue,
            },
        };
        let met = if mine.lower_is_better { value <= t.limit } else { value >= t.limit };
        let unit = if t.peer.is_some() { "×".to_owned() } else { format!(" {}", mine.unit) };
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

fn render(records: &[Record], targets: &[Target], charts: &[(String, String)], command: &str, quick: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# dirk benchmarks\n");
    let _ = writeln!(
        out,
        "Written by `{command}`. Every figure is the median of several runs; peers are measured in the same run, \
         so the ratios compare like with like on a noisy shared machine.{}\n",
        if quick { " **Quick smoke run: sizes and repetitions are cut; do not quote these figures.**" } else { "" }
    );
    let _ = writeln!(out, "- machine: {}", machine());
    let _ = writeln!(out, "- date: {}", date());
    let _ = writeln!(out, "- dirk ÷ peer below 1 means dirk is faster (for times) or slower (for rates)\n");
    render_targets(records, targets, &mut out);

    let mut groups: BTreeMap<&str, BTreeMap<&str, Vec<&Record>>> = BTreeMap::new();
    for r in records {
        groups.entry(&r.group).or_default().entry(&r.case).or_default().push(r);
    }
    for (group, cases) in &groups {
        let _ = writeln!(out, "## {group}\n");
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
        for (name, path) in charts.iter().filter(|(name, _)| name.starts_with(group)) {
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
