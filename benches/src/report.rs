//! The report `compare` writes: Markdown on stdout, every sample as JSON,
//! and a self-contained HTML page with SVG charts (no scripts, no network).

use std::fmt::Write as _;

use crate::harness::CaseResult;

/// A line chart: hit-ratio curves, throughput against threads, latency CDFs.
#[derive(Debug, Clone)]
pub struct LineChart {
    /// Crate the chart belongs to.
    pub krate: String,
    /// Title above the chart.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// Whether the x axis is logarithmic.
    pub log_x: bool,
    /// Named series of (x, y) points.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

/// Everything one run of `compare` measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Machine description (cores, CPU model).
    pub machine: String,
    /// Mode name.
    pub mode: String,
    /// UTC date and time of the run.
    pub date: String,
    /// Timed and measured cases.
    pub results: Vec<CaseResult>,
    /// Curves.
    pub charts: Vec<LineChart>,
    /// Crates or cases not measured, with the reason.
    pub missing: Vec<(String, String)>,
}

impl Report {
    /// Markdown tables, one per crate, plus the missing list.
    #[must_use]
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# sysblocks comparison\n");
        let _ = writeln!(out, "{} mode, {}, {}\n", self.mode, self.machine, self.date);
        for krate in self.crates() {
            let _ = writeln!(out, "## {krate}\n");
            self.table(&mut out, Some(&krate));
            let _ = writeln!(out);
        }
        if !self.missing.is_empty() {
            let _ = writeln!(out, "## Missing\n");
            for (what, why) in &self.missing {
                let _ = writeln!(out, "- {what}: {why}");
            }
        }
        out
    }

    /// The results section of the root README: how it was made, then one
    /// table of every case and the missing list.
    #[must_use]
    pub fn readme_section(&self, command: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Measured on {}, {}, in {} mode, by `{command}`, which rewrites this \
             section. *ratio* is ours against the best peer (above 1: ours is faster, \
             leaner or higher, as the unit says); *spread* is the lowest and highest \
             per-repetition ratio within this run (ours and the peer run \
             interleaved); a whole rerun can move further, see the note under the table.\n",
            self.machine, self.date, self.mode
        );
        self.table(&mut out, None);
        if !self.missing.is_empty() {
            let _ = writeln!(out, "\nNot measured in this run:\n");
            for (what, why) in &self.missing {
                let _ = writeln!(out, "- {what}: {why}");
            }
        }
        out
    }

    /// One Markdown table of the cases of `krate` (every crate if `None`).
    fn table(&self, out: &mut String, krate: Option<&str>) {
        let crate_col = krate.is_none();
        let _ = writeln!(
            out,
            "| {}case | unit | ours | best peer | peer | ratio | spread |",
            if crate_col { "crate | " } else { "" }
        );
        let _ = writeln!(
            out,
            "|{}---|---|---|---|---|---|---|",
            if crate_col { "---|" } else { "" }
        );
        for r in self
            .results
            .iter()
            .filter(|r| krate.is_none_or(|k| r.krate == k))
        {
            let ours = r.ours().map_or("-".to_owned(), |s| fmt_num(s.median()));
            let (peer_name, peer) = r.best_peer().map_or(("-".to_owned(), "-".to_owned()), |s| {
                (s.name.clone(), fmt_num(s.median()))
            });
            let adv = r.advantage().map_or("-".to_owned(), |a| format!("{a:.2}x"));
            let spread = r
                .advantage_spread()
                .map_or("-".to_owned(), |(lo, hi)| format!("{lo:.2}-{hi:.2}x"));
            let lead = if crate_col {
                format!("| {} ", r.krate)
            } else {
                String::new()
            };
            let better = if r.lower_is_better {
                ", lower is better"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "{lead}| {} | {}{better} | {ours} | {peer_name} | {peer} | {adv} | {spread} |",
                r.name, r.unit,
            );
        }
    }

    /// Every case and every repetition, as JSON.
    #[must_use]
    pub fn json(&self) -> String {
        let mut out = String::new();
        out.push('{');
        let _ = write!(
            out,
            "\"machine\":{},\"mode\":{},\"date\":{},\"results\":[",
            js(&self.machine),
            js(&self.mode),
            js(&self.date)
        );
        for (i, r) in self.results.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"crate\":{},\"case\":{},\"unit\":{},\"lower_is_better\":{},\"advantage\":{},\"series\":[",
                js(&r.krate),
                js(&r.name),
                js(&r.unit),
                r.lower_is_better,
                r.advantage().map_or("null".to_owned(), |a| format!("{a}"))
            );
            for (j, s) in r.series.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                let samples: Vec<String> = s.samples.iter().map(|v| num(*v)).collect();
                let _ = write!(
                    out,
                    "{{\"name\":{},\"ours\":{},\"median\":{},\"samples\":[{}]}}",
                    js(&s.name),
                    s.ours,
                    num(s.median()),
                    samples.join(",")
                );
            }
            out.push_str("]}");
        }
        out.push_str("],\"charts\":[");
        for (i, c) in self.charts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"crate\":{},\"title\":{},\"series\":[",
                js(&c.krate),
                js(&c.title)
            );
            for (j, (name, pts)) in c.series.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                let pts: Vec<String> = pts
                    .iter()
                    .map(|(x, y)| format!("[{},{}]", num(*x), num(*y)))
                    .collect();
                let _ = write!(
                    out,
                    "{{\"name\":{},\"points\":[{}]}}",
                    js(name),
                    pts.join(",")
                );
            }
            out.push_str("]}");
        }
        out.push_str("],\"missing\":[");
        for (i, (what, why)) in self.missing.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{{\"what\":{},\"why\":{}}}", js(what), js(why));
        }
        out.push_str("]}\n");
        out
    }

    /// A self-contained HTML page: per crate, a bar chart of medians for
    /// every case (ours highlighted) and the line charts.
    #[must_use]
    pub fn html(&self) -> String {
        let mut out = String::from(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>sysblocks comparison</title>\
             <style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}\
             .charts{display:flex;flex-wrap:wrap;gap:12px}svg{background:#fafafa;border:1px solid #ddd}\
             table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}\
             td.n{text-align:right}.win{color:#1a7f37;font-weight:bold}.loss{color:#c62828;font-weight:bold}</style></head><body>",
        );
        let _ = write!(
            out,
            "<h1>sysblocks comparison</h1><p>{} mode &middot; {} &middot; {}</p>",
            esc(&self.mode),
            esc(&self.machine),
            esc(&self.date)
        );
        for krate in self.crates() {
            let _ = write!(out, "<h2>{}</h2>", esc(&krate));
            html_table(&mut out, self.results.iter().filter(|r| r.krate == krate));
            out.push_str("<div class=\"charts\">");
            for c in self.charts.iter().filter(|c| c.krate == krate) {
                out.push_str(&line_chart(c));
            }
            for r in self.results.iter().filter(|r| r.krate == krate) {
                out.push_str(&bar_chart(r));
            }
            out.push_str("</div>");
        }
        if !self.missing.is_empty() {
            out.push_str("<h2>Missing</h2><ul>");
            for (what, why) in &self.missing {
                let _ = write!(out, "<li>{}: {}</li>", esc(what), esc(why));
            }
            out.push_str("</ul>");
        }
        out.push_str("</body></html>\n");
        out
    }

    /// The case of `krate` named `name`, if it ran.
    #[must_use]
    pub fn case(&self, krate: &str, name: &str) -> Option<&CaseResult> {
        self.results
            .iter()
            .find(|r| r.krate == krate && r.name == name)
    }

    fn crates(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for k in self
            .results
            .iter()
            .map(|r| &r.krate)
            .chain(self.charts.iter().map(|c| &c.krate))
        {
            if !v.contains(k) {
                v.push(k.clone());
            }
        }
        v
    }
}

