//! `/v1/operator/raft/...`: the Raft configuration and removing a peer.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use openraft::ChangeMembers;
use serde_json::json;

use conclave_core::acl::{Need, Resource};

use super::authz::Caller;
use super::{empty_ok, json_response, HttpError, QueryParams};
use crate::env::Env;
use crate::node::Node;

/// Node names by Raft ID, from discovery and from the catalog's `consul` instances.
fn server_name<E: Env>(node: &Node<E>, raft_id: u64, addr: &str) -> String {
    if raft_id == node.raft_id {
        return node.config.node_name.clone();
    }
    if let Some(info) = node.known_servers.lock().expect("known servers lock").get(&raft_id) {
        return info.node_name.clone();
    }
    let ip = addr.rsplit_once(':').map(|(ip, _)| ip).unwrap_or(addr);
    let catalog = node.state.read();
    catalog
        .service_instances("consul")
        .iter()
        .find(|(n, _)| n.address == ip)
        .map(|(n, _)| n.node.clone())
        .unwrap_or_default()
}

pub async fn configuration<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    caller.require(Resource::Operator, "", Need::Read)?;
    if params.consistency != super::Consistency::Stale {
        node.read_barrier().await?;
    }
    let raft = node.raft.as_ref().ok_or_else(|| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "not a server"))?;
    let metrics = raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    // The last log index each server holds: our own from our log; the others' as the leader's
    // replication knows them (a follower knows only its own, and reports 0 for the others).
    let last_index = |id: &u64| -> u64 {
        if *id == node.raft_id {
            return metrics.last_log_index.unwrap_or(0);
        }
        let matched = metrics.replication.as_ref().and_then(|replication| replication.get(id).cloned().flatten());
        matched.map(|log_id| log_id.index).unwrap_or(0)
    };
    let servers: Vec<_> = membership
        .nodes()
        .map(|(id, member)| {
            json!({
                "ID": format!("{id:016x}"),
                "Node": server_name(&node, *id, &member.addr),
                "Address": member.addr,
                "Leader": metrics.current_leader == Some(*id),
                "Voter": voters.contains(id),
                "ProtocolVersion": "3",
                "LastIndex": last_index(id),
            })
        })
        .collect();
    let index = metrics.membership_config.log_id().map(|l| l.index).unwrap_or(0);
    Ok(json_response(&json!({ "Servers": servers, "Index": index }), &params))
}

pub async fn remove_peer<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    caller.require(Resource::Operator, "", Need::Write)?;
    let value = |name: &str| params.all.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let raft = node.raft.as_ref().ok_or_else(|| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "not a server"))?;
    let metrics = raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    let target = match (value("id"), value("address")) {
        (Some(id), _) => {
            u64::from_str_radix(id.trim_start_matches("0x"), 16).ok().filter(|id| membership.get_node(id).is_some())
        }
        (None, Some(address)) => membership.nodes().find(|(_, n)| n.addr == address).map(|(id, _)| *id),
        (None, None) => {
            return Err(HttpError::bad_request(
                "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove",
            ))
        }
    };
    let target = target
        .ok_or_else(|| HttpError::new(StatusCode::NOT_FOUND, "address or id not found in the Raft configuration"))?;
    if !node.is_leader() {
        let leader = node.leader().and_then(|(_, addr)| addr).unwrap_or_default();
        return Err(HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("this server is not the leader; send the request to the leader ({leader})"),
        ));
    }
    raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([target])), false)
        .await
        .map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(empty_ok())
}
