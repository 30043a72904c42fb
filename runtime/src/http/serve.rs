//! Serving the router over the Env's listener, connection by connection, with hyper's HTTP/1 server: a
//! client must finish sending its request headers within `HEADER_READ_TIMEOUT` or its connection is
//! closed, so slow-loris connections cannot pile up (Go's `ReadHeaderTimeout`); and one client address
//! may hold at most `HTTP_CONNS_PER_CLIENT_MAX` connections (each blocking query holds one), beyond which
//! it gets Consul's 429.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;

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

/// Accepts connections forever and serves each on its own task.
pub async fn serve<L>(mut listener: L, router: Router)
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    L::Io: tokio::io::AsyncWrite + Unpin,
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
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let _slot = slot;
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