/// Throughput in million operations per second against threads, from timed
/// cases (median ns per timed iteration): one series per contender, named
/// `prefix` followed by the contender's name. Each point is `(threads, case,
/// ops)`, where `ops` is the number of operations one timed iteration does
/// (1 when a case times each operation on the wall clock, `threads` when an
/// iteration is one operation on every thread). Cases that did not run are
/// left out.
#[must_use]
pub fn throughput_series(
    prefix: &str,
    points: &[(u32, Option<&CaseResult>, f64)],
) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for &(threads, case, ops) in points {
        for s in case.into_iter().flat_map(|c| &c.series) {
            let name = format!("{prefix}{}", s.name);
            let y = ops * 1e3 / s.median().max(f64::MIN_POSITIVE);
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, pts)) => pts.push((f64::from(threads), y)),
                None => out.push((name, vec![(f64::from(threads), y)])),
            }
        }
    }
    out
}

const PALETTE: [&str; 8] = [
    "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf",
];

fn html_table<'a>(out: &mut String, results: impl Iterator<Item = &'a CaseResult>) {
    out.push_str(
        "<table><tr><th>case</th><th>unit</th><th>ours</th><th>best peer</th>\
         <th>peer</th><th>ratio</th><th>spread</th></tr>",
    );
    for r in results {
        let ours = r.ours().map_or("-".to_owned(), |s| fmt_num(s.median()));
        let (peer_name, peer) = r.best_peer().map_or(("-".to_owned(), "-".to_owned()), |s| {
            (s.name.clone(), fmt_num(s.median()))
        });
        let (class, adv) = r.advantage().map_or(("", "-".to_owned()), |a| {
            (if a >= 1.0 { "win" } else { "loss" }, format!("{a:.2}x"))
        });
        let spread = r
            .advantage_spread()
            .map_or("-".to_owned(), |(lo, hi)| format!("{lo:.2}-{hi:.2}x"));
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}{}</td><td class=\"n\">{ours}</td><td>{}</td>\
             <td class=\"n\">{peer}</td><td class=\"n {class}\">{adv}</td>\
             <td class=\"n\">{spread}</td></tr>",
            esc(&r.name),
            esc(&r.unit),
            if r.lower_is_better {
                ", lower is better"
            } else {
                ""
            },
            esc(&peer_name),
        );
    }
    out.push_str("</table>");
}

