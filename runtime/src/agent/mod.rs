//! One agent: starts a node from resolved settings and serves its faces — the HTTP API and the DNS
//! interface — beside the node's own protocols. The `conclave` binary (`cli agent`) and the simulator
//! both start agents here, so the simulator runs exactly what the binary runs, with only the Env swapped.
//! The agent also runs the `watches` of its configuration ([`watches`]).

pub mod watches;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;

use crate::config::NodeConfig;
use crate::env::Env;
use crate::node::{self, Node};

/// Everything that must succeed before the agent reports itself started: identity, the data dir, Raft
/// (on servers) and the services of the configuration files.
pub async fn start<E: Env>(env: E, config: NodeConfig) -> anyhow::Result<Arc<Node<E>>> {
    node::start_node(env, config).await
}

/// Binds every port (an address in use is an error naming it, before anything is served), then runs the
/// node's tasks and its faces until the HTTP server fails or the agent leaves.
pub async fn run<E: Env>(node: Arc<Node<E>>) -> anyhow::Result<()> {
    let sockets = node::bind_sockets(&node).await?;
    let http_listener = match node.config.http_addr() {
        Some(addr) => Some(node::bind(&node.env, addr, "HTTP").await?),
        None => None,
    };
    let https = match node.config.https_addr() {
        Some(addr) => {
            let acceptor =
                crate::security::tls::https_acceptor(&node.config.security.https, node.security.https_auto.clone())
                    .map_err(|e| anyhow::anyhow!(e))?;
            Some((node::bind(&node.env, addr, "HTTPS").await?, acceptor))
        }
        None => None,
    };
    let dns_addr = SocketAddr::new(node.config.client_addr, node.config.ports.dns);
    let dns_udp =
        node.env.bind_udp(dns_addr).await.with_context(|| format!("cannot listen for DNS on {dns_addr}/udp"))?;
    let dns_tcp = node::bind(&node.env, dns_addr, "DNS").await?;
    tracing::info!(
        target: "conclave::event",
        node = %node.config.node_name,
        rpc = %node.config.rpc_addr(),
        http = ?node.config.http_addr(),
        https = ?node.config.https_addr(),
        "listening"
    );

    node::spawn_tasks(&node, sockets);
    tokio::spawn(crate::dns::serve(node.clone(), dns_udp, dns_tcp));
    let router = crate::http::router(node.clone(), crate::dns::upstream::routes());
    node.install_forwarded_request_handler(Arc::new(crate::http::forward::RouterHandler(router.clone())));
    watches::spawn_configured(&node);
    let mut servers = tokio::task::JoinSet::new();
    if let Some(listener) = http_listener {
        servers.spawn(crate::http::serve::serve(listener, router.clone(), None));
    }
    if let Some((listener, acceptor)) = https {
        servers.spawn(crate::http::serve::serve(listener, router, Some(acceptor)));
    }
    tokio::select! {
        _ = servers.join_next() => anyhow::bail!("HTTP server stopped"),
        _ = node.shutdown.notified() => tracing::info!(target: "conclave::event", node = %node.config.node_name, "left"),
    }
    Ok(())
}
