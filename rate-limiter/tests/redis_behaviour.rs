//! The Redis limiters against a private redis-server: decisions on the
//! server's clock, expiry, bad input, a wrong type or a foreign string at
//! the key, a flushed script, `check_many`, the denial cache under a
//! mostly denied load, and each failure policy while the server is killed
//! and restarted under load.
#![cfg(feature = "redis")]

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use sysblocks_rate_limiter::redis::{
    BlockingRedisLimiter, FailurePolicy, RedisCheckError, RedisLimiter, RedisStats, MAX_KEY_LEN,
};
use sysblocks_rate_limiter::{AsyncCheck, BuildError, ManualClock, Quota};
use sysblocks_testkit::redis::RedisServer;

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

#[tokio::test]
async fn gcra_on_the_server_clock_admits_the_burst_then_denies() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let limiter = RedisLimiter::gcra(Quota::per_second(10).burst(3))
        .prefix("t:")
        .connect(&server.url())
        .await
        .unwrap();
    for left in (0..3).rev() {
        let d = limiter.check("k").await.unwrap();
        assert!(d.is_allowed());
        assert_eq!((d.limit(), d.remaining()), (3, left));
    }
    let d = limiter.check("k").await.unwrap();
    assert!(!d.is_allowed());
    let retry = d.retry_after().unwrap();
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_millis(100),
        "{retry:?}"
    );
    assert!(d.reset_after() <= Duration::from_millis(300));
    // Another key is independent.
    assert!(limiter.check("other").await.unwrap().is_allowed());
    // The state expires at its reset: within 300 ms.
    let mut c = raw(&server).await;
    let pttl: i64 = c.pttl("t:{k}").await.unwrap();
    assert!(pttl > 0 && pttl <= 300, "{pttl}");
    // After the retry the request passes.
    tokio::time::sleep(retry + Duration::from_millis(5)).await;
    assert!(limiter.check("k").await.unwrap().is_allowed());
}

#[tokio::test]
async fn sliding_counter_on_the_server_clock_and_its_expiry() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let limiter = RedisLimiter::sliding_window_counter(Quota::per_second(5))
        .prefix("s:")
        .connect(&server.url())
        .await
        .unwrap();
    let d = limiter.check_n("k", 5).await.unwrap();
    assert!(d.is_allowed());
    assert_eq!(d.remaining(), 0);
    let d = limiter.check("k").await.unwrap();
    assert!(!d.is_allowed());
    assert!(d.retry_after().unwrap() <= Duration::from_secs(2));
    let mut c = raw(&server).await;
    let pttl: i64 = c.pttl("s:{k}").await.unwrap();
    assert!(pttl > 1000 && pttl <= 2000, "{pttl}");
    // A cost of 0 is admitted and writes nothing.
    assert!(limiter.check_n("zero", 0).await.unwrap().is_allowed());
    assert!(!c.exists::<_, bool>("s:{zero}").await.unwrap());
}

