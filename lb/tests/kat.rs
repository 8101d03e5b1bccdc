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
