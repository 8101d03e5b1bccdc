//! `lru-ttl-cache` against quick_cache, moka, mini_moka, Mutex<lru::LruCache>.

use crate::harness::Mode;
use crate::report::Report;

const KRATE: &str = "lru-ttl-cache";

/// Adds this crate's cases to `report` (none written yet: listed as missing).
pub fn run(_mode: Mode, report: &mut Report) {
    report.missing.push((
        KRATE.to_owned(),
        "cases against quick_cache, moka, mini_moka, Mutex<lru::LruCache> are not written yet"
            .to_owned(),
    ));
}