#[tokio::test]
async fn bad_settings_and_bad_requests_are_typed_errors() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let build = |b: sysblocks_rate_limiter::redis::RedisLimiterBuilder| {
        let url = url.clone();
        async move { b.connect(&url).await.map(drop) }
    };
    use sysblocks_rate_limiter::redis::ConnectError::Build;
    let err = |r: Result<(), _>| match r {
        Err(Build(e)) => e,
        other => panic!("expected a build error, got {other:?}"),
    };
    assert_eq!(
        err(build(RedisLimiter::gcra(Quota::per_second(0))).await),
        BuildError::Zero { setting: "rate" }
    );
    assert!(matches!(
        err(build(RedisLimiter::gcra(Quota::per_hour(1).burst(2000))).await),
        BuildError::TooMany { .. }
    ));
    assert!(matches!(
        err(build(RedisLimiter::sliding_window_counter(
            Quota::per_hour(1).burst(2000)
        ))
        .await),
        BuildError::TooMany { .. }
    ));
    assert!(matches!(
        err(build(RedisLimiter::gcra(Quota::per_second(1)).prefix("a{b")).await),
        BuildError::Invalid { .. }
    ));
    assert!(matches!(
        err(build(RedisLimiter::gcra(Quota::per_second(1)).prefix("p".repeat(1000))).await),
        BuildError::TooMany { .. }
    ));
    assert_eq!(
        err(build(RedisLimiter::gcra(Quota::per_second(1)).timeout(Duration::ZERO)).await),
        BuildError::Zero { setting: "timeout" }
    );
    assert_eq!(
        err(build(
            RedisLimiter::gcra(Quota::per_second(1))
                .on_failure(FailurePolicy::LocalFallback { fleet_size: 0 })
        )
        .await),
        BuildError::Zero {
            setting: "fleet size"
        }
    );
    assert!(matches!(
        RedisLimiter::gcra(Quota::per_second(1))
            .connect("not a url")
            .await,
        Err(sysblocks_rate_limiter::redis::ConnectError::Redis(_))
    ));

    let limiter = RedisLimiter::gcra(Quota::per_second(10).burst(2))
        .connect(&server.url())
        .await
        .unwrap();
    assert!(matches!(
        limiter.check("").await,
        Err(RedisCheckError::EmptyKey)
    ));
    assert!(matches!(
        limiter.check(vec![b'x'; MAX_KEY_LEN + 1]).await,
        Err(RedisCheckError::KeyTooLong { len, max }) if len == MAX_KEY_LEN + 1 && max == MAX_KEY_LEN
    ));
    assert!(limiter.check(vec![b'x'; MAX_KEY_LEN]).await.is_ok());
    assert!(matches!(
        limiter.check_n("k", 3).await,
        Err(RedisCheckError::CostExceedsLimit { cost: 3, limit: 2 })
    ));
    // Binary keys, braces included, are fine.
    assert!(limiter.check(b"{\x00}\xff").await.unwrap().is_allowed());
}

#[tokio::test]
async fn wrong_type_foreign_state_and_flushed_scripts_are_recovered_from() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut c = raw(&server).await;
    for limiter in [
        RedisLimiter::gcra(Quota::per_second(10)),
        RedisLimiter::sliding_window_counter(Quota::per_second(10)),
    ] {
        let limiter = limiter.prefix("w:").connect(&server.url()).await.unwrap();
        let _: () = c.del("w:{k}").await.unwrap();
        let _: () = c.lpush("w:{k}", "x").await.unwrap();
        assert!(matches!(
            limiter.check("k").await,
            Err(RedisCheckError::WrongType)
        ));
        assert!(limiter.check("fine").await.unwrap().is_allowed());
        for junk in ["hello", "1 2", "99999999999999999999999", "-5", "1 2 x"] {
            let _: () = c.set("w:{k}", junk).await.unwrap();
            assert!(
                matches!(limiter.check("k").await, Err(RedisCheckError::CorruptState)),
                "{junk}"
            );
        }
        let _: () = c.del("w:{k}").await.unwrap();
        assert!(limiter.check("k").await.unwrap().is_allowed());
        // SCRIPT FLUSH: the next check reloads the script (NOSCRIPT), for
        // single checks and for pipelines.
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(limiter.check("k2").await.unwrap().is_allowed());
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut c)
            .await
            .unwrap();
        let many = limiter.check_many(&["a", "b", "c"], 1).await;
        assert!(many
            .iter()
            .all(|r| r.as_ref().is_ok_and(|d| d.is_allowed())));
        // A wrong type inside a batch fails that key only.
        let _: () = c.del("w:{b}").await.unwrap();
        let _: () = c.lpush("w:{b}", "x").await.unwrap();
        let many = limiter.check_many(&["a", "b", "c"], 1).await;
        assert!(many[0].is_ok() && many[2].is_ok());
        assert!(matches!(many[1], Err(RedisCheckError::WrongType)));
        let _: () = c
            .del(&["w:{a}", "w:{b}", "w:{c}", "w:{k}", "w:{k2}", "w:{fine}"])
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn check_many_is_one_round_trip_with_the_same_decisions() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let quota = Quota::per_minute(60).burst(3);
    let one = RedisLimiter::gcra(quota).prefix("one:").denial_cache(0);
    let one = one.connect(&server.url()).await.unwrap();
    let many = RedisLimiter::gcra(quota).prefix("many:").denial_cache(0);
    let many = many.connect(&server.url()).await.unwrap();
    let keys: Vec<String> = (0..20).map(|i| format!("k{}", i % 7)).collect();
    // The first use loads the script (NOSCRIPT, SCRIPT LOAD, again).
    assert!(many.check("warm").await.unwrap().is_allowed());
    let before = many.stats().round_trips;
    let batched = many.check_many(&keys, 1).await;
    assert_eq!(many.stats().round_trips, before + 1);
    for (key, b) in keys.iter().zip(batched) {
        let single = one.check(key).await.unwrap();
        let b = b.unwrap();
        assert_eq!(single.is_allowed(), b.is_allowed(), "{key}");
        assert_eq!(single.remaining(), b.remaining(), "{key}");
    }
    // Bad keys are answered without taking part.
    let r = many.check_many(&["", "ok"], 1).await;
    assert!(matches!(r[0], Err(RedisCheckError::EmptyKey)));
    assert!(r[1].is_ok());
}

