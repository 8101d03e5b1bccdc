//! `rate-limiter` against governor, ratelimit.

use crate::harness::Mode;
use crate::report::Report;

const KRATE: &str = "rate-limiter";

/// Adds this crate's cases to `report` (none written yet: listed as missing).
pub fn run(_mode: Mode, report: &mut Report) {
    report.missing.push((
        KRATE.to_owned(),
        "cases against governor, ratelimit are not written yet".to_owned(),
    ));
}
