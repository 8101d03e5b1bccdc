//! Inputs and contender setups for `rate-limiter` and its peers (`governor`,
//! `ratelimit`), shared by the criterion bench `rate_limiter` and the
//! `compare` binary so both measure the same thing:
//!
//! - direct checks that are admitted ([`admit_quota`]: 10^9 per second,
//!   burst 1000, so every check writes its state) and denied (1 per hour,
//!   the one cell already taken);
//! - keyed checks over [`KEYS`] `u64` keys, every key present before timing
//!   ([`keyed_quota`]: 100 per second, burst 50), the keys drawn uniformly or
//!   by Zipf(1.0) ([`uniform_keys`], [`zipf_keys`]).
//!
//! Each limiter reads its crate's default real clock, as its users would:
//! ours a `QuantaClock`, governor its `quanta` clock (the same TSC source),
//! ratelimit `clocksource`'s `Instant`.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sysblocks_rate_limiter::{
    Algorithm, FixedWindow, Gcra, Keyed, LeakyBucket, Quota, RateLimiter, SlidingWindowCounter,
    SlidingWindowLog, TokenBucket,
};

/// Distinct keys of the keyed cases (the `--smoke` report uses fewer).
pub const KEYS: u64 = 100_000;

/// Length of a key sequence (a power of two, so `i & (SAMPLES - 1)`
/// indexes it).
pub const SAMPLES: usize = 1 << 18;

/// governor's keyed limiter on its `DashMapStateStore` and default clock.
pub type GovKeyed = governor::DefaultKeyedRateLimiter<u64>;

/// governor's direct limiter on its default clock.
pub type GovDirect = governor::DefaultDirectRateLimiter;

/// Every check admitted: 10^9 per second, burst 1000.
#[must_use]
pub fn admit_quota() -> Quota {
    Quota::per_second(1_000_000_000).burst(1000)
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("non-zero")
}

/// [`admit_quota`] for governor.
#[must_use]
pub fn gov_admit_quota() -> governor::Quota {
    governor::Quota::per_second(nz(1_000_000_000)).allow_burst(nz(1000))
}

/// Our GCRA at 1 per hour with its one cell taken: every check is denied.
///
/// # Panics
///
/// Never (the quota is valid).
#[must_use]
pub fn ours_gcra_denying() -> Gcra {
    let g = Gcra::new(Quota::per_hour(1)).expect("valid quota");
    assert!(g.check().is_allowed());
    g
}

/// governor at 1 per hour with its one cell taken: every check is denied.
///
/// # Panics
///
/// Never.
#[must_use]
pub fn gov_denying() -> GovDirect {
    let g = governor::RateLimiter::direct(governor::Quota::per_hour(nz(1)));
    assert!(g.check().is_ok());
    g
}

/// governor admitting every check ([`gov_admit_quota`]).
#[must_use]
pub fn gov_admitting() -> GovDirect {
    governor::RateLimiter::direct(gov_admit_quota())
}

/// `ratelimit` admitting every check: 1000 tokens per microsecond, bucket
/// 1000, full at start.
///
/// # Panics
///
/// Never (the settings are valid).
#[must_use]
pub fn ratelimit_admitting() -> ratelimit::Ratelimiter {
    ratelimit::Ratelimiter::builder(1000, Duration::from_micros(1))
        .max_tokens(1000)
        .initial_available(1000)
        .build()
        .expect("valid settings")
}

/// `ratelimit` denying every check: 1 token per hour, none available.
///
/// # Panics
///
/// Never (the settings are valid).
#[must_use]
pub fn ratelimit_denying() -> ratelimit::Ratelimiter {
    let r = ratelimit::Ratelimiter::builder(1, Duration::from_secs(3600))
        .max_tokens(1)
        .initial_available(0)
        .build()
        .expect("valid settings");
    assert!(r.try_wait().is_err());
    r
}

/// Our algorithms on `quota` with their default clocks, by name.
///
/// # Panics
///
/// Never for a valid quota.
#[must_use]
pub fn ours_direct(quota: Quota) -> Vec<(&'static str, Box<dyn RateLimiter>)> {
    vec![
        ("gcra", Box::new(Gcra::new(quota).expect("quota"))),
        (
            "token_bucket",
            Box::new(TokenBucket::new(quota).expect("quota")),
        ),
        (
            "leaky_bucket",
            Box::new(LeakyBucket::new(quota).expect("quota")),
        ),
        (
            "fixed_window",
            Box::new(FixedWindow::new(quota).expect("quota")),
        ),
        (
            "sliding_log",
            Box::new(SlidingWindowLog::new(quota).expect("quota")),
        ),
        (
            "sliding_counter",
            Box::new(SlidingWindowCounter::new(quota).expect("quota")),
        ),
    ]
}

