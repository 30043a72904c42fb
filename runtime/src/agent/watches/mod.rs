//! Watches: blocking-query loops over the HTTP API that run a handler each time the watched data
//! changes, as Consul's `api/watch` package has them. [`plan`] is the loop, [`handler`] what it runs.
//! The agent runs the `watches` of its configuration files ([`spawn_configured`]) against its own HTTP
//! port, as Consul's agent does; `conclave watch` runs one through its HTTP flags.

pub mod handler;
pub mod plan;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use crate::env::{http_client, Env};
use crate::node::Node;

/// Starts every configured watch; they run until the process ends.
pub fn spawn_configured<E: Env>(node: &Arc<Node<E>>) {
    if node.config.watches.is_empty() {
        return;
    }
    let Some(addr) = node.config.http_addr() else {
        tracing::error!(
            "watches need the HTTP port; none of the {} configured watches runs",
            node.config.watches.len()
        );
        return;
    };
    for spec in node.config.watches.clone() {
        let fetch = agent_fetch(loopback(addr), spec.token.clone());
        let handler = spec.handler.clone();
        tokio::spawn(plan::run(spec, fetch, move |index, data| {
            let handler = handler.clone();
            async move { handler::invoke(&handler, index, &data).await }
        }));
    }
}

/// The agent's HTTP address as a client reaches it: a wildcard listen address is reached on loopback.
fn loopback(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

/// GETs against the agent's own HTTP port, with the watch's token if it has one.
fn agent_fetch(addr: SocketAddr, token: Option<String>) -> plan::Fetch {
    Box::new(move |path| {
        let token = token.clone();
        Box::pin(async move {
            let stream =
                tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connecting to {addr}: {e}"))?;
            let headers: Vec<(&str, &str)> = token.iter().map(|t| ("x-consul-token", t.as_str())).collect();
            let host = addr.to_string();
            http_client::request_with_headers(stream, "GET", &host, &path, Vec::new(), headers)
                .await
                .map_err(|e| e.to_string())
        })
    })
}
