//! The TCP side of the DNS server: each connection carries queries framed by a 2-byte length
//! (RFC 1035 §4.2.2, RFC 7766), answered in order; an idle connection is closed.

use std::sync::Arc;
use std::time::Duration;

use conclave_core::dns::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use super::DnsServer;
use crate::env::Env;

/// A connection that sends no complete query for this long is closed (RFC 7766 §6.2.3 suggests seconds).
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Open DNS connections at once; past it new ones are closed at once.
const TCP_CONNECTIONS_MAX: usize = 256;
/// Queries answered on one connection before it is closed.
const TCP_QUERIES_PER_CONNECTION_MAX: usize = 10_000;

pub async fn serve<E: Env>(server: Arc<DnsServer<E>>, mut listener: E::Listener) {
    use axum::serve::Listener;
    let open = Arc::new(Semaphore::new(TCP_CONNECTIONS_MAX));
    loop {
        let (stream, from) = listener.accept().await;
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::debug!(%from, "DNS TCP connection refused: too many open");
            continue;
        };
        let server = server.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(&server, stream).await {
                tracing::debug!(error = %e, %from, "DNS TCP connection ended");
            }
            drop(permit);
        });
    }
}

async fn connection<E: Env>(server: &DnsServer<E>, mut stream: E::Stream) -> std::io::Result<()> {
    let mut query = Vec::new();
    for _ in 0..TCP_QUERIES_PER_CONNECTION_MAX {
        let read = async {
            let len = usize::from(stream.read_u16().await?);
            query.resize(len, 0);
            stream.read_exact(&mut query).await?;
            Ok::<_, std::io::Error>(())
        };
        match tokio::time::timeout(TCP_IDLE_TIMEOUT, read).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        }
        // A message we do not answer (no readable header) ends the connection: the stream is not DNS.
        let Some(reply) = server.answer(&query, Transport::Tcp).await else { return Ok(()) };
        let Ok(len) = u16::try_from(reply.len()) else { return Ok(()) };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&reply);
        stream.write_all(&framed).await?;
        stream.flush().await?;
    }
    Ok(())
}
