//! The share of keys still found right after adding a fifth node to four,
//! on a Zipf workload: deterministic, no servers.

use sysblocks_dist_cache::resize::{kept_share, zipf_workload};
use sysblocks_dist_cache::Placement;

const FOUR: [&str; 4] = [
    "redis://10.0.0.1:6379/",
    "redis://10.0.0.2:6379/",
    "redis://10.0.0.3:6379/",
    "redis://10.0.0.4:6379/",
];
const FIVE: [&str; 5] = [
    "redis://10.0.0.1:6379/",
    "redis://10.0.0.2:6379/",
    "redis://10.0.0.3:6379/",
    "redis://10.0.0.4:6379/",
    "redis://10.0.0.5:6379/",
];

#[test]
fn consistent_placements_keep_about_four_fifths_and_modulo_loses_most() {
    let workload = zipf_workload(10_000, 1.0);
    let uniform = zipf_workload(10_000, 0.0);
    let cases = [
        ("ring", Placement::default(), 0.75, 1.0),
        ("jump", Placement::Jump, 0.75, 1.0),
        ("maglev", Placement::Maglev, 0.70, 1.0),
        ("rendezvous", Placement::Rendezvous, 0.75, 1.0),
        ("modulo", Placement::Modulo, 0.0, 0.30),
    ];
    for (name, p, lo, hi) in cases {
        let zipf = kept_share(p, &FOUR, &FIVE, &workload).unwrap();
        let flat = kept_share(p, &FOUR, &FIVE, &uniform).unwrap();
        eprintln!("{name:>10}: still found {zipf:.4} (Zipf s=1), {flat:.4} (uniform)");
        assert!((lo..=hi).contains(&zipf), "{name}: {zipf}");
        assert!((lo..=hi).contains(&flat), "{name}: {flat}");
    }
}

#[test]
fn an_unchanged_node_set_keeps_everything_and_empty_sets_are_refused() {
    let w = zipf_workload(1_000, 1.0);
    for p in [Placement::default(), Placement::Jump, Placement::Maglev] {
        let kept = kept_share(p, &FOUR, &FOUR, &w).unwrap();
        assert!((kept - 1.0).abs() < 1e-9);
    }
    assert!(kept_share(Placement::default(), &[], &FOUR, &w).is_err());
}
