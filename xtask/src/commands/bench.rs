//! `cargo xtask bench [--quick]`: run every benchmark binary, collect the
//! `@bench {json}` lines they print, and write BENCHMARKS.md: per group, one
//! table of every case with dirk's figure, each peer's, and dirk ÷ peer, all
//! measured in the same run. `--quick` (DIRK_BENCH_QUICK=1) cuts sizes and
//! repetitions for a smoke run that keeps the harness from rotting.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::sh::{cargo, root};

/// The benchmark binaries in `benches/`, run in this order.
const BENCHES: &[&str] = &["tasks", "stream"];

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
    let mut records = Vec::new();
    for bench in BENCHES {
        eprintln!("== benchmark `{bench}`{}", if quick { " (quick)" } else { "" });
        records.extend(run_bench(bench, quick)?);
    }
    if records.is_empty() {
        return Err("the benchmarks reported no results".to_owned());
    }
    let command = format!("cargo xtask bench{}", if quick { " --quick" } else { "" });
    let page = render(&records, &command, quick);
    let path = root().join("BENCHMARKS.md");
    std::fs::write(&path, page).map_err(|e| format!("could not write {}: {e}", path.display()))?;
    eprintln!("wrote {} ({} results)", path.display(), records.len());
    Ok(())
}

fn run_bench(bench: &str, quick: bool) -> Result<Vec<Record>, String> {
    let mut cmd = cargo();
    cmd.args(["bench", "--bench", bench]).stdout(Stdio::piped()).stderr(Stdio::inherit());
    if quick {
        cmd.env("DIRK_BENCH_QUICK", "1");
    }
    let mut child = cmd.spawn().map_err(|e| format!("could not start cargo bench: {e}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut records = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading the output of `{bench}`: {e}"))?;
        if let Some(json) = line.strip_prefix("@bench ") {
            let record: Record =
                serde_json::from_str(json).map_err(|e| format!("bad result line from `{bench}`: {e}: {json}"))?;
            records.push(record);
        }
    }
    let status = child.wait().map_err(|e| format!("waiting for `{bench}`: {e}"))?;
    if !status.success() {
        return Err(format!("benchmark `{bench}` failed ({status})"));
    }
    Ok(records)
}

fn render(records: &[Record], command: &str, quick: bool) -> String {
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
