//! `lru-ttl-cache` against quick_cache, moka (TinyLFU and LRU), mini_moka
//! and `Mutex<lru::LruCache>` (`crate::workloads::lru_ttl_cache`):
//!
//! - ns per operation, `get` only and 90% get / 10% insert, on a full cache
//!   of 100,000 entries with Zipf(0.99) keys over 1,000,000, at 1 and 2
//!   threads;
//! - heap bytes per entry for 1,000,000 `u64 -> u64` entries (smoke: 10,000);
//! - hit ratios at five capacities on every trace (replay: get, insert on
//!   a miss) for ours (W-TinyLFU, one shard), exact LRU (one shard),
//!   quick_cache, moka and Belady's optimum: one table row per trace and
//!   capacity (ours against the best peer, LRU and OPT in the case name)
//!   and one curve chart per trace. Quick mode replays OLTP, the LIRS traces
//!   and CloudPhysics; full mode adds P2, P3, P6 and P12 (3.9M to 13.2M
//!   requests); smoke mode replays the small `cpp` trace. With
//!   [`HIT_RATIOS_ONLY`] set, only this runs; with [`SPEED_ONLY`] set, only
//!   the throughput cases run.
//!
//! The hasher's keys move a hit ratio by many points on the small traces
//! (they decide which keys share a sketch counter or a shard), so every
//! contender whose hits depend on them is replayed with [`HIT_SEEDS`] fixed
//! seeds (exact LRU on one shard, which they cannot move, once). The table
//! and the curves show the mean over the seeds; the case name gives the
//! lowest and highest hit ratio over the seeds of ours and of the best
//! peer (quick_cache or moka's TinyLFU, whichever has the higher mean) and
//! the cell's verdict: won or lost when the means differ by more than the
//! noise, the larger of [`TIE_POINTS`] and twice the standard error of the
//! difference (a Welch-style test at about 95%), else tied. The counts and
//! the lost cells go to stderr at the end of the section. The replays run
//! on every core.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

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

/// Set to the number of hasher seeds each hash-dependent contender is
/// replayed with (default [`DEFAULT_HIT_SEEDS`], at least 1):
/// `SYSBLOCKS_HIT_SEEDS=10`. Seed `s` keys ahash with `(s, 1, 2, 3)`.
pub const HIT_SEEDS: &str = "SYSBLOCKS_HIT_SEEDS";

/// Seeds per hash-dependent contender when [`HIT_SEEDS`] is unset.
pub const DEFAULT_HIT_SEEDS: u64 = 5;

/// A hit-ratio difference (in percentage points) that is a tie however
/// little the seeds scatter.
pub const TIE_POINTS: f64 = 0.5;

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

/// The seeds of the hit-ratio replays: 1 to [`HIT_SEEDS`] (default
/// [`DEFAULT_HIT_SEEDS`]).
fn hit_seeds() -> Vec<u64> {
    let n = match std::env::var(HIT_SEEDS) {
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n) if n >= 1 => n,
            _ => {
                eprintln!(
                    "lru-ttl-cache: {HIT_SEEDS}={v:?} is not a positive count; \
                     using {DEFAULT_HIT_SEEDS}"
                );
                DEFAULT_HIT_SEEDS
            }
        },
        Err(_) => DEFAULT_HIT_SEEDS,
    };
    (1..=n).collect()
}

/// One unit of the hit-ratio work on a trace.
enum Job {
    /// Replay `HIT_RATIO_KINDS[kind]` with hasher seed `seed` at capacity
    /// number `cap`.
    Replay { kind: usize, seed: u64, cap: usize },
    /// Belady's optimum at capacity number `cap`.
    Opt { cap: usize },
}

/// `f` of every job, in job order, computed on as many threads as there
/// are cores (each takes the next job when it finishes one, so a slow job
/// does not hold up the others).
fn run_jobs<J: Sync, R: Send>(jobs: &[J], f: impl Fn(&J) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let mut out: Vec<Option<R>> = jobs.iter().map(|_| None).collect();
    std::thread::scope(|s| {
        let (next, f) = (&next, &f);
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(j) = jobs.get(i) else { break done };
                        done.push((i, f(j)));
                    }
                })
            })
            .collect();
        for h in handles {
            for (i, r) in h.join().expect("hit-ratio worker panicked") {
                out[i] = Some(r);
            }
        }
    });
    out.into_iter().map(|r| r.expect("every job ran")).collect()
}

/// Mean, sample standard deviation (0 for fewer than two values), lowest
/// and highest of `v` (not empty).
fn summary(v: &[f64]) -> (f64, f64, f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = if v.len() < 2 {
        0.0
    } else {
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    };
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, sd, lo, hi)
}

/// How a hit-ratio cell came out for ours against the best peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Won,
    Lost,
    Tied,
}

impl Verdict {
    fn name(self) -> &'static str {
        match self {
            Verdict::Won => "won",
            Verdict::Lost => "lost",
            Verdict::Tied => "tied",
        }
    }
}