/// Splits a title into lines of at most `width` characters at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

fn title_lines(s: &mut String, title: &str, width: usize) -> f64 {
    let lines = wrap(title, width);
    for (i, line) in lines.iter().enumerate() {
        let _ = write!(
            s,
            "<text x=\"6\" y=\"{}\" font-size=\"12\" font-weight=\"bold\">{}</text>",
            16 + 15 * i,
            esc(line)
        );
    }
    15.0 * lines.len() as f64
}

fn bar_chart(r: &CaseResult) -> String {
    let (w, row, left) = (530.0, 22.0, 170.0);
    let mut head = String::new();
    let title = format!(
        "{} ({}{})",
        r.name,
        r.unit,
        if r.lower_is_better {
            ", lower is better"
        } else {
            ", higher is better"
        }
    );
    let top = title_lines(&mut head, &title, 78) + 8.0;
    let h = top + 10.0 + row * r.series.len() as f64;
    let max = r
        .series
        .iter()
        .map(|s| s.median())
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\">{head}"
    );
    for (i, series) in r.series.iter().enumerate() {
        let y = top + row * i as f64;
        let bw = (w - left - 70.0) * series.median() / max;
        let color = if series.ours { PALETTE[0] } else { PALETTE[1] };
        let _ = write!(
            s,
            "<text x=\"6\" y=\"{}\" font-size=\"11\">{}</text>\
             <rect x=\"{left}\" y=\"{y}\" width=\"{bw:.1}\" height=\"{}\" fill=\"{color}\"/>\
             <text x=\"{:.1}\" y=\"{}\" font-size=\"11\">{}</text>",
            y + 13.0,
            esc(&series.name),
            row - 6.0,
            left + bw + 4.0,
            y + 13.0,
            fmt_num(series.median())
        );
    }
    s.push_str("</svg>");
    s
}

