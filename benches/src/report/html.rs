//! HTML: the self-contained page, with a table and the charts of `svg.rs`
//! for every crate.

use std::fmt::Write as _;

use super::svg::{bar_chart, line_chart};
use super::{esc, fmt_num, Report};
use crate::harness::CaseResult;

impl Report {
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
}

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

#[cfg(test)]
mod tests {
    use super::super::tests::sample;

    #[test]
    fn html_is_escaped_and_has_svgs() {
        let h = sample().html();
        assert_eq!(h.matches("<svg").count(), 2);
        assert!(h.contains("pick &quot;rr&quot; &lt;100&gt;"));
    }
}
