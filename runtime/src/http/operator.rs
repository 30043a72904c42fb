//! `/v1/operator/raft/...`: the Raft configuration, removing a peer and transferring leadership.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
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

/// Marks a transfer request a follower passed on to its leader, so it is passed on at most once.
const LEADER_HOP: &str = "leader-hop";

/// `POST /v1/operator/raft/transfer-leader[?id=<server ID>]` (operator:write): hands leadership to the
/// named voter (its `ID` in `/v1/operator/raft/configuration`), or without `id` to the most caught-up
/// one; answers Consul's `{"Success":true}` once the new leader is elected. A follower passes the
/// request on to its leader.
pub async fn transfer_leader<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    use crate::node::step_down::{transfer_leadership, TransferError};
    let params = QueryParams::parse(query.as_deref())?;
    caller.require(Resource::Operator, "", Need::Write)?;
    if node.raft.is_none() {
        return Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "not a server"));
    }
    let id = params.all.iter().find(|(k, _)| k == "id").map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    if !node.is_leader() {
        if params.all.iter().any(|(k, _)| k == LEADER_HOP) || node.leader().is_none() {
            return Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "No cluster leader"));
        }
        let token = node.request_secret(super::authz::token_of(&headers, query.as_deref()).as_deref());
        let path_and_query = match query.as_deref() {
            Some(query) if !query.is_empty() => format!("/v1/operator/raft/transfer-leader?{query}&{LEADER_HOP}=1"),
            _ => format!("/v1/operator/raft/transfer-leader?{LEADER_HOP}=1"),
        };
        return Ok(super::forward::forward_to_leader(&node, "POST", &path_and_query, token).await);
    }
    match transfer_leadership(&node, id.as_deref()).await {
        Ok(_) => Ok(json_response(&json!({ "Success": true }), &params)),
        Err(e @ (TransferError::UnknownServer(_) | TransferError::AlreadyLeader | TransferError::NoSuccessor)) => {
            Err(HttpError::bad_request(e.to_string()))
        }
        Err(e) => Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}
