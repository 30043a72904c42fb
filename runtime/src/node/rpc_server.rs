//! Serves incoming RPC connections: one task per connection, requests answered in order.

use std::sync::Arc;

use axum::serve::Listener;

use super::Node;
use crate::env::Env;
use crate::rpc::frame::{read_frame, write_frame};
use crate::rpc::{Reply, Request};

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
    match request {
        Request::AppendEntries(rpc) => {
            let result = node.raft.append_entries(rpc).await;
            if matches!(&result, Ok(response) if response.is_success()) {
                *node.last_leader_contact.lock().expect("contact lock") = Some(tokio::time::Instant::now());
            }
            Reply::AppendEntries(result)
        }
        Request::Vote(rpc) => Reply::Vote(node.raft.vote(rpc).await),
        Request::InstallSnapshot(rpc) => Reply::InstallSnapshot(node.raft.install_snapshot(rpc).await),
        Request::Forward(command) => Reply::Forward(node.propose_local(command).await),
        Request::ReadIndex => Reply::ReadIndex(node.read_index_local().await),
        Request::Hello(info) => super::bootstrap::handle_hello(node, info),
    }
}
