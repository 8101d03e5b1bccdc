//! Known answers: smooth weighted round robin against nginx's published
//! sequence and an independent reference implementation.

use std::io::ErrorKind;
use std::process::Command;

use sysblocks_lb::{Balancer, Context, SmoothWeightedRoundRobin, Strategy};

fn build<S: Strategy>(s: S, weights: &[u32]) -> Balancer<usize, S> {
    let mut b = Balancer::builder(s);
    for (i, &w) in weights.iter().enumerate() {
        b = b.backend(i, w);
    }
    b.build().expect("valid")
}

fn sequence<S: Strategy>(b: &Balancer<usize, S>, n: usize) -> Vec<usize> {
    (0..n)
        .map(|_| *b.pick(&Context::default()).expect("a backend"))
        .collect()
}

/// nginx's published example (the commit introducing smooth weighted round
/// robin, and ngx_http_upstream_round_robin.c): weights a=5, b=1, c=1 give
/// `a a b a c a a`, not `c b a a a a a`.
#[test]
fn swrr_matches_nginx_published_sequence() {
    let b = build(SmoothWeightedRoundRobin::new(), &[5, 1, 1]);
    let names = ['a', 'b', 'c'];
    let got: String = sequence(&b, 14).into_iter().map(|i| names[i]).collect();
    assert_eq!(got, "aabacaaaabacaa");
}