/// The keyed cases' quota: 100 per second, burst 50.
#[must_use]
pub fn keyed_quota() -> Quota {
    Quota::per_second(100).burst(50)
}

/// [`keyed_quota`] for governor.
#[must_use]
pub fn gov_keyed_quota() -> governor::Quota {
    governor::Quota::per_second(nz(100)).allow_burst(nz(50))
}

/// [`SAMPLES`] keys drawn uniformly from `0..keys`.
#[must_use]
pub fn uniform_keys(keys: u64) -> Vec<u64> {
    let mut rng = SmallRng::seed_from_u64(1);
    (0..SAMPLES).map(|_| rng.gen_range(0..keys)).collect()
}

/// [`SAMPLES`] keys by Zipf(1.0) over `keys` ranks (inverse CDF), ranks
/// scattered over the key space so hot keys do not share a shard by
/// construction.
#[must_use]
pub fn zipf_keys(keys: u64) -> Vec<u64> {
    let mut cdf = Vec::with_capacity(keys as usize);
    let mut sum = 0.0;
    for k in 1..=keys {
        sum += 1.0 / k as f64;
        cdf.push(sum);
    }
    let mut rng = SmallRng::seed_from_u64(2);
    (0..SAMPLES)
        .map(|_| {
            let u = rng.gen::<f64>() * sum;
            let rank = cdf.partition_point(|&c| c < u) as u64;
            rank.wrapping_mul(0x9E37_79B9_7F4A_7C15) % keys
        })
        .collect()
}

/// Our keyed limiter over `template` (cap 2^20 keys), holding every key of
/// `0..n`, warmed with the first 2^16 checks of `keys`.
///
/// # Panics
///
/// Never (the settings are valid).
#[must_use]
pub fn ours_keyed<A: Algorithm>(template: A, n: u64, keys: &[u64]) -> Keyed<u64, A> {
    let k = Keyed::builder(template)
        .max_keys(1 << 20)
        .build()
        .expect("valid settings");
    for key in 0..n {
        let _ = k.check_key(&key);
    }
    for key in keys.iter().take(1 << 16) {
        let _ = k.check_key(key);
    }
    k
}

/// governor's `DashMapStateStore` keyed limiter holding every key of
/// `0..n`, warmed like [`ours_keyed`].
#[must_use]
pub fn gov_keyed(n: u64, keys: &[u64]) -> GovKeyed {
    let g = governor::RateLimiter::dashmap(gov_keyed_quota());
    for key in 0..n {
        let _ = g.check_key(&key);
    }
    for key in keys.iter().take(1 << 16) {
        let _ = g.check_key(key);
    }
    g
}

/// Our keyed GCRA holding `n` keys (`0..n`), for the bytes-per-key report.
///
/// # Panics
///
/// Never.
#[must_use]
pub fn ours_keyed_filled(n: u64) -> Keyed<u64, Gcra> {
    let k = Keyed::builder(Gcra::new(keyed_quota()).expect("quota"))
        .max_keys(1 << 20)
        .build()
        .expect("valid settings");
    for key in 0..n {
        let _ = k.check_key(&key);
    }
    k
}

/// governor's keyed limiter holding `n` keys (`0..n`).
#[must_use]
pub fn gov_keyed_filled(n: u64) -> GovKeyed {
    let g = governor::RateLimiter::dashmap(gov_keyed_quota());
    for key in 0..n {
        let _ = g.check_key(&key);
    }
    g
}

/// The key of check `i` of thread `t` out of `threads`: threads take
/// interleaved positions of one sequence.
#[inline]
#[must_use]
pub fn key_at(keys: &[u64], threads: u64, t: u64, i: u64) -> &u64 {
    &keys[((i * threads + t) as usize) & (SAMPLES - 1)]
}

