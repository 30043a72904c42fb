//! Forwarding API requests between agents. A client agent sends catalog, health, status and operator
//! requests (and DNS queries about the domain) to a server over RPC, trying the next server when one is
//! dead; the server runs them through the handler its HTTP face installed, so the answer (status,
//! headers, body) is exactly what the server would have given. The node knows nothing of HTTP beyond
//! this request/answer shape.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::Node;
use crate::env::Env;
use crate::raft::messages::{Reply, Request};

/// Longest a forwarded request may take: the longest blocking query plus slack.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(11 * 60);

/// An API request as it travels between agents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardedRequest {
    pub method: String,
    pub path_and_query: String,
    pub body: Vec<u8>,
    /// The request's ACL token (the client agent's default token when it carried none).
    pub token: String,
}

/// A server's answer to a forwarded request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardedAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a forwarded request got no server's answer; the text is what the client is shown (as a 500).
pub type ForwardFailure = String;

/// What a server's face installs to answer forwarded requests (the HTTP API's router).
pub trait ForwardedRequestHandler: Send + Sync {
    fn handle(
        &self,
        request: ForwardedRequest,
    ) -> Pin<Box<dyn Future<Output = Result<ForwardedAnswer, String>> + Send>>;
}

impl<E: Env> Node<E> {
    /// Installs the handler of forwarded requests; the first one installed stays.
    pub fn install_forwarded_request_handler(&self, handler: Arc<dyn ForwardedRequestHandler>) {
        let _ = self.forwarded_request_handler.set(handler);
    }
}

/// On a server: answers a request a client agent forwarded.
pub async fn serve_forwarded<E: Env>(node: &Arc<Node<E>>, request: ForwardedRequest) -> Reply {
    let Some(handler) = node.forwarded_request_handler.get().cloned() else {
        return Reply::Refused("HTTP API not started yet".to_string());
    };
    if !node.config.server {
        return Reply::Refused("client agents do not serve forwarded requests".to_string());
    }
    match handler.handle(request).await {
        Ok(ForwardedAnswer { status, headers, body }) => Reply::Http { status, headers, body },
        Err(why) => Reply::Refused(why),
    }
}

/// On a client agent: forwards the request to a server, trying each known server once (a write only
/// while no server has received it).
pub async fn forward<E: Env>(node: &Node<E>, request: ForwardedRequest) -> Result<ForwardedAnswer, ForwardFailure> {
    let servers = node.known_servers.lock().expect("known servers lock").len().max(1);
    let mut last_error = "No known Consul servers".to_string();
    let is_read = request.method == "GET";
    let ForwardedRequest { method, path_and_query, body, token } = request;
    let request = Request::Http { method, path_and_query, body, token };
    for _ in 0..servers {
        let Some(addr) = node.pick_server().and_then(|a| a.parse().ok()) else { break };
        node.count_client_rpc();
        match node.pool.call(addr, &request, FORWARD_TIMEOUT).await {
            Ok(Reply::Http { status, headers, body }) => return Ok(ForwardedAnswer { status, headers, body }),
            Ok(other) => last_error = format!("unexpected reply from {addr}: {other:?}"),
            // A write that may have reached the server is not sent again: a CAS or a lock must not apply
            // twice. Reads, and requests the server never received, go to the next server.
            Err(e) if !is_read && e.kind() != std::io::ErrorKind::ConnectionRefused => {
                return Err(format!("rpc error: {e}"));
            }
            Err(e) => last_error = format!("rpc error: {e}"),
        }
    }
    Err(last_error)
}

/// On a server: sends a request to the leader (the autopilot's health and state are the leader's).
pub async fn forward_to_leader<E: Env>(
    node: &Node<E>,
    request: ForwardedRequest,
) -> Result<ForwardedAnswer, ForwardFailure> {
    let addr = node.leader().and_then(|(_, addr)| addr).ok_or("No cluster leader")?;
    let addr: std::net::SocketAddr = addr.parse().map_err(|e| format!("bad leader address {addr:?}: {e}"))?;
    let ForwardedRequest { method, path_and_query, body, token } = request;
    let request = Request::Http { method, path_and_query, body, token };
    match node.pool.call(addr, &request, FORWARD_TIMEOUT).await {
        Ok(Reply::Http { status, headers, body }) => Ok(ForwardedAnswer { status, headers, body }),
        Ok(other) => Err(format!("unexpected reply from the leader {addr}: {other:?}")),
        Err(e) => Err(format!("rpc error: {e}")),
    }
}
