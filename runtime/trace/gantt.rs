//! A Gantt chart of a trace as SVG: one row per worker thread, one bar per
//! task run, coloured by task name, with the task's name and id on hover.
//! A task that runs while another on the same thread waits (a `fetch` or
//! `dirk::sleep` inside a task) is drawn in a lane below it, so nested runs
//! do not hide each other.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::Trace;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 110.0;
const RIGHT: f64 = 45.0;
const ROW_MAX: f64 = 26.0;
const ROW_MIN: f64 = 9.0;
const TOP: f64 = 40.0;
const PALETTE: [&str; 10] =
    ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

/// Renders `trace` as a Gantt chart: time across, one row per thread.
pub fn gantt_svg(trace: &Trace) -> String {
    let mut rows: BTreeMap<(usize, Option<usize>), Vec<&super::TaskRun>> = BTreeMap::new();
    for run in trace.tasks() {
        rows.entry((run.worker, run.thread)).or_default().push(run);
    }
    let mut colors: BTreeMap<&str, &str> = BTreeMap::new();
    for run in trace.tasks() {
        let next = PALETTE[colors.len() % PALETTE.len()];
        colors.entry(run.name).or_insert(next);
    }
    let span =
        trace.tasks().iter().map(|r| r.end).max().unwrap_or_default().max(trace.length()).as_secs_f64().max(1e-9);
    let x = |t: std::time::Duration| LEFT + t.as_secs_f64() / span * (WIDTH - LEFT - RIGHT);
    // Lanes: each run goes to the first lane of its row free at its start.
    let mut laid: Vec<(String, Vec<Vec<&super::TaskRun>>)> = Vec::new();
    for ((worker, thread), runs) in &rows {
        let mut lanes: Vec<Vec<&super::TaskRun>> = Vec::new();
        for run in runs {
            match lanes.iter_mut().find(|lane| lane.last().is_none_or(|prev| prev.end <= run.start)) {
                Some(lane) => lane.push(run),
                None => lanes.push(vec![run]),
            }
        }
        let label = match thread {
            Some(t) => format!("worker {worker} · thread {t}"),
            None => format!("worker {worker} · caller"),
        };
        laid.push((label, lanes));
    }
    let lane_count: usize = laid.iter().map(|(_, lanes)| lanes.len().max(1)).sum();
    // Many lanes (spare threads, deep nesting) get thinner bars.
    let row = (ROW_MAX * 16.0 / lane_count.max(16) as f64).max(ROW_MIN);
    let legend_rows = colors.len().div_ceil(4) as f64;
    let height = TOP + row * lane_count.max(1) as f64 + 40.0 + 18.0 * legend_rows;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="{WIDTH}" height="{height}" fill="white"/>"#);
    let (unit, per_second) = unit_for(span);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="22" font-size="14">dirk: {} tasks on {} threads in {} {unit}</text>"#,
        trace.tasks().len(),
        rows.len(),
        tick(span * per_second)
    );
    let mut lane_index = 0;
    for (label, lanes) in &laid {
        let y_row = TOP + row * lane_index as f64;
        let font = if row < 14.0 { " font-size=\"8\"" } else { "" };
        let _ = writeln!(s, r##"<text x="6" y="{}" fill="#333"{font}>{label}</text>"##, y_row + row / 2.0 + 3.0);
        for (depth, lane) in lanes.iter().enumerate() {
            let y = TOP + row * (lane_index + depth) as f64;
            for run in lane {
                let (x0, x1) = (x(run.start), x(run.end));
                let w = (x1 - x0).max(0.5);
                let stroke = if run.failed { r##" stroke="#c00" stroke-width="1.5""## } else { "" };
                let _ = writeln!(
                    s,
                    r#"<rect x="{x0:.2}" y="{:.1}" width="{w:.2}" height="{:.1}" fill="{}"{stroke}><title>{} #{} ({:.1?})</title></rect>"#,
                    y + 3.0,
                    row - 6.0,
                    colors[run.name],
                    escape(run.name),
                    run.task,
                    run.end.saturating_sub(run.start)
                );
            }
        }
        lane_index += lanes.len().max(1);
        let y_end = TOP + row * lane_index as f64;
        let _ = writeln!(s, r##"<line x1="{LEFT}" y1="{y_end}" x2="{}" y2="{y_end}" stroke="#ddd"/>"##, WIDTH - RIGHT);
    }
    let axis_y = TOP + row * lane_count.max(1) as f64 + 4.0;
    let _ = writeln!(s, r##"<line x1="{LEFT}" y1="{axis_y}" x2="{}" y2="{axis_y}" stroke="#333"/>"##, WIDTH - RIGHT);
    let (unit, per_second) = unit_for(span);
    for t in ticks(span) {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{} {unit}</text>"#,
            x(std::time::Duration::from_secs_f64(t)),
            axis_y + 14.0,
            tick(t * per_second)
        );
    }
    for (k, (name, color)) in colors.iter().enumerate() {
        let (col, row) = (k % 4, k / 4);
        let lx = LEFT + col as f64 * 210.0;
        let ly = axis_y + 32.0 + 18.0 * row as f64;
        let _ = writeln!(s, r#"<rect x="{lx}" y="{}" width="12" height="12" fill="{color}"/>"#, ly - 10.0);
        let _ = writeln!(s, r#"<text x="{}" y="{ly}">{}</text>"#, lx + 16.0, escape(&short(name)));
    }
    s.push_str("</svg>\n");
    s
}

/// The unit of the time axis, one for the whole chart: the largest in
/// which the span is at least 1; and how many of it make a second.
fn unit_for(span_seconds: f64) -> (&'static str, f64) {
    match span_seconds {
        s if s >= 1.0 => ("s", 1.0),
        s if s >= 1e-3 => ("ms", 1e3),
        s if s >= 1e-6 => ("µs", 1e6),
        _ => ("ns", 1e9),
    }
}

/// Where the axis is marked, in seconds: from 0 in round steps (1, 2 or 5
/// times a power of ten) of about a fifth of the span.
fn ticks(span_seconds: f64) -> Vec<f64> {
    let rough = span_seconds / 5.0;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|&s| s >= rough).unwrap_or(10.0 * power);
    (0..).map(|k| k as f64 * step).take_while(|&t| t <= span_seconds * (1.0 + 1e-9)).collect()
}

/// A tick value: three significant digits at most, no trailing zeros.
fn tick(value: f64) -> String {
    let decimals = if value == 0.0 || value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{value:.decimals$}");
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text }
}

/// A closure's type name (`crate::main::{{closure}}`) shortened for a legend.
fn short(name: &str) -> String {
    let count = name.chars().count();
    if count > 32 { format!("…{}", name.chars().skip(count - 30).collect::<String>()) } else { name.to_owned() }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::{tick, ticks, unit_for};

    #[test]
    fn the_axis_has_one_unit_chosen_by_the_span() {
        assert_eq!(unit_for(24.04e-3), ("ms", 1e3));
        assert_eq!(unit_for(2.5), ("s", 1.0));
        assert_eq!(unit_for(0.9e-3), ("µs", 1e6));
        assert_eq!(unit_for(3e-9), ("ns", 1e9));
        let (_, per_second) = unit_for(24.04e-3);
        let marks: Vec<String> = ticks(24.04e-3).into_iter().map(|t| tick(t * per_second)).collect();
        assert_eq!(marks, ["0", "5", "10", "15", "20"]);
        let marks: Vec<String> = ticks(130e-3).into_iter().map(|t| tick(t * 1e3)).collect();
        assert_eq!(marks, ["0", "50", "100"]);
        assert_eq!(ticks(1.0).len(), 6, "0, 0.2, .., 1");
        assert_eq!(tick(250.0), "250");
        assert_eq!(tick(1.5), "1.5");
    }
}
