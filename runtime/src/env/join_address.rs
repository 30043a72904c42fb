//! Join addresses as users write them (`-join`, `-retry-join`, `/v1/agent/join/:address`): an IP, an
//! `ip:port`, a host name or `host:port`, with the LAN serf port as the default.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use anyhow::Context;

/// Resolves a `-join` address: `host` or `host:port`, LAN port by default (Consul's rule).
pub fn resolve_join(addr: &str, default_port: u16) -> anyhow::Result<SocketAddr> {
    if let Ok(sock) = addr.parse::<SocketAddr>() {
        return Ok(sock);
    }
    if let Ok(ip) = addr.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    let with_port = if addr.contains(':') { addr.to_string() } else { format!("{addr}:{default_port}") };
    with_port
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve join address {addr:?}"))?
        .next()
        .with_context(|| format!("join address {addr:?} resolves to nothing"))
}
