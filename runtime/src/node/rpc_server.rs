//! Serves incoming connections of the node's own protocols: one task per connection, requests answered
//! in order. Each port admits only what belongs on it: the LAN port discovery greetings and (sealed under
//! the gossip key) keyring operations; the RPC port everything else, and with TLS what the peer's
//! certificate allows — nothing at all without a verified certificate under `verify_incoming` (except
//! asking for one through auto_encrypt), and Raft, server greetings and WAN keyring operations only from a
//! certificate naming `server.<dc>.<domain>` under `verify_server_hostname`.

use std::sync::Arc;

use axum::serve::Listener;

use super::Node;
use crate::env::Env;
use crate::raft::messages::{Reply, Request};
use crate::rpc::link::Link;
use crate::security::conn::PeerAuth;

pub use super::admission::Port;

pub async fn serve<E: Env>(node: Arc<Node<E>>, mut listener: E::Listener, port: Port) {
    let link = match port {
        Port::Rpc => Link::Rpc(node.security.rpc.clone()),
        Port::Lan => Link::Lan(node.security.gossip.clone()),
    };
    loop {
        let (stream, peer) = listener.accept().await;
        tokio::spawn(serve_connection(node.clone(), link.clone(), port, stream, peer));
    }
}

async fn serve_connection<E: Env>(
    node: Arc<Node<E>>,
    link: Link,
    port: Port,
    stream: E::Stream,
    peer: std::net::SocketAddr,
) {
    let (mut conn, auth) = match link.accept(stream).await {
        Ok(accepted) => accepted,
        Err(e) => {
            tracing::debug!(target: "conclave::rpc", %peer, error = %e, "refusing RPC connection");
            return;
        }
    };
    loop {
        let received = match link.receive::<_, Request>(&mut conn, peer).await {
            Ok(Some(received)) => received,
            Ok(None) => return,
            Err(e) => {
                // A peer speaking garbage or a dropped link: drop the connection, never the node.
                tracing::debug!(target: "conclave::rpc", %peer, error = %e, "dropping RPC connection");
                return;
            }
        };
        let reply =
            match super::admission::admission(&node.security.rpc, port, auth, received.sealed, &received.message) {
                Ok(()) => handle(&node, received.message, auth).await,
                Err(why) => {
                    tracing::debug!(target: "conclave::rpc", %peer, ?port, why, "refused an RPC request");
                    Reply::Refused(why.to_string())
                }
            };
        if let Err(e) = link.send(&mut conn, &reply).await {
            tracing::debug!(target: "conclave::rpc", %peer, error = %e, "cannot send RPC reply");
            return;
        }
    }
}

async fn handle<E: Env>(node: &Arc<Node<E>>, request: Request, auth: PeerAuth) -> Reply {
    node.telemetry.counter("rpc.request", 1, &[]);
    let raft = node.raft.as_ref();
    match (request, raft) {
        (Request::AppendEntries(rpc), Some(raft)) => {
            let result = raft.append_entries(rpc).await;
            if matches!(&result, Ok(response) if response.is_success()) {
                *node.last_leader_contact.lock().expect("contact lock") = Some(tokio::time::Instant::now());
            }
            Reply::AppendEntries(result)
        }
        (Request::Vote(rpc), Some(raft)) => Reply::Vote(raft.vote(rpc).await),
        (Request::InstallSnapshot(rpc), Some(raft)) => Reply::InstallSnapshot(raft.install_snapshot(rpc).await),
        (Request::AppendEntries(_) | Request::Vote(_) | Request::InstallSnapshot(_), None) => {
            Reply::Refused("client agents take no part in Raft".to_string())
        }
        (Request::Forward(command, authority), _) => Reply::Forward(node.propose_local(command, authority).await),
        (Request::ResolveToken { secret_id }, _) => {
            Reply::Resolved(super::acl::resolve_on_server(node, &secret_id).map(|identity| (*identity).clone()))
        }
        (Request::ReadIndex, _) => Reply::ReadIndex(node.read_index_local().await),
        (Request::RenewSession { id }, _) => Reply::RenewSession(node.renew_session_local(&id).await),
        (Request::Hello(info), _) => super::bootstrap::handle_hello(node, info, auth.server),
        (Request::Http { method, path_and_query, body, token }, _) => {
            let request = super::forward::ForwardedRequest { method, path_and_query, body, token };
            super::forward::serve_forwarded(node, request).await
        }
        (Request::Keyring { pool, op }, _) => Reply::Keyring(node.security.gossip.apply(pool, &op)),
        (Request::SignClientCertificate(request), _) => {
            Reply::ClientCertificate(super::auto_encrypt::sign(node, &request))
        }
        (Request::Ping, _) => Reply::Pong,
        (Request::ElectNow { from }, _) => Reply::ElectNow(super::step_down::handle_elect_now(node, from).await),
        (Request::NodeEntries { node: name, token }, _) => {
            Reply::NodeEntries(super::agent_state::serve_node_entries(node, &name, &token).await)
        }
    }
}