/// Paces `checks` checks of one key over `span`, returning the admitted
/// count and the limiter's counters.
async fn paced_load(limiter: &RedisLimiter, checks: u32, span: Duration) -> (u32, RedisStats) {
    let start = tokio::time::Instant::now();
    let mut admitted = 0;
    for i in 0..checks {
        tokio::time::sleep_until(start + span * i / checks).await;
        if limiter.check("hot").await.unwrap().is_allowed() {
            admitted += 1;
        }
    }
    (admitted, limiter.stats())
}

#[tokio::test]
async fn the_denial_cache_saves_round_trips_under_a_mostly_denied_load() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // 200 per second with a burst of 10, asked 2,000 times a second for
    // 0.6 s: about 130 of 1,200 admitted, 89% denied.
    let quota = Quota::per_second(200).burst(10);
    let (checks, span) = (1200, Duration::from_millis(600));
    let cached = RedisLimiter::gcra(quota).prefix("c:");
    let cached = cached.connect(&server.url()).await.unwrap();
    let plain = RedisLimiter::gcra(quota).prefix("p:").denial_cache(0);
    let plain = plain.connect(&server.url()).await.unwrap();
    let mut c = raw(&server).await;
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut c)
        .await
        .unwrap();
    let (a_cached, s_cached) = paced_load(&cached, checks, span).await;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut c)
        .await
        .unwrap();
    let (a_plain, s_plain) = paced_load(&plain, checks, span).await;
    let denied = 1.0 - f64::from(a_plain) / f64::from(checks);
    let saved = 1.0 - s_cached.round_trips as f64 / s_plain.round_trips as f64;
    eprintln!(
        "denial cache: {checks} checks, {:.1}% denied; round trips {} with the cache, {} without: \
         {:.1}% saved; admitted {a_cached} with, {a_plain} without",
        denied * 100.0,
        s_cached.round_trips,
        s_plain.round_trips,
        saved * 100.0
    );
    assert!(denied > 0.8, "{denied}");
    // A check is one round trip, and a script load (the other tests'
    // `SCRIPT FLUSH`) two more.
    let sent = |s: &RedisStats| s.round_trips - 2 * s.script_loads;
    assert_eq!(sent(&s_plain), u64::from(checks));
    assert_eq!(s_cached.cached_denials + sent(&s_cached), u64::from(checks));
    // Redis' own count of the cached run's scripts agrees.
    let evalsha = info
        .lines()
        .find(|l| l.starts_with("cmdstat_evalsha:"))
        .and_then(|l| l.split(['=', ',']).nth(1))
        .and_then(|n| n.parse::<u64>().ok())
        .expect("cmdstat_evalsha");
    // Each load sends one `EVALSHA` again (and one `SCRIPT LOAD`).
    let evalsha_sent = s_cached.round_trips - s_cached.script_loads;
    assert!(
        evalsha.abs_diff(evalsha_sent) <= 1,
        "{evalsha} vs {evalsha_sent}"
    );
    assert!(saved > 0.5, "{saved}");
    // The cache never admits more: it only answers denials.
    assert!(a_cached <= a_plain + 2, "{a_cached} vs {a_plain}");
}

