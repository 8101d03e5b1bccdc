//! What the strategies achieve on seeded runs of the example's code (the
//! heterogeneous scenario at 50,000 requests: its p99.9 is the 50 slowest
//! requests, and shorter runs are dominated by the first samples of the
//! 1000 ms backend; the others at 30,000). Latencies here are virtual (the
//! simulation's `ManualClock`), so asserting on them is deterministic and
//! independent of the machine.

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../examples/simulate.rs"]
mod sim;

use sysblocks_lb::{
    LeastConnections, PeakEwma, PowerOfTwoChoices, RoundRobin, DEFAULT_INITIAL_LATENCY,
};

const SEED: u64 = 2026;

#[test]
fn heterogeneous_p2c_peak_ewma_tail() {
    let s = sim::heterogeneous(50_000);
    let rr = sim::run(&s, "rr", RoundRobin::new(), SEED);
    let lc = sim::run(&s, "lc", LeastConnections::new(), SEED);
    let p2c = sim::run(&s, "p2c", PowerOfTwoChoices::with_seed(SEED), SEED);
    let p999 = |o: &sim::Outcome| o.quantiles[3];
    // Finagle's start (the default) and tower's (a 30 ms initial estimate).
    for (start, strategy) in [
        ("Finagle's start", PeakEwma::with_seed(SEED)),
        (
            "tower's start",
            PeakEwma::with_seed(SEED).initial_latency(DEFAULT_INITIAL_LATENCY),
        ),
    ] {
        let ewma = sim::run(&s, "ewma", strategy, SEED);
        println!(
            "p99.9 ms: rr {:.2} lc {:.2} p2c {:.2} p2c+ewma ({start}) {:.2}",
            p999(&rr),
            p999(&lc),
            p999(&p2c),
            p999(&ewma)
        );
        // P2C + peak EWMA: at most a fifth of round robin's p99.9.
        assert!(p999(&ewma) <= 0.2 * p999(&rr), "{start}");
        // Peak EWMA is what keeps the 1000 ms backend out of the tail.
        assert!(p999(&ewma) < 0.5 * p999(&p2c), "{start}");
        assert_eq!(ewma.failed, 0);
    }
    assert_eq!(rr.per_backend.iter().sum::<usize>(), 50_000);
    assert_eq!(lc.failed + rr.failed, 0);
}

/// P2C + peak EWMA does not match least connections at p99.9 in this
/// model, and no two-choice strategy can: see the README's "Simulation"
/// section. Two distinct uniform
/// choices both land among the five backends of 100 ms or more with
/// probability 10/45, and then the request goes to one of them whatever the
/// cost function says, so at least 22 % of the requests (11,000 of 50,000)
/// draw from U[0, 100] or slower; the 50th slowest of 11,000 such draws
/// lies near the 99.5th percentile of U[0, 100]. Least connections scans
/// every backend and sends 2-3 % there. What the strategy does control, and
/// what is asserted here over 20 seeds, no tolerance: the two-choice share
/// is the structural one (so the gap is the structure's, not a tuning
/// fault), and peak EWMA keeps the 1000 ms backend under 0.1 % of the
/// requests, so that on average it does not reach into the p99.9, from
/// Finagle's start (the default) and from tower's.
#[test]
fn heterogeneous_gap_to_least_connections_is_the_two_choice_floor() {
    let s = sim::heterogeneous(50_000);
    let seeds = 1..=20u64;
    let n = seeds.clone().count() as f64;
    let (mut lc_p999, mut lc_slowest) = (0.0, 0.0);
    // Per start (Finagle's, tower's): mean p99.9 and mean requests to the
    // 1000 ms backend.
    let (mut ewma_p999, mut ewma_slowest) = ([0.0; 2], [0.0; 2]);
    for seed in seeds {
        let lc = sim::run(&s, "lc", LeastConnections::new(), seed);
        lc_p999 += lc.quantiles[3] / n;
        lc_slowest += lc.per_backend[9] as f64 / n;
        let starts = [
            PeakEwma::with_seed(seed),
            PeakEwma::with_seed(seed).initial_latency(DEFAULT_INITIAL_LATENCY),
        ];
        for (k, strategy) in starts.into_iter().enumerate() {
            let ewma = sim::run(&s, "ewma", strategy, seed);
            let total = ewma.per_backend.iter().sum::<usize>() as f64;
            // Backends 5..=9 are the four 100 ms ones and the 1000 ms one.
            let slow_share = ewma.per_backend[5..].iter().sum::<usize>() as f64 / total;
            assert!(
                (slow_share - 10.0 / 45.0).abs() < 0.01,
                "seed {seed}, start {k}: share on the five slow backends {slow_share}"
            );
            ewma_p999[k] += ewma.quantiles[3] / n;
            ewma_slowest[k] += ewma.per_backend[9] as f64 / n;
        }
    }
    println!(
        "mean over 20 seeds: p99.9 ms lc {lc_p999:.2} p2c+ewma {:.2} (tower's start {:.2}); \
         requests to the 1000 ms backend lc {lc_slowest:.1} p2c+ewma {:.1} \
         (tower's start {:.1})",
        ewma_p999[0], ewma_p999[1], ewma_slowest[0], ewma_slowest[1]
    );
    assert!(ewma_slowest.iter().all(|&r| r < 50.0), "{ewma_slowest:?}");
}

#[test]
fn failing_backend_outlier_detection_cuts_failures() {
    let without = sim::run(
        &sim::failing_backend(30_000, false),
        "rr",
        RoundRobin::new(),
        SEED,
    );
    // A third of the way in, one of ten backends fails: ~2/3 x 1/10.
    assert!(without.failed > 1_900, "{}", without.failed);
    let on = sim::failing_backend(30_000, true);
    for o in sim::run_all(&on, SEED) {
        assert!(
            (o.failed as f64) < 0.01 * without.failed as f64,
            "{}: {} failed vs {} for round robin without detection",
            o.strategy,
            o.failed,
            without.failed
        );
        assert!(o.failed >= 5, "ejection needs five failures");
    }
}

#[test]
fn failover_goes_passive_after_detection_and_returns() {
    let s = sim::failover(30_000);
    for o in sim::run_all(&s, SEED) {
        let detected = o.detected_at.expect("the down tier is detected");
        assert!(
            (10_000..12_000).contains(&detected),
            "{}: {detected}",
            o.strategy
        );
        assert_eq!(
            o.after_detection_to_down_tier, 0,
            "{}: requests to the down tier after detection",
            o.strategy
        );
        assert!(o.returned_after_recovery > 9_000, "{}", o.strategy);
        assert_eq!(o.last_tenth_elsewhere, 0, "{}", o.strategy);
    }
}
