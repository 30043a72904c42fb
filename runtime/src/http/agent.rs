//! `/v1/agent/...`: the local agent. Services registered here are written to the catalog under this
//! agent's node (checks are stored; running them is the check runner's job).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use conclave_core::api;
use conclave_core::catalog::{Command, DeregisterRequest};

use super::catalog::apply;
use super::{empty_ok, json_response, HttpError, QueryParams};
use crate::env::Env;
use crate::node::Node;

pub async fn register_service<E: Env>(
    State(node): State<Arc<Node<E>>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    let _params = QueryParams::parse(query.as_deref())?;
    let definition = api::decode_service_definition(&body)?;
    let request = definition.to_register_request(&node.node_spec());
    apply(&node, Command::Register(request)).await?;
    Ok(empty_ok())
}

pub async fn deregister_service<E: Env>(
    State(node): State<Arc<Node<E>>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let _params = QueryParams::parse(query.as_deref())?;
    let request = DeregisterRequest {
        node: node.config.node_name.clone(),
        service_id: Some(id),
        check_id: None,
    };
    apply(&node, Command::Deregister(request)).await?;
    Ok(empty_ok())
}

/// The part of Consul's `/v1/agent/self` that clients read (Prometheus reads `Config.Datacenter`).
pub async fn agent_self<E: Env>(
    State(node): State<Arc<Node<E>>>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    let config = &node.config;
    let body = serde_json::json!({
        "Config": {
            "Datacenter": config.datacenter,
            "PrimaryDatacenter": config.datacenter,
            "NodeName": config.node_name,
            "NodeID": node.node_id,
            "Revision": "",
            "Server": config.server,
            "Version": env!("CARGO_PKG_VERSION"),
        },
        "Member": {
            "Name": config.node_name,
            "Addr": config.advertise_addr.to_string(),
            "Port": config.ports.serf_lan,
            "Tags": {
                "role": if config.server { "consul" } else { "node" },
                "dc": config.datacenter,
                "port": config.ports.server.to_string(),
                "id": node.node_id,
            },
            "Status": 1,
        },
        "Meta": {},
    });
    Ok(json_response(&body, &params))
}
