//! Serving the router over the Env's listener, connection by connection, with hyper's HTTP/1 server: a
//! client must finish sending its request headers within `HEADER_READ_TIMEOUT` or its connection is
//! closed, so slow-loris connections cannot pile up (Go's `ReadHeaderTimeout`).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;

/// How long a client may take to send a request's headers (and how long an idle keep-alive
/// connection waits for the next request).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts connections forever and serves each on its own task.
pub async fn serve<L>(mut listener: L, router: Router)
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    loop {
        let (stream, remote) = listener.accept().await;
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(%remote, error = %e, "HTTP connection ended with an error");
            }
        });
    }
}
