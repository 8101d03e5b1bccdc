//! `lb` against tower p2c.

use crate::harness::Mode;
use crate::report::Report;

const KRATE: &str = "lb";

/// Adds this crate's cases to `report` (none written yet: listed as missing).
pub fn run(_mode: Mode, report: &mut Report) {
    report.missing.push((
        KRATE.to_owned(),
        "cases against tower p2c are not written yet".to_owned(),
    ));
}
