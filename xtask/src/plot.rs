//! SVG line charts for BENCHMARKS.md, written by hand (no dependencies):
//! one chart per plot name, one line per system, a logarithmic x axis.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One line of a chart: its points, sorted by x.
pub(crate) type Series = Vec<(f64, f64)>;

/// Axis labels and the reference line of a chart.
pub(crate) struct Chart<'a> {
    pub(crate) title: &'a str,
    pub(crate) x_label: &'a str,
    pub(crate) y_label: &'a str,
    /// A dashed horizontal line (e.g. 50% efficiency), if any.
    pub(crate) reference: Option<(f64, &'a str)>,
}

const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 55.0;
const COLORS: [&str; 8] = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

pub(crate) fn svg(chart: &Chart<'_>, series: &BTreeMap<String, Series>) -> String {
    let points = series.values().flatten().filter(|(x, y)| *x > 0.0 && y.is_finite());
    let (mut x_min, mut x_max, mut y_max) = (f64::MAX, f64::MIN, 0.0f64);
    for &(x, y) in points {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_max = y_max.max(y);
    }
    if x_min > x_max {
        (x_min, x_max) = (1.0, 10.0);
    }
    let (lx0, lx1) = (x_min.log10().floor(), x_max.log10().ceil().max(x_min.log10().floor() + 1.0));
    let raw_top = (y_max * 1.05).max(chart.reference.map_or(0.0, |(r, _)| r * 1.2)).max(1e-9);
    let y_step = nice_step(raw_top / 5.0);
    let y_top = (raw_top / y_step).ceil() * y_step;
    let px = |x: f64| LEFT + (x.log10() - lx0) / (lx1 - lx0) * (W - LEFT - RIGHT);
    let py = |y: f64| H - BOTTOM - y / y_top * (H - TOP - BOTTOM);

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
        (W - RIGHT + LEFT) / 2.0,
        esc(chart.title)
    );
    // Axes and grid.
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, H - BOTTOM, TOP);
    let _ = writeln!(s, r##"<path d="M{x0} {y1} V{y0} H{x1}" stroke="#333" fill="none"/>"##);
    let mut decade = lx0;
    while decade <= lx1 {
        let x = px(10f64.powf(decade));
        let _ = writeln!(s, r##"<line x1="{x}" y1="{y0}" x2="{x}" y2="{y1}" stroke="#ddd"/>"##);
        let _ =
            writeln!(s, r#"<text x="{x}" y="{}" text-anchor="middle">{}</text>"#, y0 + 16.0, tick(10f64.powf(decade)));
        decade += 1.0;
    }
    let ticks = (y_top / y_step).round() as usize;
    for k in 0..=ticks {
        let v = y_step * k as f64;
        let y = py(v);
        let _ = writeln!(s, r##"<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="#eee"/>"##);
        let _ = writeln!(s, r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#, x0 - 6.0, y + 4.0, tick(v));
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        (x0 + x1) / 2.0,
        H - 14.0,
        esc(chart.x_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">{}</text>"#,
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0,
        esc(chart.y_label)
    );
    if let Some((r, label)) = chart.reference {
        let y = py(r);
        let _ = writeln!(s, r##"<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="#555" stroke-dasharray="5 4"/>"##);
        let _ = writeln!(s, r##"<text x="{}" y="{}" fill="#555">{}</text>"##, x1 - 4.0, y - 5.0, esc(label));
    }
    // Lines and legend.
    for (k, (name, points)) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let mut sorted: Vec<(f64, f64)> = points.iter().copied().filter(|(x, y)| *x > 0.0 && y.is_finite()).collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let path: Vec<String> = sorted.iter().map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y))).collect();
        if !path.is_empty() {
            let _ =
                writeln!(s, r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#, path.join(" "));
        }
        for &(x, y) in &sorted {
            let _ = writeln!(s, r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{color}"/>"#, px(x), py(y));
        }
        let ly = TOP + 10.0 + 20.0 * k as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="3"/>"#,
            x1 + 15.0,
            x1 + 35.0
        );
        let _ = writeln!(s, r#"<text x="{}" y="{}">{}</text>"#, x1 + 40.0, ly + 4.0, esc(name));
    }
    s.push_str("</svg>\n");
    s
}

/// A round step (1, 2 or 5 times a power of ten) near `raw`.
fn nice_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.log10().floor());
    let m = raw / magnitude;
    let nice = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

fn tick(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if !(0.01..1000.0).contains(&v) {
        format!("{v:.0e}")
    } else if v >= 1.0 && v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let text = format!("{v:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
