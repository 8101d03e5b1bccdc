//! Async health probes: the [`Probe`] trait the async checker runs (any
//! `Fn(&T) -> impl Future<Output = bool>` is one), and the ready-made
//! TCP-connect and HTTP GET probes.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

/// The future a [`Probe`] returns: `true` when the backend is healthy.
pub type ProbeFuture = Pin<Box<dyn Future<Output = bool> + Send + 'static>>;

/// An async health probe of one backend, run by
/// [`Balancer::spawn_async_health_checker`](crate::Balancer::spawn_async_health_checker).
///
/// `probe` should only start the work (take what it needs from the
/// backend's value, an address say) and return; the future does the
/// rest. The checker runs each future on its own task under a timeout, so
/// a future that panics or never completes counts as a failed probe.
/// Closures `Fn(&T) -> F` where `F: Future<Output = bool> + Send + 'static`
/// are probes.
pub trait Probe<T>: Send + Sync + 'static {
    /// Starts probing `backend`.
    fn probe(&self, backend: &T) -> ProbeFuture;
}

impl<T, P, F> Probe<T> for P
where
    P: Fn(&T) -> F + Send + Sync + 'static,
    F: Future<Output = bool> + Send + 'static,
{
    fn probe(&self, backend: &T) -> ProbeFuture {
        Box::pin(self(backend))
    }
}

/// A probe that passes when a TCP connection to the backend's address
/// (`addr_of` reads it from the backend's value) is accepted.
pub fn tcp_connect<T, A>(addr_of: A) -> impl Probe<T>
where
    A: Fn(&T) -> SocketAddr + Send + Sync + 'static,
{
    move |backend: &T| {
        let addr = addr_of(backend);
        async move { tokio::net::TcpStream::connect(addr).await.is_ok() }
    }
}

/// A probe that passes when `GET path` over HTTP/1.1 to the backend's
/// address (`addr_of` reads it from the backend's value) answers 200, as
/// Envoy's HTTP health check expects by default. One fresh connection per
/// probe, closed after the answer's head.
#[cfg(feature = "hyper")]
pub fn http_get<T, A>(addr_of: A, path: &str) -> impl Probe<T>
where
    A: Fn(&T) -> SocketAddr + Send + Sync + 'static,
{
    let path: std::sync::Arc<str> = path.into();
    move |backend: &T| {
        let addr = addr_of(backend);
        let path = std::sync::Arc::clone(&path);
        async move { http_get_once(addr, &path).await }
    }
}

#[cfg(feature = "hyper")]
async fn http_get_once(addr: SocketAddr, path: &str) -> bool {
    use http_body_util::Empty;
    use hyper::body::Bytes;

    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let io = hyper_util::rt::TokioIo::new(stream);
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(io).await else {
        return false;
    };
    let Ok(request) = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
    else {
        return false;
    };
    // The connection is driven beside the request and dropped with it.
    tokio::select! {
        answer = sender.send_request(request) => {
            matches!(answer, Ok(res) if res.status() == http::StatusCode::OK)
        }
        _ = conn => false,
    }
}
