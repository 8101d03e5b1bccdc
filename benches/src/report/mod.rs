//! The report `compare` writes: Markdown on stdout, every sample as JSON,
//! and a self-contained HTML page with SVG charts (no scripts, no network).
//!
//! This module holds the data one run collects ([`Report`], [`LineChart`])
//! and the helpers the renderers share; each output has its own file:
//! `markdown.rs` (stdout and the README section), `json.rs`, `html.rs` (the
//! page) and `svg.rs` (the charts on it).

mod html;
mod json;
mod markdown;
mod svg;

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

    /// One case, one chart and one missing crate, shared by the renderers'
    /// tests.
    pub(super) fn sample() -> Report {
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
}