/// One cell judged: ours' mean minus the peer's (points), the noise it was
/// judged against, and the verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Judgement {
    margin: f64,
    noise: f64,
    verdict: Verdict,
}

/// Judges ours' hit ratios (percent, one per seed) against a peer's: tied
/// when the means differ by at most the noise, max([`TIE_POINTS`], 2·SE)
/// with SE = sqrt(s_ours²/n_ours + s_peer²/n_peer) and s the sample
/// standard deviation over the seeds (a Welch-style test at about 95%);
/// else won or lost by the sign of the difference.
fn judge(ours: &[f64], peer: &[f64]) -> Judgement {
    let (mo, so, _, _) = summary(ours);
    let (mp, sp, _, _) = summary(peer);
    let se = (so * so / ours.len() as f64 + sp * sp / peer.len() as f64).sqrt();
    let noise = TIE_POINTS.max(2.0 * se);
    let margin = mo - mp;
    let verdict = if margin.abs() <= noise {
        Verdict::Tied
    } else if margin > 0.0 {
        Verdict::Won
    } else {
        Verdict::Lost
    };
    Judgement {
        margin,
        noise,
        verdict,
    }
}

/// A judged cell, for the summary at the end of the section.
struct Cell {
    trace: &'static str,
    cap: u64,
    ours: f64,
    peer: &'static str,
    peer_mean: f64,
    judged: Judgement,
}

fn hit_ratios(mode: Mode, report: &mut Report) {
    let started = Instant::now();
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
    let seeds = hit_seeds();
    let mut cells = Vec::new();
    for name in traces {
        let Some(keys) = trace(name) else {
            report.missing.push((
                KRATE.to_owned(),
                format!("hit ratios on {name}: skipped: ../shared/data not found"),
            ));
            continue;
        };
        let caps = trace_caps(name, &keys);
        cells.extend(hit_ratio_trace(name, &keys, &caps, &seeds, report));
    }
    let count = |v: Verdict| cells.iter().filter(|c| c.judged.verdict == v).count();
    eprintln!(
        "lru-ttl-cache: hit ratios over {} seed(s) against the best peer: \
         {} won, {} lost, {} tied of {} cells ({:.0} s)",
        seeds.len(),
        count(Verdict::Won),
        count(Verdict::Lost),
        count(Verdict::Tied),
        cells.len(),
        started.elapsed().as_secs_f64()
    );
    for c in cells.iter().filter(|c| c.judged.verdict == Verdict::Lost) {
        eprintln!(
            "  lost: {} at {} entries: ours {:.2}%, {} {:.2}% (margin {:.2} points, noise {:.2})",
            c.trace, c.cap, c.ours, c.peer, c.peer_mean, c.judged.margin, c.judged.noise
        );
    }
}

