//! Serves incoming RPC connections: one task per connection, requests answered in order.

use std::sync::Arc;

use axum::serve::Listener;

use super::Node;
use crate::env::Env;
use crate::raft::messages::{Reply, Request};
use crate::rpc::frame::{read_frame, write_frame};

pub async fn serve<E: Env>(node: Arc<Node<E>>, mut listener: E::Listener) {
    loop {
        let (stream, peer) = listener.accept().await;
        tokio::spawn(serve_connection(node.clone(), stream, peer));
    }
}

async fn serve_connection<E: Env>(node: Arc<Node<E>>, mut stream: E::Stream, peer: std::net::SocketAddr) {
    loop {
        let request = match read_frame::<_, Request>(&mut stream).await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(e) => {
                // A peer speaking garbage or a dropped link: drop the connection, never the node.
                tracing::debug!(target: "conclave::rpc", %peer, error = %e, "dropping RPC connection");
                return;
            }
        };
        let reply = handle(&node, request).await;
        if let Err(e) = write_frame(&mut stream, &reply).await {
            tracing::debug!(target: "conclave::rpc", %peer, error = %e, "cannot send RPC reply");
            return;
        }
    }
}

async fn handle<E: Env>(node: &Arc<Node<E>>, request: Request) -> Reply {
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
        (Request::Hello(info), _) => super::bootstrap::handle_hello(node, info),
        (Request::Http { method, path_and_query, body, token }, _) => {
            let request = super::forward::ForwardedRequest { method, path_and_query, body, token };
            super::forward::serve_forwarded(node, request).await
        }
    }
}