#[tokio::test]
async fn async_check_answers_cached_denials_without_waiting() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let limiter = RedisLimiter::gcra(Quota::per_hour(1))
        .connect(&server.url())
        .await
        .unwrap();
    assert!(AsyncCheck::<str>::check_now(&limiter, "k", 1).is_none());
    assert!(limiter.check_async("k", 1).await.unwrap().is_allowed());
    assert!(!limiter.check_async("k", 1).await.unwrap().is_allowed());
    let d = AsyncCheck::<str>::check_now(&limiter, "k", 1)
        .expect("cached")
        .unwrap();
    assert!(!d.is_allowed());
    assert!(d.retry_after().unwrap() > Duration::from_secs(3500));
    assert!(matches!(
        AsyncCheck::<str>::check_now(&limiter, "", 1),
        Some(Err(RedisCheckError::EmptyKey))
    ));
}

#[test]
fn the_blocking_wrapper_checks_from_plain_threads() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let limiter = BlockingRedisLimiter::connect(
        RedisLimiter::sliding_window_counter(Quota::per_minute(100)),
        &server.url(),
    )
    .unwrap();
    let admitted: u32 = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    (0..40)
                        .filter(|_| limiter.check("shared").unwrap().is_allowed())
                        .count() as u32
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(admitted, 100);
    let r = limiter.check_many(&["a", "b"], 1);
    assert!(r.iter().all(Result::is_ok));
}

/// Hammers one key from 2 tasks for 1.5 s while the server is killed at
/// 0.4 s and restarted at 0.9 s; returns the counters and the admissions.
async fn kill_and_restart(policy: FailurePolicy) -> (RedisStats, u64) {
    let mut server = RedisServer::start().expect("checked by the caller");
    let limiter = RedisLimiter::gcra(Quota::per_second(1000).burst(50))
        .prefix("f:")
        .timeout(Duration::from_millis(50))
        .failure_cooldown(Duration::from_millis(100))
        .on_failure(policy)
        .connect(&server.url())
        .await
        .unwrap();
    let start = Instant::now();
    let stop = start + Duration::from_millis(1500);
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let l = limiter.clone();
            tokio::spawn(async move {
                let mut admitted = 0u64;
                while Instant::now() < stop {
                    match l.check("k").await {
                        Ok(d) if d.is_allowed() => admitted += 1,
                        Ok(_) => {}
                        Err(e) => assert!(e.is_unavailable(), "{e}"),
                    }
                    tokio::time::sleep(Duration::from_micros(500)).await;
                }
                admitted
            })
        })
        .collect();
    tokio::time::sleep_until((start + Duration::from_millis(400)).into()).await;
    server.kill();
    tokio::time::sleep_until((start + Duration::from_millis(900)).into()).await;
    server.restart().expect("restart");
    let restarted = limiter.stats();
    let mut admitted = 0;
    for t in tasks {
        admitted += t.await.unwrap();
    }
    let s = limiter.stats();
    assert!(
        s.decided_by_redis > restarted.decided_by_redis + 10,
        "{policy:?}: no reconnection after the restart: {restarted:?} then {s:?}"
    );
    (s, admitted)
}

