//! `lru-ttl-cache` against quick_cache, moka (TinyLFU and LRU), mini_moka
//! and `Mutex<lru::LruCache>` (`crate::workloads::lru_ttl_cache`):
//!
//! - ns per operation, `get` only and 90% get / 10% insert, on a full cache
//!   of 100,000 entries with Zipf(0.99) keys over 1,000,000, at 1 and 2
//!   threads;
//! - heap bytes per entry for 1,000,000 `u64 -> u64` entries (smoke: 10,000);
//! - hit ratios at five capacities on every trace (replay: get, insert on
//!   a miss) for ours (W-TinyLFU, one shard), exact LRU (one shard), quick_cache, moka and Belady's
//!   optimum: one table row per trace and capacity (ours against the best
//!   peer, LRU and OPT in the case name) and one curve chart per trace.
//!   Quick mode replays OLTP, the LIRS traces and CloudPhysics; full mode
//!   adds P2, P3, P6 and P12 (3.9M to 13.2M requests); smoke mode replays
//!   the small `cpp` trace. With [`HIT_RATIOS_ONLY`] set, only this runs;
//!   with [`SPEED_ONLY`] set, only the throughput cases run.

use crate::alloc;
use crate::harness::{measured, run_timed, Contender, Mode};
use crate::report::{throughput_series, LineChart, Report};
use crate::workloads::lru_ttl_cache::{
    belady_hits, filled, key, replay, timed, trace, trace_caps, zipf_keys, Kind, Mix, CAPACITY,
    SAMPLES, TRACES,
};

/// Set (to anything) to run only the hit-ratio section, which times
/// nothing: `SYSBLOCKS_HIT_RATIOS_ONLY=1 compare --only lru-ttl-cache`.
pub const HIT_RATIOS_ONLY: &str = "SYSBLOCKS_HIT_RATIOS_ONLY";

/// Set (to anything) to run only the throughput cases, without the
/// memory section and the trace replays:
/// `SYSBLOCKS_SPEED_ONLY=1 compare --only lru-ttl-cache`.
pub const SPEED_ONLY: &str = "SYSBLOCKS_SPEED_ONLY";

/// Set to a comma-separated list of trace names to replay only those
/// (whatever the mode): `SYSBLOCKS_HIT_TRACES=OLTP,P12`.
pub const HIT_TRACES: &str = "SYSBLOCKS_HIT_TRACES";

/// The policies replayed on the traces: ours (W-TinyLFU, one shard: the
/// table's "ours" is the first), exact LRU (one shard), and the peers.
const HIT_RATIO_KINDS: [Kind; 5] = [
    Kind::OursWTinyLfuOneShard,
    Kind::OursOneShard,
    Kind::Quick,
    Kind::MokaTinyLfu,
    Kind::MokaLru,
];

const KRATE: &str = "lru-ttl-cache";

/// Adds the throughput cases, bytes per entry and the hit-ratio charts.
pub fn run(mode: Mode, report: &mut Report) {
    if std::env::var_os(HIT_RATIOS_ONLY).is_none() {
        throughput(mode, report);
        threads_chart(report);
        if std::env::var_os(SPEED_ONLY).is_some() {
            return;
        }
        memory(mode, report);
    }
    hit_ratios(mode, report);
}

fn throughput(mode: Mode, report: &mut Report) {
    // Smoke mode only proves the code runs: a small cache, few keys.
    let (cap, samples) = match mode {
        Mode::Smoke => (1000, 1 << 12),
        _ => (CAPACITY, SAMPLES),
    };
    let keys = zipf_keys(samples);
    for mix in [Mix::GetOnly, Mix::GetInsert] {
        // One filled cache per contender, shared by the 1- and 2-thread cases.
        let caches: Vec<_> = Kind::ALL.iter().map(|&k| (k, filled(k, cap))).collect();
        for threads in [1usize, 2] {
            let keys = &keys;
            let contenders = caches
                .iter()
                .map(|(k, c)| {
                    let mut pos = 0usize;
                    let routine = move |it: u64| timed(c, keys, it, threads, mix, &mut pos);
                    Contender::new(k.name(), k.is_ours(), routine)
                })
                .collect();
            report.results.push(run_timed(
                KRATE,
                &format!(
                    "{}, {threads} thread(s), {cap} entries, Zipf(0.99) over 1M keys",
                    mix.name()
                ),
                mode,
                contenders,
            ));
        }
    }
}

/// Throughput against threads for both mixes (each case times the wall
/// clock of all its operations, so one operation per timed iteration).
fn threads_chart(report: &mut Report) {
    let mut series = Vec::new();
    for mix in [Mix::GetOnly, Mix::GetInsert] {
        let case = |t: u32| {
            report.results.iter().find(|r| {
                r.krate == KRATE
                    && r.name
                        .starts_with(&format!("{}, {t} thread(s),", mix.name()))
            })
        };
        series.extend(throughput_series(
            &format!("{}: ", mix.name()),
            &[(1, case(1), 1.0), (2, case(2), 1.0)],
        ));
    }
    report.charts.push(LineChart {
        krate: KRATE.to_owned(),
        title: "cache throughput against threads (Zipf 0.99, full cache)".to_owned(),
        x_label: "threads".to_owned(),
        y_label: "million operations/s".to_owned(),
        log_x: false,
        series,
    });
}

