//! JSON: every case and every repetition, for tools that read the run.

use std::fmt::Write as _;

use super::Report;

impl Report {
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

#[cfg(test)]
mod tests {
    use super::super::tests::sample;

    #[test]
    fn json_escapes_and_keeps_every_sample() {
        let j = sample().json();
        assert!(j.contains("\"case\":\"pick \\\"rr\\\" <100>\""), "{j}");
        assert!(j.contains("\"samples\":[5,7,6]"), "{j}");
    }
}
