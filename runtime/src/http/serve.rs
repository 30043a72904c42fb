//! Serving the router over the Env's listener, connection by connection, with hyper's HTTP/1 server: a
//! connection with no request in progress for `HEADER_READ_TIMEOUT` (a client that never finishes its
//! headers, or an idle keep-alive) is closed, so slow-loris connections cannot pile up (Go's
//! `ReadHeaderTimeout` and `IdleTimeout`). The watchdog runs on `tokio::time`, which the simulator drives
//! (hyper's own header timer reads the real clock, so it is not used); and one client address
//! may hold at most `HTTP_CONNS_PER_CLIENT_MAX` connections (each blocking query holds one), beyond which
//! it gets Consul's 429.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;

/// How long a client may take to send a request's headers (and how long an idle keep-alive
/// connection waits for the next request).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Most concurrent connections from one client address. Consul's `http_max_conns_per_client` defaults to
/// 200; Conclave allows more so that one host running many watchers (or a test) is not refused.
pub const HTTP_CONNS_PER_CLIENT_MAX: usize = 2048;

const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/plain\r\n\
connection: close\r\ncontent-length: 81\r\n\r\n\
Your IP is issuing too many concurrent connections, please rate limit your calls\n";

/// Open connections per client address; a slot is given back when its connection ends.
#[derive(Clone, Default)]
struct ConnectionCounts(Arc<Mutex<BTreeMap<IpAddr, usize>>>);

struct Slot(ConnectionCounts, IpAddr);

impl ConnectionCounts {
    fn take(&self, ip: IpAddr) -> Option<Slot> {
        let mut counts = self.0.lock().expect("connection counts lock");
        let count = counts.entry(ip).or_insert(0);
        if *count >= HTTP_CONNS_PER_CLIENT_MAX {
            return None;
        }
        *count += 1;
        Some(Slot(self.clone(), ip))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.0 .0.lock().expect("connection counts lock");
        if let Some(count) = counts.get_mut(&self.1) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.1);
            }
        }
    }
}

/// Accepts connections forever and serves each on its own task; with `tls` (the HTTPS port) each
/// connection first completes a TLS handshake, within `HEADER_READ_TIMEOUT`.
pub async fn serve<L>(mut listener: L, router: Router, tls: Option<tokio_rustls::TlsAcceptor>)
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    L::Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let counts = ConnectionCounts::default();
    loop {
        let (mut stream, remote) = listener.accept().await;
        let Some(slot) = counts.take(remote.ip()) else {
            tracing::debug!(%remote, "refused: too many connections from this address");
            tokio::spawn(async move {
                let _ = stream.write_all(TOO_MANY_CONNECTIONS).await;
                let _ = stream.shutdown().await;
            });
            continue;
        };
        let activity = Arc::new(Activity::new());
        let service = {
            let (router, activity) = (router.clone(), activity.clone());
            tower::service_fn(move |request: axum::http::Request<hyper::body::Incoming>| {
                let (router, activity) = (router.clone(), activity.clone());
                async move {
                    let _busy = activity.begin();
                    router.oneshot(request.map(axum::body::Body::new)).await
                }
            })
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_connection(stream, remote, service, activity).await,
                Some(acceptor) => match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => serve_connection(stream, remote, service, activity).await,
                    Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                },
            }
        });
    }
}

/// Serves HTTP/1 on one connection until it ends or stays idle for `HEADER_READ_TIMEOUT`.
async fn serve_connection<S, F>(stream: S, remote: SocketAddr, service: F, activity: Arc<Activity>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: tower::Service<
            axum::http::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    F::Future: Send + 'static,
{
    let connection = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    tokio::select! {
        served = connection => if let Err(e) = served {
            tracing::debug!(%remote, error = %e, "HTTP connection ended with an error");
        },
        () = activity.idle_for(HEADER_READ_TIMEOUT) => {
            tracing::debug!(%remote, "closing a connection idle or without complete headers");
        }
    }
}

/// Whether a connection is serving a request, and since when it has not.
struct Activity {
    in_flight: std::sync::atomic::AtomicUsize,
    idle_since: Mutex<tokio::time::Instant>,
}

struct Busy<'a>(&'a Activity);

impl Activity {
    fn new() -> Activity {
        Activity { in_flight: 0.into(), idle_since: Mutex::new(tokio::time::Instant::now()) }
    }

    fn begin(&self) -> Busy<'_> {
        self.in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Busy(self)
    }

    /// Returns once no request has been in progress for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let idle_since = *self.idle_since.lock().expect("activity lock");
            let now = tokio::time::Instant::now();
            if self.in_flight.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                tokio::time::sleep(limit).await; // busy: look again later
                continue;
            }
            if now >= idle_since + limit {
                return;
            }
            tokio::time::sleep_until(idle_since + limit).await;
        }
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        *self.0.idle_since.lock().expect("activity lock") = tokio::time::Instant::now();
        self.0.in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}