fn memory(mode: Mode, report: &mut Report) {
    if !alloc::installed() {
        report.missing.push((
            KRATE.to_owned(),
            "bytes per entry: the counting allocator is not installed".to_owned(),
        ));
        return;
    }
    let n: u64 = match mode {
        Mode::Smoke => 10_000,
        _ => 1_000_000,
    };
    let mut series = Vec::new();
    for kind in Kind::ALL {
        let (c, bytes) = alloc::heap_of(|| {
            let c = kind.make(n);
            for r in 0..n as usize {
                c.insert(key(r));
            }
            c.settle();
            c
        });
        drop(c);
        series.push((kind.name(), kind.is_ours(), vec![bytes as f64 / n as f64]));
    }
    report.results.push(measured(
        KRATE,
        &format!("heap bytes per entry, {n} u64 -> u64 entries"),
        "bytes/entry",
        true,
        series,
    ));
}

fn hit_ratios(mode: Mode, report: &mut Report) {
    let traces: Vec<&str> = match mode {
        Mode::Smoke => vec!["cpp"],
        // Everything but the large ARC traces (3.9M to 13.2M requests).
        Mode::Quick => TRACES
            .into_iter()
            .filter(|t| !matches!(*t, "P2" | "P3" | "P6" | "P12"))
            .collect(),
        Mode::Full => TRACES.to_vec(),
    };
    let only = std::env::var(HIT_TRACES).ok();
    let traces: Vec<&str> = match &only {
        Some(list) => TRACES
            .into_iter()
            .filter(|t| list.split(',').any(|w| w.trim() == *t))
            .collect(),
        None => traces,
    };
    for name in traces {
        let Some(keys) = trace(name) else {
            report.missing.push((
                KRATE.to_owned(),
                format!("hit ratios on {name}: skipped: ../shared/data not found"),
            ));
            continue;
        };
        let caps = trace_caps(name, &keys);
        // (kind, hit ratio in percent at each capacity)
        let curves: Vec<(Kind, Vec<f64>)> = HIT_RATIO_KINDS
            .iter()
            .map(|&kind| {
                let pts = caps
                    .iter()
                    .map(|&cap| 100.0 * replay(&kind.make(cap), &keys))
                    .collect();
                (kind, pts)
            })
            .collect();
        let opt: Vec<f64> = caps
            .iter()
            .map(|&cap| 100.0 * belady_hits(&keys, cap as usize) as f64 / keys.len() as f64)
            .collect();
        let lru = |j: usize| {
            curves
                .iter()
                .find(|(k, _)| *k == Kind::OursOneShard)
                .map_or(f64::NAN, |(_, p)| p[j])
        };
        for (j, &cap) in caps.iter().enumerate() {
            // No cache held to `cap` entries can beat OPT: a curve above it
            // means the replay let that cache hold more.
            for (k, p) in &curves {
                if p[j] > opt[j] + 1e-9 {
                    eprintln!(
                        "lru-ttl-cache: {} above OPT on {name} at {cap} entries \
                         ({:.2}% > {:.2}%): not capacity-bounded",
                        k.name(),
                        p[j],
                        opt[j]
                    );
                }
            }
            let series = curves
                .iter()
                .filter(|(k, _)| *k != Kind::OursOneShard && *k != Kind::MokaLru)
                .map(|(k, p)| (k.name(), k.is_ours(), vec![p[j]]))
                .collect();
            report.results.push(measured(
                KRATE,
                &format!(
                    "hit ratio, {name}, {cap} entries (exact LRU {:.2}%, OPT {:.2}%)",
                    lru(j),
                    opt[j]
                ),
                "% hits",
                false,
                series,
            ));
        }
        let mut series: Vec<(String, Vec<(f64, f64)>)> = curves
            .iter()
            .map(|(k, p)| {
                let pts = caps.iter().zip(p).map(|(&c, &y)| (c as f64, y)).collect();
                (k.name().to_owned(), pts)
            })
            .collect();
        let opt = caps
            .iter()
            .zip(&opt)
            .map(|(&c, &y)| (c as f64, y))
            .collect();
        series.push(("Belady OPT".to_owned(), opt));
        report.charts.push(LineChart {
            krate: KRATE.to_owned(),
            title: format!(
                "hit ratio on {name} ({} requests; get, insert on miss)",
                keys.len()
            ),
            x_label: "capacity (entries)".to_owned(),
            y_label: "hit ratio (%)".to_owned(),
            log_x: true,
            series,
        });
    }
}
