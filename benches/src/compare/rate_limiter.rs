//! `rate-limiter` against governor and ratelimit
//! (`crate::workloads::rate_limiter`, the same setups as the criterion
//! bench): GCRA direct checks admitted and denied (1 and 2 threads), each of
//! our algorithms' admitted check against the same peers, keyed GCRA over
//! 100,000 keys (uniform and Zipf, 1 and 2 threads) against governor's
//! `DashMapStateStore`, and heap bytes per key.
//!
//! Each limiter reads its crate's default real clock (ours and governor the
//! TSC through `quanta`, ratelimit `clocksource`), so a direct check's time
//! includes one clock read on every side.

use std::hint::black_box;

use sysblocks_rate_limiter::{Gcra, RateLimiter};

use crate::alloc;
use crate::harness::{measured, run_timed, time_iters, Contender, Mode};
use crate::report::{throughput_series, LineChart, Report};
use crate::workloads::rate_limiter::{
    admit_quota, gov_admitting, gov_denying, gov_keyed, gov_keyed_filled, key_at, keyed_quota,
    on_threads, ours_direct, ours_gcra_denying, ours_keyed, ours_keyed_filled, ratelimit_admitting,
    ratelimit_denying, uniform_keys, zipf_keys, KEYS,
};

const KRATE: &str = "rate-limiter";

/// Adds the crate's cases to `report`.
pub fn run(mode: Mode, report: &mut Report) {
    direct(mode, report);
    keyed(mode, report);
    tower(mode, report);
    threads_chart(report);
    super::rate_limiter_redis::run(mode, report);
    if alloc::installed() {
        memory(mode, report);
    } else {
        report.missing.push((
            format!("{KRATE}: bytes per key"),
            "the counting allocator is not this binary's global allocator".to_owned(),
        ));
    }
}

/// The peers of a direct admitted check: governor and ratelimit.
fn admitting_peers<'a>(
    gov: &'a crate::workloads::rate_limiter::GovDirect,
    rl: &'a ratelimit::Ratelimiter,
) -> [Contender<'a>; 2] {
    [
        Contender::peer("governor", move |it| {
            time_iters(it, |_| {
                let _ = black_box(gov.check());
            })
        }),
        Contender::peer("ratelimit", move |it| {
            time_iters(it, |_| {
                let _ = black_box(rl.try_wait());
            })
        }),
    ]
}

fn direct(mode: Mode, report: &mut Report) {
    let gov = gov_admitting();
    let rl = ratelimit_admitting();
    let gcra = Gcra::new(admit_quota()).expect("valid quota");
    let mut contenders = vec![Contender::ours("ours", |it| {
        time_iters(it, |_| {
            black_box(gcra.check());
        })
    })];
    contenders.extend(admitting_peers(&gov, &rl));
    report.results.push(run_timed(
        KRATE,
        "GCRA direct check, admitted",
        mode,
        contenders,
    ));

    let (ours, gov_deny, rl_deny) = (ours_gcra_denying(), gov_denying(), ratelimit_denying());
    report.results.push(run_timed(
        KRATE,
        "GCRA direct check, denied",
        mode,
        vec![
            Contender::ours("ours", |it| {
                time_iters(it, |_| {
                    black_box(ours.check());
                })
            }),
            Contender::peer("governor", |it| {
                time_iters(it, |_| {
                    let _ = black_box(gov_deny.check());
                })
            }),
            Contender::peer("ratelimit", |it| {
                time_iters(it, |_| {
                    let _ = black_box(rl_deny.try_wait());
                })
            }),
        ],
    ));

    report.results.push(run_timed(
        KRATE,
        "GCRA direct check, admitted, 2 threads (ns per pair of concurrent checks)",
        mode,
        vec![
            Contender::ours("ours", |it| {
                on_threads(2, it, |_, _| {
                    black_box(gcra.check());
                })
            }),
            Contender::peer("governor", |it| {
                on_threads(2, it, |_, _| {
                    let _ = black_box(gov.check());
                })
            }),
            Contender::peer("ratelimit", |it| {
                on_threads(2, it, |_, _| {
                    let _ = black_box(rl.try_wait());
                })
            }),
        ],
    ));

    // Every algorithm of ours through the trait object users hold.
    for (name, limiter) in ours_direct(admit_quota()) {
        let mut contenders = vec![Contender::ours(format!("ours {name}"), |it| {
            time_iters(it, |_| {
                black_box(limiter.check());
            })
        })];
        contenders.extend(admitting_peers(&gov, &rl));
        report.results.push(run_timed(
            KRATE,
            &format!("{name} direct check (dyn RateLimiter), admitted"),
            mode,
            contenders,
        ));
    }
}