/// Tick positions for an axis from `lo` to `hi` (in axis units: log10 of
/// the value for a log axis), about five of them.
fn ticks(lo: f64, hi: f64, log: bool) -> Vec<f64> {
    if log {
        let (a, b) = (lo.floor() as i32, hi.ceil() as i32);
        return (a..=b)
            .map(f64::from)
            .filter(|t| *t >= lo - 1e-9 && *t <= hi + 1e-9)
            .collect();
    }
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|st| *st >= raw)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 && out.len() < 12 {
        out.push(t);
        t += step;
    }
    out
}

fn line_chart(c: &LineChart) -> String {
    let (w, l, r) = (530.0, 64.0, 16.0);
    let mut head = String::new();
    let t = title_lines(&mut head, &c.title, 78) + 14.0;
    let (plot_h, b) = (240.0, 40.0);
    let legend_rows = c.series.len().div_ceil(2);
    let h = t + plot_h + b + 16.0 * legend_rows as f64 + 6.0;
    // A y axis spanning more than two decades of positive values is drawn
    // on a log scale, so that small series stay visible next to large ones.
    let ys = || c.series.iter().flat_map(|(_, p)| p.iter().map(|&(_, y)| y));
    let (ymin, ymax) = ys().fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
    let log_y = ymin > 0.0 && ymax / ymin > 100.0;
    let tx = |x: f64| {
        if c.log_x {
            x.max(f64::MIN_POSITIVE).log10()
        } else {
            x
        }
    };
    let ty = |y: f64| {
        if log_y {
            y.max(f64::MIN_POSITIVE).log10()
        } else {
            y
        }
    };
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in c.series.iter().flat_map(|(_, p)| p.iter()) {
        x0 = x0.min(tx(x));
        x1 = x1.max(tx(x));
        y0 = y0.min(ty(y));
        y1 = y1.max(ty(y));
    }
    if !log_y {
        y0 = y0.min(0.0);
    }
    if x0 >= x1 {
        x1 = x0 + 1.0;
    }
    if y0 >= y1 {
        y1 = y0 + 1.0;
    }
    let bottom = t + plot_h;
    let px = |x: f64| l + (tx(x) - x0) / (x1 - x0) * (w - l - r);
    let py = |y: f64| bottom - (ty(y) - y0) / (y1 - y0) * plot_h;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\">{head}\
         <line x1=\"{l}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\" stroke=\"#333\"/>\
         <line x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{bottom}\" stroke=\"#333\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}{}</text>\
         <text x=\"12\" y=\"{}\" font-size=\"11\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\">{}{}</text>",
        w - r,
        (l + w - r) / 2.0,
        bottom + 30.0,
        esc(&c.x_label),
        if c.log_x { " (log)" } else { "" },
        t + plot_h / 2.0,
        t + plot_h / 2.0,
        esc(&c.y_label),
        if log_y { " (log)" } else { "" },
    );
    for tick in ticks(x0, x1, c.log_x) {
        let x = l + (tick - x0) / (x1 - x0) * (w - l - r);
        let v = if c.log_x { 10f64.powf(tick) } else { tick };
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{t}\" x2=\"{x:.1}\" y2=\"{bottom}\" stroke=\"#e4e4e4\"/>\
             <text x=\"{x:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
            bottom + 13.0,
            fmt_tick(v)
        );
    }
    for tick in ticks(y0, y1, log_y) {
        let y = bottom - (tick - y0) / (y1 - y0) * plot_h;
        let v = if log_y { 10f64.powf(tick) } else { tick };
        let _ = write!(
            s,
            "<line x1=\"{l}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#e4e4e4\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
            w - r,
            l - 4.0,
            y + 3.0,
            fmt_tick(v)
        );
    }
    for (i, (name, points)) in c.series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let dash = if i >= PALETTE.len() {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        };
        let path: Vec<String> = points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let (lx, ly) = (
            l + (w - l) / 2.0 * (i % 2) as f64,
            bottom + 44.0 + 16.0 * (i / 2) as f64,
        );
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
            path.join(" ")
        );
        for &(x, y) in points.iter().filter(|_| points.len() <= 12) {
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\"/>",
                px(x),
                py(y)
            );
        }
        let _ = write!(
            s,
            "<rect x=\"{lx}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{color}\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"11\">{}</text>",
            ly - 9.0,
            lx + 14.0,
            ly,
            esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

/// A tick label: short, without trailing zeros.
fn fmt_tick(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", fmt_tick(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", fmt_tick(v / 1e3))
    } else if a == 0.0 || a >= 1.0 {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// A number with a sensible number of digits.
#[must_use]
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".to_owned()
    }
}