/// Runs [`kill_and_restart`] under `policy` and checks that the outage's
/// checks were all decided by that policy.
async fn outage_decided_by(policy: FailurePolicy) {
    if RedisServer::start().is_none() {
        return;
    }
    let (s, admitted) = kill_and_restart(policy).await;
    eprintln!(
        "{policy:?}: {} by redis, {} errors, {} failed open, {} failed closed, \
         {} by the local fallback, {} cached denials; {admitted} admitted",
        s.decided_by_redis,
        s.errors,
        s.failed_open,
        s.failed_closed,
        s.local_fallback,
        s.cached_denials
    );
    let outage = match policy {
        FailurePolicy::Error => s.errors,
        FailurePolicy::FailOpen => s.failed_open,
        FailurePolicy::FailClosed => s.failed_closed,
        _ => s.local_fallback,
    };
    assert!(outage > 10, "{policy:?}: {s:?}");
    let others = s.errors + s.failed_open + s.failed_closed + s.local_fallback - outage;
    assert_eq!(others, 0, "{policy:?}: {s:?}");
}

#[tokio::test]
async fn redis_down_returns_the_typed_error_by_default() {
    outage_decided_by(FailurePolicy::Error).await;
}

#[tokio::test]
async fn redis_down_fails_open() {
    outage_decided_by(FailurePolicy::FailOpen).await;
}

#[tokio::test]
async fn redis_down_fails_closed() {
    outage_decided_by(FailurePolicy::FailClosed).await;
}

#[tokio::test]
async fn redis_down_falls_back_to_a_local_limiter() {
    outage_decided_by(FailurePolicy::LocalFallback { fleet_size: 4 }).await;
}

/// While Redis is down one check waits out the timeout and opens the
/// breaker; the checks after it decide by the policy with no round trip
/// (or return `CircuitOpen` under the error policy) until the cooldown
/// ends on the limiter's clock, when one check probes Redis again; once
/// a probe succeeds, Redis decides again.
#[tokio::test]
async fn after_a_failure_checks_skip_redis_for_the_cooldown() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let clock = ManualClock::new();
    let url = server.url();
    let build = |policy, prefix: &'static str| {
        RedisLimiter::gcra(Quota::per_second(100).burst(10))
            .prefix(prefix)
            .timeout(Duration::from_millis(50))
            .failure_cooldown(Duration::from_secs(1))
            .on_failure(policy)
            .clock(clock.clone())
    };
    let open = build(FailurePolicy::FailOpen, "bo:")
        .connect(&url)
        .await
        .unwrap();
    let strict = build(FailurePolicy::Error, "be:")
        .connect(&url)
        .await
        .unwrap();
    assert!(open.check("k").await.unwrap().is_allowed());
    assert!(strict.check("k").await.unwrap().is_allowed());
    server.kill();
    // The first check after the kill makes a round trip, which fails.
    assert!(open.check("k").await.unwrap().is_allowed());
    let e = strict.check("k").await.unwrap_err();
    assert!(
        matches!(
            e,
            RedisCheckError::Timeout(_) | RedisCheckError::Connection(_)
        ),
        "{e}"
    );
    let failed = open.stats();
    assert_eq!((failed.failed_open, failed.short_circuited), (1, 0));
    clock.advance(Duration::from_millis(400));
    for _ in 0..50 {
        assert!(open.check("k").await.unwrap().is_allowed());
    }
    match strict.check("k").await {
        Err(RedisCheckError::CircuitOpen(wait)) => assert_eq!(wait, Duration::from_millis(600)),
        other => panic!("{other:?}"),
    }
    let skipped = open.stats();
    assert_eq!(skipped.round_trips, failed.round_trips);
    assert_eq!((skipped.short_circuited, skipped.failed_open), (50, 51));
    // The cooldown is over: the next check is a round trip again (a
    // probe), and the breaker closes once one succeeds.
    server.restart().expect("restart");
    clock.advance(Duration::from_millis(600));
    let _ = open.check("k").await;
    assert!(open.stats().round_trips > skipped.round_trips);
    let mut recovered = false;
    for _ in 0..100 {
        let before = open.stats().decided_by_redis;
        clock.advance(Duration::from_secs(1));
        let _ = open.check("k").await;
        if open.stats().decided_by_redis > before {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recovered, "{:?}", open.stats());
    // Closed again: every check goes to Redis.
    let closed = open.stats();
    for _ in 0..5 {
        open.check("k").await.unwrap();
    }
    assert_eq!(open.stats().decided_by_redis, closed.decided_by_redis + 5);
}
