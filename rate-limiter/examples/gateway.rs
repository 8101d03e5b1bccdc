//! A gateway on 127.0.0.1 behind the HTTP rate-limiting layer: each client
//! (its `X-Api-Key` header, else its IP address) gets 5 requests a minute
//! with a burst of 5 (GCRA); a denial is a 429 with `Retry-After`, and
//! every response carries `RateLimit-Policy` and `RateLimit`.
//!
//! ```text
//! cargo run --release -p sysblocks-rate-limiter --features tower --example gateway [PORT]
//! curl -i -H 'X-Api-Key: alice' http://127.0.0.1:PORT/
//! ```
//!
//! `tests/gateway.rs` runs [`serve`] on a manual clock and sends it real
//! HTTP requests.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use http::{Request, Response};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use sysblocks_rate_limiter::tower::{HttpRateLimitLayer, Policy};
use sysblocks_rate_limiter::{Gcra, Keyed, Quota};
use tokio::net::TcpListener;
use tower::{service_fn, ServiceBuilder};

/// The gateway's quota per client.
pub(crate) const QUOTA: Quota = Quota::per_minute(5);

/// The peer address of a request's connection, added by [`serve`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub(crate) IpAddr);

/// The rate-limiting key: the `X-Api-Key` header if present, else the
/// client's IP address.
pub(crate) fn client_key(req: &Request<Incoming>) -> String {
    match req.headers().get("x-api-key").map(|v| v.to_str()) {
        Some(Ok(key)) => format!("key:{key}"),
        _ => match req.extensions().get::<ClientIp>() {
            Some(ClientIp(ip)) => format!("ip:{ip}"),
            None => "unknown".to_owned(),
        },
    }
}

/// Serves connections from `listener` until it fails, limiting each client
/// with `limiter` and announcing `policy`.
///
/// # Errors
///
/// An accept error.
pub(crate) async fn serve(
    listener: TcpListener,
    limiter: Keyed<String, Gcra>,
    policy: Policy,
) -> std::io::Result<()> {
    let layer = HttpRateLimitLayer::new(limiter, client_key).policy(policy);
    loop {
        let (stream, peer): (_, SocketAddr) = listener.accept().await?;
        let svc = ServiceBuilder::new()
            .map_request(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ClientIp(peer.ip()));
                req
            })
            .layer(layer.clone())
            .service(service_fn(|_req: Request<Incoming>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello\n"))))
            }));
        tokio::spawn(async move {
            // A client that goes away mid-request is not the server's error.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc))
                .await;
        });
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::args().nth(1) {
        Some(p) => p.parse()?,
        None => 0,
    };
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let limiter = Keyed::builder(Gcra::new(QUOTA)?)
        .max_keys(100_000)
        .build()?;
    println!("listening on http://{}", listener.local_addr()?);
    serve(listener, limiter, Policy::from_quota("per-client", QUOTA)?).await?;
    Ok(())
}