fn js(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::Series;

    fn sample() -> Report {
        Report {
            machine: "2 cores".into(),
            mode: "smoke".into(),
            date: "today".into(),
            results: vec![CaseResult {
                krate: "lb".into(),
                name: "pick \"rr\" <100>".into(),
                unit: "ns/op".into(),
                lower_is_better: true,
                series: vec![
                    Series {
                        name: "ours".into(),
                        ours: true,
                        samples: vec![5.0, 7.0, 6.0],
                    },
                    Series {
                        name: "tower".into(),
                        ours: false,
                        samples: vec![12.0],
                    },
                ],
            }],
            charts: vec![LineChart {
                krate: "lb".into(),
                title: "cdf".into(),
                x_label: "ms".into(),
                y_label: "share".into(),
                log_x: true,
                series: vec![("ours".into(), vec![(1.0, 0.5), (10.0, 1.0)])],
            }],
            missing: vec![("mapreduce".into(), "not written".into())],
        }
    }

    #[test]
    fn markdown_has_ratio_and_missing() {
        let md = sample().markdown();
        assert!(
            md.contains("| ns/op, lower is better | 6.000 | tower | 12.0 | 2.00x | - |"),
            "{md}"
        );
        assert!(md.contains("- mapreduce: not written"));
    }

    #[test]
    fn throughput_series_converts_ns_per_iteration() {
        let r = sample();
        let c = r.case("lb", "pick \"rr\" <100>");
        assert!(c.is_some());
        assert!(r.case("lb", "absent").is_none());
        let s = throughput_series("rr: ", &[(1, c, 1.0), (2, c, 2.0), (4, None, 1.0)]);
        // ours: median 6 ns -> 166.7 M/s at 1 op, 333.3 at 2 ops; tower: 12 ns.
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].0, "rr: ours");
        assert_eq!(s[0].1.len(), 2);
        assert!((s[0].1[0].1 - 1e3 / 6.0).abs() < 1e-9);
        assert!((s[0].1[1].1 - 2e3 / 6.0).abs() < 1e-9);
        assert!((s[1].1[0].1 - 1e3 / 12.0).abs() < 1e-9);
    }

    #[test]
    fn readme_section_names_command_and_crate() {
        let md = sample().readme_section("compare --write-readme");
        assert!(md.contains("by `compare --write-readme`"), "{md}");
        assert!(md.contains("| crate | case |"), "{md}");
        assert!(md.contains("| lb | pick "), "{md}");
        assert!(md.contains("- mapreduce: not written"), "{md}");
    }

    #[test]
    fn json_escapes_and_keeps_every_sample() {
        let j = sample().json();
        assert!(j.contains("\"case\":\"pick \\\"rr\\\" <100>\""), "{j}");
        assert!(j.contains("\"samples\":[5,7,6]"), "{j}");
    }

    #[test]
    fn html_is_escaped_and_has_svgs() {
        let h = sample().html();
        assert_eq!(h.matches("<svg").count(), 2);
        assert!(h.contains("pick &quot;rr&quot; &lt;100&gt;"));
    }
}