fn keyed(mode: Mode, report: &mut Report) {
    let n = if mode == Mode::Smoke { 1000 } else { KEYS };
    for (dist, keys) in [("uniform", uniform_keys(n)), ("Zipf(1.0)", zipf_keys(n))] {
        let keys = &keys;
        let ours = ours_keyed(Gcra::new(keyed_quota()).expect("valid quota"), n, keys);
        let gov = gov_keyed(n, keys);
        for threads in [1u64, 2] {
            let name = if threads == 1 {
                format!("keyed GCRA check, {n} keys, {dist}")
            } else {
                format!(
                    "keyed GCRA check, {n} keys, {dist}, {threads} threads \
                     (ns per {threads} concurrent checks)"
                )
            };
            report.results.push(run_timed(
                KRATE,
                &name,
                mode,
                vec![
                    Contender::ours("ours", |it| {
                        on_threads(threads, it, |t, i| {
                            black_box(ours.check_key(key_at(keys, threads, t, i)));
                        })
                    }),
                    Contender::peer("governor (DashMapStateStore)", |it| {
                        on_threads(threads, it, |t, i| {
                            let _ = black_box(gov.check_key(key_at(keys, threads, t, i)));
                        })
                    }),
                ],
            ));
        }
    }
}

/// Heap bytes per key of keyed GCRA stores holding `n` `u64` keys.
fn memory(mode: Mode, report: &mut Report) {
    let n = if mode == Mode::Smoke { 1000 } else { KEYS };
    let per_key = |bytes: isize| vec![bytes as f64 / n as f64];
    let (ours, ours_bytes) = alloc::heap_of(|| ours_keyed_filled(n));
    drop(ours);
    let (gov, gov_bytes) = alloc::heap_of(|| gov_keyed_filled(n));
    drop(gov);
    report.results.push(measured(
        KRATE,
        &format!("keyed GCRA memory, {n} u64 keys"),
        "bytes/key",
        true,
        vec![
            ("ours", true, per_key(ours_bytes)),
            ("governor (DashMapStateStore)", false, per_key(gov_bytes)),
        ],
    ));
}

/// Checks per second against threads: the direct GCRA check and the keyed
/// checks. A 1-thread case times one check per iteration; a 2-thread case
/// times one check on each thread per iteration.
fn threads_chart(report: &mut Report) {
    let find = |pred: &dyn Fn(&str) -> bool| {
        report
            .results
            .iter()
            .find(|r| r.krate == KRATE && pred(&r.name))
    };
    let mut series = throughput_series(
        "direct GCRA: ",
        &[
            (1, find(&|n| n == "GCRA direct check, admitted"), 1.0),
            (
                2,
                find(&|n| n.starts_with("GCRA direct check, admitted, 2 threads")),
                2.0,
            ),
        ],
    );
    for dist in ["uniform", "Zipf"] {
        let keyed = |t: bool| {
            find(&move |n: &str| {
                n.starts_with("keyed GCRA check,")
                    && n.contains(dist)
                    && n.contains("2 threads") == t
            })
        };
        series.extend(throughput_series(
            &format!("keyed {dist}: "),
            &[(1, keyed(false), 1.0), (2, keyed(true), 2.0)],
        ));
    }
    report.charts.push(LineChart {
        krate: KRATE.to_owned(),
        title: "GCRA checks against threads (admitted direct; keyed, 100,000 keys)".to_owned(),
        x_label: "threads".to_owned(),
        y_label: "million checks/s".to_owned(),
        log_x: false,
        series,
    });
}

/// One request through a rate-limiting tower layer, admitted: ours over the
/// local GCRA against tower_governor over governor
/// (`crate::workloads::rate_limiter::tower_case`), with the response fields
/// off and on.
fn tower(mode: Mode, report: &mut Report) {
    use crate::workloads::rate_limiter::tower_case::{call, gov_tower, ours_tower};
    use http::Request;
    for fields in [false, true] {
        let mut ours = ours_tower(fields);
        let mut gov = gov_tower(fields);
        // Like with like: with headers on, both sides put their fields on
        // every admitted response (ours `RateLimit-Policy` and `RateLimit`,
        // tower_governor's `use_headers()` `x-ratelimit-limit` and
        // `x-ratelimit-remaining`); with headers off, neither does.
        let o = call(&mut ours, Request::new(()));
        let g = gov(Request::new(()));
        assert!(
            o.status().is_success() && g.status().is_success(),
            "{o:?} {g:?}"
        );
        for (res, names) in [
            (&o, ["ratelimit-policy", "ratelimit"]),
            (&g, ["x-ratelimit-limit", "x-ratelimit-remaining"]),
        ] {
            for n in names {
                assert_eq!(res.headers().contains_key(n), fields, "{n}");
            }
        }
        let name = if fields {
            "tower layer over GCRA, admitted, with rate-limit headers (ns per request)"
        } else {
            "tower layer over GCRA, admitted (ns per request)"
        };
        report.results.push(run_timed(
            KRATE,
            name,
            mode,
            vec![
                Contender::ours("ours (HttpRateLimit)", |it| {
                    time_iters(it, |_| {
                        black_box(call(&mut ours, black_box(Request::new(()))));
                    })
                }),
                Contender::peer("tower_governor", |it| {
                    time_iters(it, |_| {
                        black_box(gov(black_box(Request::new(()))));
                    })
                }),
            ],
        ));
    }
}