/// Runs `op(t, i)` for `i in 0..iters` on each of `threads` threads at once
/// and returns the wall time from the first thread's start to the last
/// thread's finish. Each thread reads the time itself after a spinning
/// barrier among the workers only, so neither a descheduled spawning thread
/// (2 workers and it on 2 cores) nor a futex wake-up skews short samples.
///
/// # Panics
///
/// If a thread panics.
pub fn on_threads(threads: u64, iters: u64, op: impl Fn(u64, u64) + Sync) -> Duration {
    let ready = AtomicU64::new(0);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (ready, op) = (&ready, &op);
                s.spawn(move || {
                    ready.fetch_add(1, Ordering::AcqRel);
                    while ready.load(Ordering::Acquire) < threads {
                        std::hint::spin_loop();
                    }
                    let start = Instant::now();
                    for i in 0..iters {
                        op(t, i);
                    }
                    (start, Instant::now())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .collect()
    });
    let first = spans.iter().map(|s| s.0).min().expect("threads > 0");
    let last = spans.iter().map(|s| s.1).max().expect("threads > 0");
    last - first
}

/// The tower case: one request through a rate-limiting layer over an
/// inner service that answers at once, ours ([`ours_tower`](tower_case::ours_tower):
/// `HttpRateLimit` over the local GCRA) against tower_governor's
/// `Governor` over governor ([`gov_tower`](tower_case::gov_tower)), both with [`admit_quota`],
/// one global key (tower_governor's `GlobalKeyExtractor`; our key
/// extractor returns `()`), and the same request built per call. `fields`
/// turns the response fields on: ours the `RateLimit-Policy` and
/// `RateLimit` fields, tower_governor's its `x-ratelimit-*` headers.
pub mod tower_case {
    use std::convert::Infallible;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use axum::body::Body;
    use http::{Request, Response};
    use sysblocks_rate_limiter::tower::{HttpRateLimitLayer, Policy};
    use sysblocks_rate_limiter::Gcra;
    use tower::{Layer, Service};
    use tower_governor::governor::GovernorConfigBuilder;
    use tower_governor::key_extractor::GlobalKeyExtractor;
    use tower_governor::GovernorLayer;

    use super::admit_quota;

    /// The inner service: an empty 200 at once.
    pub fn inner(
    ) -> impl Service<Request<()>, Response = Response<Body>, Error = Infallible, Future: Send>
           + Clone
           + Send
           + 'static {
        tower::service_fn(|_: Request<()>| {
            std::future::ready(Ok::<_, Infallible>(Response::new(Body::empty())))
        })
    }

    /// Our layer over the local GCRA.
    pub fn ours_tower(
        fields: bool,
    ) -> impl Service<Request<()>, Response = Response<Body>, Error: std::fmt::Debug> {
        let gcra = Gcra::new(admit_quota()).expect("valid quota");
        let layer = HttpRateLimitLayer::new(gcra, |_: &Request<()>| ());
        let layer = if fields {
            layer.policy(Policy::from_quota("default", admit_quota()).expect("valid"))
        } else {
            layer.headers(false)
        };
        layer.layer(inner())
    }

    /// tower_governor's layer over governor, the same quota.
    pub fn gov_tower(fields: bool) -> Box<dyn FnMut(Request<()>) -> Response<Body>> {
        // `key_extractor` returns a new builder: keep it (the default one
        // extracts the peer IP, which a bare `Request` lacks, and answers
        // every request 500 without checking the limiter).
        let mut b = GovernorConfigBuilder::default()
            .per_nanosecond(1)
            .burst_size(1000)
            .key_extractor(GlobalKeyExtractor);
        if fields {
            let config = b.use_headers().finish().expect("valid config");
            let mut svc = GovernorLayer::new(config).layer(inner());
            Box::new(move |req| call(&mut svc, req))
        } else {
            let config = b.finish().expect("valid config");
            let mut svc = GovernorLayer::new(config).layer(inner());
            Box::new(move |req| call(&mut svc, req))
        }
    }

    /// `poll_ready`, `call` and the response future, each polled once
    /// (all are ready at once on both sides).
    pub fn call<S>(svc: &mut S, req: Request<()>) -> Response<Body>
    where
        S: Service<Request<()>, Response = Response<Body>>,
        S::Error: std::fmt::Debug,
    {
        let mut cx = Context::from_waker(Waker::noop());
        let Poll::Ready(Ok(())) = svc.poll_ready(&mut cx) else {
            panic!("the services are always ready")
        };
        match pin!(svc.call(req)).poll(&mut cx) {
            Poll::Ready(Ok(res)) => res,
            _ => panic!("the response is ready at once"),
        }
    }
}
