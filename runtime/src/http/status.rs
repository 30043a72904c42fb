//! `/v1/status/...`: the Raft leader and peers as `host:port` of their server RPC addresses.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;

use super::{json_response, HttpError, QueryParams};
use crate::env::Env;
use crate::node::Node;

pub async fn leader<E: Env>(
    State(node): State<Arc<Node<E>>>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    params.check_datacenter(&node.config.datacenter)?;
    let leader = node.leader().and_then(|(_, addr)| addr).unwrap_or_default();
    Ok(json_response(&leader, &params))
}

pub async fn peers<E: Env>(State(node): State<Arc<Node<E>>>, RawQuery(query): RawQuery) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    params.check_datacenter(&node.config.datacenter)?;
    Ok(json_response(&node.peers(), &params))
}
