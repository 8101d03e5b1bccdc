//! A deterministic, seeded discrete-event simulation of closed-loop clients
//! and backends, run through `lb`'s balancers on a `ManualClock`.
//!
//! `cargo run --release -p sysblocks-lb --example simulate` prints, per
//! scenario and strategy, the latency quantiles (virtual time), each
//! backend's share of the requests and the failed requests.
//! `tests/simulation.rs` runs the same code and asserts its results.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::time::Duration;

use sysblocks_lb::{
    Balancer, ConsistentHashing, Context, HealthCheck, LeastConnections, ManualClock,
    OutlierDetection, PeakEwma, Pick, PowerOfTwoChoices, Random, RoundRobin,
    SmoothWeightedRoundRobin, Strategy,
};

/// One simulated backend.
#[derive(Debug, Clone, Copy)]
pub struct BackendSpec {
    /// Latency is uniform on `[0, max_ms]`.
    pub max_ms: f64,
    /// Failover tier.
    pub tier: u32,
}

/// When backends fail, by the index of the request being issued.
#[derive(Debug, Clone, Copy)]
pub enum Faults {
    /// Nothing fails.
    None,
    /// `backend` fails every request issued from request `from` on.
    Backend {
        /// The failing backend.
        backend: usize,
        /// First failing request index.
        from: usize,
    },
    /// Every backend of `tier` fails (requests and probes) for requests
    /// issued in `from..until`.
    TierDown {
        /// The failing tier.
        tier: u32,
        /// First failing request index.
        from: usize,
        /// First request index after recovery.
        until: usize,
    },
}

/// A scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Printed name.
    pub name: &'static str,
    /// The backends.
    pub backends: Vec<BackendSpec>,
    /// Concurrent closed-loop clients.
    pub clients: usize,
    /// Requests in total.
    pub requests: usize,
    /// Failure plan.
    pub faults: Faults,
    /// Passive outlier detection (Envoy defaults) on or off.
    pub outlier_detection: bool,
    /// Run active health checks (every 100 ms, fall 2, rise 2) before picks.
    pub active_checks: bool,
    /// Envoy's overprovisioning factor between the tiers: 1.4 spills part
    /// of a degraded tier's traffic to the next; infinity is classic
    /// active-passive failover (all or nothing).
    pub overprovisioning_factor: f64,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Strategy label.
    pub strategy: String,
    /// p50, p95, p99, p99.9 of request latency in ms (failed ones included).
    pub quantiles: [f64; 4],
    /// Requests per backend.
    pub per_backend: Vec<usize>,
    /// Failed requests.
    pub failed: usize,
    /// Requests (by issue index) sent to a down tier after the balancer's
    /// active tier had left it, and the index at which that happened.
    pub after_detection_to_down_tier: usize,
    /// Request index at which the active tier first left the down tier.
    pub detected_at: Option<usize>,
    /// Requests issued after the recovery that went to the recovered tier.
    pub returned_after_recovery: usize,
    /// Requests issued in the last tenth that went to another tier.
    pub last_tenth_elsewhere: usize,
    /// Every request's latency in ms, sorted (for CDFs).
    pub latencies_ms: Vec<f64>,
}

struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The `q` quantile of `sorted` (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Runs `scenario` with `strategy`, seeded.
pub fn run<S: Strategy>(scenario: &Scenario, label: &str, strategy: S, seed: u64) -> Outcome {
    let clock = ManualClock::new();
    let mut builder = Balancer::builder(strategy)
        .clock(clock.clone())
        .overprovisioning_factor(scenario.overprovisioning_factor);
    for (i, b) in scenario.backends.iter().enumerate() {
        builder = builder.backend_in_tier(i, 1, b.tier);
    }
    builder = if scenario.outlier_detection {
        builder.outlier_detection(OutlierDetection::default())
    } else {
        builder.without_outlier_detection()
    };
    builder = builder.health_check(HealthCheck {
        interval: Duration::from_millis(100),
        unhealthy_threshold: 2,
        healthy_threshold: 2,
    });
    let balancer = builder.build().expect("valid simulation balancer");

    let mut rng = Rng(seed);
    let mut events: BinaryHeap<Reverse<(u64, u64, usize)>> = BinaryHeap::new();
    let mut seq = 0u64;
    for c in 0..scenario.clients {
        events.push(Reverse((0, seq, c)));
        seq += 1;
    }
    // Per client: the request in flight (its pick, start time, failing?).
    let mut inflight: Vec<Option<(Pick<'_, usize>, u64, bool)>> =
        (0..scenario.clients).map(|_| None).collect();
    let mut issued = 0usize;
    let mut latencies = Vec::with_capacity(scenario.requests);
    let mut per_backend = vec![0usize; scenario.backends.len()];
    let mut failed = 0usize;
    let mut detected_at = None;
    let mut after_detection_to_down_tier = 0;
    let mut returned_after_recovery = 0;
    let mut last_tenth_elsewhere = 0;
    let down = |idx: usize, issued_at: usize| match scenario.faults {
        Faults::None => false,
        Faults::Backend { backend, from } => idx == backend && issued_at >= from,
        Faults::TierDown { tier, from, until } => {
            scenario.backends[idx].tier == tier && (from..until).contains(&issued_at)
        }
    };

    while let Some(Reverse((now, _, client))) = events.pop() {
        clock.set(Duration::from_nanos(now));
        if let Some((pick, start, fails)) = inflight[client].take() {
            let latency = now - start;
            latencies.push(latency as f64 / 1e6);
            if fails {
                failed += 1;
                pick.failure();
            } else {
                pick.success(Duration::from_nanos(latency));
            }
        }
        if issued == scenario.requests {
            continue;
        }
        let index = issued;
        issued += 1;
        if scenario.active_checks {
            balancer.check_health(|&idx| !down(idx, index));
        }
        if let Faults::TierDown { tier, from, until } = scenario.faults {
            if (from..until).contains(&index)
                && detected_at.is_none()
                && balancer.active_tier() != Some(tier)
            {
                detected_at = Some(index);
            }
        }
        let key = (rng.next_f64() * 1e9) as u64;
        let Some(pick) = balancer.pick(&Context::with_key(key)) else {
            failed += 1;
            latencies.push(0.0);
            continue;
        };
        let idx = *pick;
        per_backend[idx] += 1;
        if let Faults::TierDown { tier, until, .. } = scenario.faults {
            let t = scenario.backends[idx].tier;
            if detected_at.is_some() && index < until && t == tier {
                after_detection_to_down_tier += 1;
            }
            if index >= until && t == tier {
                returned_after_recovery += 1;
            }
            if index >= scenario.requests - scenario.requests / 10 && t != tier {
                last_tenth_elsewhere += 1;
            }
        }
        let fails = down(idx, index);
        let latency_ms = rng.next_f64() * scenario.backends[idx].max_ms;
        let done = now + (latency_ms * 1e6) as u64;
        inflight[client] = Some((pick, now, fails));
        events.push(Reverse((done, seq, client)));
        seq += 1;
    }
    latencies.sort_by(f64::total_cmp);
    Outcome {
        strategy: label.to_string(),
        quantiles: [0.5, 0.95, 0.99, 0.999].map(|q| quantile(&latencies, q)),
        per_backend,
        failed,
        after_detection_to_down_tier,
        detected_at,
        returned_after_recovery,
        last_tenth_elsewhere,
        latencies_ms: latencies,
    }
}

/// Every strategy on `scenario`.
pub fn run_all(scenario: &Scenario, seed: u64) -> Vec<Outcome> {
    vec![
        run(scenario, "round robin", RoundRobin::new(), seed),
        run(
            scenario,
            "smooth weighted RR",
            SmoothWeightedRoundRobin::new(),
            seed,
        ),
        run(scenario, "random", Random::with_seed(seed), seed),
        run(scenario, "least connections", LeastConnections::new(), seed),
        run(
            scenario,
            "power of two choices",
            PowerOfTwoChoices::with_seed(seed),
            seed,
        ),
        run(scenario, "P2C + peak EWMA", PeakEwma::with_seed(seed), seed),
        run(
            scenario,
            "consistent hash (ring)",
            ConsistentHashing::ring(),
            seed,
        ),
    ]
}

/// The heterogeneous scenario (1, 4 x 10, 4 x 100 and 1 x 1000 ms
/// maxima), scaled to `requests`.
pub fn heterogeneous(requests: usize) -> Scenario {
    let mut backends = vec![BackendSpec {
        max_ms: 1.0,
        tier: 0,
    }];
    backends.extend((0..4).map(|_| BackendSpec {
        max_ms: 10.0,
        tier: 0,
    }));
    backends.extend((0..4).map(|_| BackendSpec {
        max_ms: 100.0,
        tier: 0,
    }));
    backends.push(BackendSpec {
        max_ms: 1000.0,
        tier: 0,
    });
    Scenario {
        name: "heterogeneous",
        backends,
        clients: 50,
        requests,
        faults: Faults::None,
        outlier_detection: false,
        active_checks: false,
        overprovisioning_factor: 1.4,
    }
}

/// Ten equal backends; backend 3 fails everything from a third of the way.
pub fn failing_backend(requests: usize, outlier_detection: bool) -> Scenario {
    Scenario {
        name: if outlier_detection {
            "failing backend, outlier detection on"
        } else {
            "failing backend, outlier detection off"
        },
        backends: vec![
            BackendSpec {
                max_ms: 10.0,
                tier: 0
            };
            10
        ],
        clients: 50,
        requests,
        faults: Faults::Backend {
            backend: 3,
            from: requests / 3,
        },
        outlier_detection,
        active_checks: false,
        overprovisioning_factor: 1.4,
    }
}

/// Three active backends (tier 0), three passive (tier 1); the active tier
/// is down for the middle third, probed every 100 ms. Active-passive: the
/// active tier takes all the traffic while one of its backends is healthy.
pub fn failover(requests: usize) -> Scenario {
    let mut backends = vec![
        BackendSpec {
            max_ms: 10.0,
            tier: 0
        };
        3
    ];
    backends.extend(vec![
        BackendSpec {
            max_ms: 20.0,
            tier: 1
        };
        3
    ]);
    Scenario {
        name: "failover",
        backends,
        clients: 50,
        requests,
        faults: Faults::TierDown {
            tier: 0,
            from: requests / 3,
            until: 2 * requests / 3,
        },
        outlier_detection: true,
        active_checks: true,
        overprovisioning_factor: f64::INFINITY,
    }
}

/// A printable table of outcomes.
pub fn table(scenario: &Scenario, outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n## {} ({} backends, {} clients, {} requests)\n",
        scenario.name,
        scenario.backends.len(),
        scenario.clients,
        scenario.requests
    );
    let _ = writeln!(
        s,
        "| strategy | p50 ms | p95 ms | p99 ms | p99.9 ms | failed | share per backend (%) |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---|");
    for o in outcomes {
        let total: usize = o.per_backend.iter().sum::<usize>().max(1);
        let shares: Vec<String> = o
            .per_backend
            .iter()
            .map(|&c| format!("{:.1}", 100.0 * c as f64 / total as f64))
            .collect();
        let [p50, p95, p99, p999] = o.quantiles;
        let _ = writeln!(
            s,
            "| {} | {p50:.2} | {p95:.2} | {p99:.2} | {p999:.2} | {} | {} |",
            o.strategy,
            o.failed,
            shares.join(" ")
        );
    }
    s
}

#[allow(dead_code)]
fn main() {
    let seed = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2026);
    println!("# lb simulation (seed {seed}; latencies in virtual time)");
    let het = heterogeneous(50_000);
    print!("{}", table(&het, &run_all(&het, seed)));
    for od in [false, true] {
        let s = failing_backend(50_000, od);
        print!("{}", table(&s, &run_all(&s, seed)));
    }
    let f = failover(60_000);
    let outcomes = run_all(&f, seed);
    print!("{}", table(&f, &outcomes));
    println!();
    for o in &outcomes {
        println!(
            "{}: active tier left at request {:?}; to the down tier after that: {}; \
             back to tier 0 after recovery: {}; last tenth elsewhere: {}",
            o.strategy,
            o.detected_at,
            o.after_detection_to_down_tier,
            o.returned_after_recovery,
            o.last_tenth_elsewhere
        );
    }
}
