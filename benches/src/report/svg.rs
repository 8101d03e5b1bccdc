//! SVG: the bar chart of one case's medians and the line charts, drawn
//! by hand (no scripts, no fonts beyond the browser's own).

use std::fmt::Write as _;

use super::{esc, fmt_num, LineChart};
use crate::harness::CaseResult;

const PALETTE: [&str; 8] = [
    "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf",
];

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

pub(super) fn bar_chart(r: &CaseResult) -> String {
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

pub(super) fn line_chart(c: &LineChart) -> String {
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