/// Replays one trace at its capacities (every contender, every seed, and
/// OPT), adds its table rows and curve chart, and returns its judged cells.
fn hit_ratio_trace(
    name: &'static str,
    keys: &[u64],
    caps: &[u64; 5],
    seeds: &[u64],
    report: &mut Report,
) -> Vec<Cell> {
    // Largest capacities and moka (the slowest replays) first, so that the
    // last jobs are short and no core idles long at the end of the trace.
    let mut jobs = Vec::new();
    for cap in (0..caps.len()).rev() {
        jobs.push(Job::Opt { cap });
        for kind in (0..HIT_RATIO_KINDS.len()).rev() {
            let n = if HIT_RATIO_KINDS[kind].hash_dependent() {
                seeds.len()
            } else {
                1
            };
            for &seed in &seeds[..n] {
                jobs.push(Job::Replay { kind, seed, cap });
            }
        }
    }
    let results = run_jobs(&jobs, |job| match *job {
        Job::Replay { kind, seed, cap } => {
            100.0 * replay(&HIT_RATIO_KINDS[kind].make_seeded(caps[cap], seed), keys)
        }
        Job::Opt { cap } => {
            100.0 * belady_hits(keys, caps[cap] as usize) as f64 / keys.len().max(1) as f64
        }
    });
    // samples[kind][cap]: (seed, hit ratio in percent).
    let mut samples = vec![vec![Vec::new(); caps.len()]; HIT_RATIO_KINDS.len()];
    let mut opt = vec![f64::NAN; caps.len()];
    for (job, r) in jobs.iter().zip(results) {
        match *job {
            Job::Replay { kind, seed, cap } => samples[kind][cap].push((seed, r)),
            Job::Opt { cap } => opt[cap] = r,
        }
    }
    let values = |kind: Kind, j: usize| -> Vec<f64> {
        let i = HIT_RATIO_KINDS
            .iter()
            .position(|&k| k == kind)
            .expect("a replayed kind");
        samples[i][j].iter().map(|&(_, r)| r).collect()
    };
    let mean = |kind: Kind, j: usize| summary(&values(kind, j)).0;
    let ours_kind = HIT_RATIO_KINDS[0];
    let mut cells = Vec::new();
    for (j, &cap) in caps.iter().enumerate() {
        // No cache held to `cap` entries can beat OPT: a replay above it
        // means the replay let that cache hold more.
        for (kind, per_cap) in HIT_RATIO_KINDS.iter().zip(&samples) {
            for &(seed, r) in &per_cap[j] {
                if r > opt[j] + 1e-9 {
                    eprintln!(
                        "lru-ttl-cache: {} (seed {seed}) above OPT on {name} at {cap} \
                         entries ({r:.2}% > {:.2}%): not capacity-bounded",
                        kind.name(),
                        opt[j]
                    );
                }
            }
        }
        let peer = [Kind::Quick, Kind::MokaTinyLfu]
            .into_iter()
            .max_by(|&a, &b| mean(a, j).total_cmp(&mean(b, j)))
            .expect("two peers");
        let (ours, theirs) = (values(ours_kind, j), values(peer, j));
        let judged = judge(&ours, &theirs);
        let (o_mean, _, o_lo, o_hi) = summary(&ours);
        let (p_mean, _, p_lo, p_hi) = summary(&theirs);
        let series = HIT_RATIO_KINDS
            .iter()
            .filter(|&&k| k != Kind::OursOneShard && k != Kind::MokaLru)
            .map(|&k| (k.name(), k.is_ours(), vec![mean(k, j)]))
            .collect();
        report.results.push(measured(
            KRATE,
            &format!(
                "hit ratio, {name}, {cap} entries (exact LRU {:.2}%, OPT {:.2}%; \
                 {} seeds: ours {o_lo:.2}-{o_hi:.2}%, {} {p_lo:.2}-{p_hi:.2}%: {})",
                mean(Kind::OursOneShard, j),
                opt[j],
                seeds.len(),
                peer.name(),
                judged.verdict.name()
            ),
            "% hits",
            false,
            series,
        ));
        cells.push(Cell {
            trace: name,
            cap,
            ours: o_mean,
            peer: peer.name(),
            peer_mean: p_mean,
            judged,
        });
    }
    let mut series: Vec<(String, Vec<(f64, f64)>)> = HIT_RATIO_KINDS
        .iter()
        .map(|&k| {
            let pts = caps
                .iter()
                .enumerate()
                .map(|(j, &c)| (c as f64, mean(k, j)))
                .collect();
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
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(ours: &[f64], peer: &[f64]) -> Verdict {
        judge(ours, peer).verdict
    }

    #[test]
    fn judge_ties_within_half_a_point_when_seeds_agree() {
        assert_eq!(verdict(&[30.4; 5], &[30.0; 5]), Verdict::Tied);
        assert_eq!(verdict(&[30.6; 5], &[30.0; 5]), Verdict::Won);
        assert_eq!(verdict(&[29.4; 5], &[30.0; 5]), Verdict::Lost);
        // One seed each: the floor alone.
        let j = judge(&[31.0], &[30.0]);
        assert_eq!((j.verdict, j.noise), (Verdict::Won, TIE_POINTS));
        assert!((j.margin - 1.0).abs() < 1e-12);
    }

    #[test]
    fn judge_widens_the_tie_by_twice_the_standard_error() {
        // Sample sd 10 over 5 seeds: SE sqrt(100 / 5), noise 2 SE = 8.94,
        // so 5 points up is a tie.
        let j = judge(&[20.0, 40.0, 20.0, 40.0, 30.0], &[25.0; 5]);
        assert_eq!(j.verdict, Verdict::Tied);
        assert!((j.noise - 2.0 * 20f64.sqrt()).abs() < 1e-9, "{j:?}");
        // Ours [0, 2]: sample sd sqrt(2) (population sd 1), SE 1, noise 2.
        // A population sd (noise 1.41) would call 1.8 points a win; an SE
        // without the division by the seed count (noise 2.83) would call
        // 2.5 points a tie.
        assert_eq!(verdict(&[0.0, 2.0], &[-0.8, -0.8]), Verdict::Tied);
        assert_eq!(verdict(&[0.0, 2.0], &[-1.5, -1.5]), Verdict::Won);
        assert_eq!(verdict(&[0.0, 2.0], &[3.5, 3.5]), Verdict::Lost);
        // Both sides' scatter counts: SE sqrt(1 + 1), noise 2.83.
        assert_eq!(verdict(&[0.0, 2.0], &[-2.5, -0.5]), Verdict::Tied);
        assert_eq!(verdict(&[0.0, 2.0], &[-3.0, -1.0]), Verdict::Won);
    }

    #[test]
    fn run_jobs_keeps_job_order() {
        let jobs: Vec<u64> = (0..100).collect();
        let out = run_jobs(&jobs, |&x| x * x);
        assert_eq!(out, jobs.iter().map(|x| x * x).collect::<Vec<_>>());
        assert!(run_jobs(&[] as &[u64], |&x| x).is_empty());
    }
}
