//! Markdown: the per-crate tables `compare` prints, and the results section
//! `compare --write-readme` writes into the root README.

use std::fmt::Write as _;

use super::{fmt_num, Report};

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
             interleaved). A whole rerun can move further than the spread, most of \
             all for the cases with two threads on two cores, which measure the \
             scheduler as much as the code.\n",
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
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;

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
    fn readme_section_names_command_and_crate() {
        let md = sample().readme_section("compare --write-readme");
        assert!(md.contains("by `compare --write-readme`"), "{md}");
        assert!(md.contains("| crate | case |"), "{md}");
        assert!(md.contains("| lb | pick "), "{md}");
        assert!(md.contains("- mapreduce: not written"), "{md}");
    }
}