/// A plain reference written independently in Python (run with python3),
/// against which the crate's sequence is compared on several weight sets.
///
/// `None` only when python3 is not installed (outside CI, where it must
/// be); anything else that goes wrong with the program (it cannot start,
/// exits with an error, prints something other than `n` picks) fails the
/// test: a broken reference must not pass for a skipped one.
fn python_swrr(weights: &[u32], n: usize) -> Option<Vec<usize>> {
    let script = format!(
        "w={weights:?}\ncur=[0]*len(w)\nt=sum(w)\nout=[]\n\
         for _ in range({n}):\n\
         \x20   for i in range(len(w)): cur[i]+=w[i]\n\
         \x20   b=max(range(len(w)), key=lambda i:(cur[i],-i))\n\
         \x20   cur[b]-=t\n\
         \x20   out.append(b)\n\
         print(' '.join(map(str,out)))\n"
    );
    let out = match Command::new("python3").arg("-c").arg(script).output() {
        Ok(out) => out,
        Err(e) if e.kind() == ErrorKind::NotFound && std::env::var_os("CI").is_none() => {
            return None
        }
        Err(e) => panic!("python3 could not be run: {e}"),
    };
    assert!(
        out.status.success(),
        "python3 failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("python3 printed UTF-8");
    let picks: Vec<usize> = text
        .split_whitespace()
        .map(|t| {
            t.parse()
                .unwrap_or_else(|e| panic!("python3 printed {t:?}: {e}"))
        })
        .collect();
    assert_eq!(picks.len(), n, "python3 printed {} picks", picks.len());
    Some(picks)
}

#[test]
fn swrr_matches_independent_reference() {
    // Hand-derived for {4, 2, 1} (checked on paper): a b a c a b a.
    let b = build(SmoothWeightedRoundRobin::new(), &[4, 2, 1]);
    assert_eq!(sequence(&b, 7), vec![0, 1, 0, 2, 0, 1, 0]);
    let cases: [&[u32]; 5] = [
        &[5, 1, 1],
        &[1, 1, 1],
        &[3, 7, 2, 9],
        &[100, 1],
        &[2, 3, 5, 7, 11, 13],
    ];
    for w in cases {
        let Some(expect) = python_swrr(w, 200) else {
            eprintln!("skipped: python3 not installed");
            return;
        };
        let b = build(SmoothWeightedRoundRobin::new(), w);
        assert_eq!(sequence(&b, 200), expect, "weights {w:?}");
    }
}

mod envoy_outlier_detection {
    //! Envoy's success-rate and failure-percentage ejection on hand-computed
    //! inputs: each backend gets 100 requests in the interval, some failed.

    use std::time::Duration;

    use sysblocks_lb::{
        Balancer, Context, FailurePercentageEjection, ManualClock, OutlierDetection, RoundRobin,
        SuccessRateEjection,
    };

    /// Consecutive-failure ejection out of the way (a streak of u32::MAX).
    fn statistical_only(max_ejection_percent: u8) -> OutlierDetection {
        OutlierDetection {
            consecutive_failures: u32::MAX,
            max_ejection_percent,
            ..OutlierDetection::default()
        }
    }

    fn five(
        clock: &ManualClock,
        od: OutlierDetection,
    ) -> sysblocks_lb::BalancerBuilder<usize, RoundRobin> {
        let mut b = Balancer::builder(RoundRobin::new())
            .clock(clock.clone())
            .outlier_detection(od);
        for i in 0..5 {
            b = b.backend(i, 1);
        }
        b
    }

    /// 100 rounds of round robin; backend `i` fails its first
    /// `failures[i]` requests.
    fn drive(b: &Balancer<usize, RoundRobin>, failures: &[u32]) {
        for round in 0..100 {
            for _ in 0..failures.len() {
                let p = b.pick(&Context::default()).expect("a backend");
                if round < failures[*p] {
                    p.failure();
                } else {
                    p.success(Duration::from_millis(1));
                }
            }
        }
    }

    fn ejected(b: &Balancer<usize, RoundRobin>) -> Vec<usize> {
        b.stats()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.ejected)
            .map(|(i, _)| i)
            .collect()
    }

    /// Envoy's own example: rates 50, 100, 100, 100, 100; mean 90,
    /// deviation 20, threshold 90 - 1.9 x 20 = 52: the first goes. It goes
    /// at the first outcome after the 10 s interval, for 30 s.
    #[test]
    fn success_rate_example_from_envoy() {
        let clock = ManualClock::new();
        let b = five(&clock, statistical_only(10))
            .success_rate_ejection(SuccessRateEjection::default())
            .build()
            .unwrap();
        drive(&b, &[50, 0, 0, 0, 0]);
        assert!(ejected(&b).is_empty(), "the interval is not over");
        clock.advance(Duration::from_secs(10));
        b.pick(&Context::default())
            .unwrap()
            .success(Duration::from_millis(1));
        assert_eq!(ejected(&b), vec![0]);
        assert_eq!(b.stats()[0].times_ejected, 1);
        clock.advance(Duration::from_secs(30));
        let _ = b.pick(&Context::default());
        assert!(ejected(&b).is_empty(), "back after 30 s");
        // Ejected again by the next interval's verdict: 60 s this time. (A
        // fresh interval first: the one due at 20 s would end on the first
        // outcome below.)
        assert_eq!(b.sweep_outliers(), 0);
        drive(&b, &[50, 0, 0, 0, 0]);
        assert_eq!(b.sweep_outliers(), 1);
        clock.advance(Duration::from_secs(59));
        let _ = b.pick(&Context::default());
        assert_eq!(ejected(&b), vec![0]);
        clock.advance(Duration::from_secs(1));
        let _ = b.pick(&Context::default());
        assert!(ejected(&b).is_empty());
    }

    /// Rates 90, 95, 100, 100, 100: mean 97, variance (49 + 4 + 3 x 9) / 5
    /// = 16, deviation 4, threshold 97 - 7.6 = 89.4: 90 % stays. With a
    /// factor of 1.0 the threshold is 93: 90 % goes.
    #[test]
    fn success_rate_just_above_the_threshold_stays() {
        let clock = ManualClock::new();
        let b = five(&clock, statistical_only(10))
            .success_rate_ejection(SuccessRateEjection::default())
            .build()
            .unwrap();
        drive(&b, &[10, 5, 0, 0, 0]);
        assert_eq!(b.sweep_outliers(), 0);
        let b = five(&clock, statistical_only(10))
            .success_rate_ejection(SuccessRateEjection {
                stdev_factor: 1.0,
                ..SuccessRateEjection::default()
            })
            .build()
            .unwrap();
        drive(&b, &[10, 5, 0, 0, 0]);
        assert_eq!(b.sweep_outliers(), 1);
        assert_eq!(ejected(&b), vec![0]);
    }

    /// Fewer than `minimum_hosts` backends with `request_volume` requests:
    /// no verdict. Four backends only.
    #[test]
    fn success_rate_needs_minimum_hosts() {
        let clock = ManualClock::new();
        let mut bb = Balancer::builder(RoundRobin::new())
            .clock(clock.clone())
            .outlier_detection(statistical_only(10))
            .success_rate_ejection(SuccessRateEjection::default());
        for i in 0..4 {
            bb = bb.backend(i, 1);
        }
        let b = bb.build().unwrap();
        drive(&b, &[100, 0, 0, 0]);
        assert_eq!(b.sweep_outliers(), 0);
    }

    /// Failure percentage 85 (Envoy's default threshold): 85 failures in
    /// 100 eject, 84 do not.
    #[test]
    fn failure_percentage_threshold() {
        let clock = ManualClock::new();
        let b = five(&clock, statistical_only(100))
            .failure_percentage_ejection(FailurePercentageEjection::default())
            .build()
            .unwrap();
        drive(&b, &[85, 84, 0, 0, 0]);
        assert_eq!(b.sweep_outliers(), 1);
        assert_eq!(ejected(&b), vec![0]);
    }

    /// The cap: 40 % of five backends is two. Three exceed the failure
    /// percentage; the two with the lowest success rates go.
    #[test]
    fn max_ejection_percent_caps_and_the_worst_go_first() {
        let clock = ManualClock::new();
        let b = five(&clock, statistical_only(40))
            .failure_percentage_ejection(FailurePercentageEjection::default())
            .build()
            .unwrap();
        drive(&b, &[90, 100, 0, 95, 0]);
        assert_eq!(b.sweep_outliers(), 2);
        assert_eq!(ejected(&b), vec![1, 3]);
    }
}
