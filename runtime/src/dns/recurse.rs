//! Forwarding names outside our domain to the recursors: the query goes unchanged over UDP through the
//! Env, to each recursor in turn until one answers within `recursor_timeout`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use conclave_core::dns::UDP_BYTES_MAX;

use crate::env::{Datagram, Env};

/// Datagrams read per recursor while waiting for the answer to our query (others are stray or late).
const STRAY_DATAGRAMS_MAX: usize = 16;

/// The first recursor's answer to `query`; `None` when every one failed or timed out.
pub async fn ask<E: Env>(env: &E, recursors: &[SocketAddr], timeout: Duration, query: &[u8]) -> Option<Vec<u8>> {
    for recursor in recursors {
        match tokio::time::timeout(timeout, ask_one(env, *recursor, query)).await {
            Ok(Ok(reply)) => return Some(reply),
            Ok(Err(e)) => tracing::debug!(%recursor, error = %e, "DNS recursor failed"),
            Err(_) => tracing::debug!(%recursor, "DNS recursor timed out"),
        }
    }
    None
}

async fn ask_one<E: Env>(env: &E, recursor: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let local = match recursor.ip() {
        IpAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        IpAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    let socket = env.bind_udp(local).await?;
    socket.send_to(query, recursor).await?;
    let mut buf = vec![0u8; UDP_BYTES_MAX];
    for _ in 0..STRAY_DATAGRAMS_MAX {
        let (len, from) = socket.recv_from(&mut buf).await?;
        // The answer comes from the recursor and carries our query's ID.
        if from == recursor && len >= 2 && query.len() >= 2 && buf[..2] == query[..2] {
            return Ok(buf[..len].to_vec());
        }
    }
    Err(std::io::Error::other("no answer among the datagrams received"))
}
