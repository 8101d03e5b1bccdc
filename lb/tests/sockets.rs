//! The heterogeneous scenario over real sockets (the example's code, ten
//! hyper backends on 127.0.0.1, latency maxima scaled by 1/20): the
//! ordering the simulation found holds, with wide margins. Only orderings
//! are asserted, never timings; `examples/sockets.rs` prints the figures.

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../examples/sockets.rs"]
mod sockets;

use sysblocks_lb::{PeakEwma, RoundRobin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_ewma_keeps_the_slow_backends_tail_out() {
    // Maxima 0.05, 0.5, 5 and 50 ms; 3,000 requests from 50 clients.
    let backends = sockets::start_backends(0.05).await;
    let addrs = &backends.addrs;
    let rr = sockets::run_lb(addrs, RoundRobin::new(), 3_000, 50).await;
    let ewma = sockets::run_lb(addrs, PeakEwma::with_seed(2), 3_000, 50).await;
    // The backends counted every request.
    assert_eq!(backends.served().iter().sum::<u64>(), 6_000);
    let [_, rr99, rr999] = sockets::quantiles(&rr);
    let [_, ewma99, ewma999] = sockets::quantiles(&ewma);
    // Round robin sends a tenth of the requests to the 50 ms backend, so
    // its p99 lies in that backend's range; peak EWMA learns to avoid it.
    assert!(rr99 > 5.0, "round robin p99 {rr99:.2} ms");
    assert!(
        ewma99 < rr99,
        "p99: peak EWMA {ewma99:.2} vs round robin {rr99:.2}"
    );
    assert!(
        ewma999 < rr999,
        "p99.9: peak EWMA {ewma999:.2} vs round robin {rr999:.2}"
    );
}
