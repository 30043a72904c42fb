//! `/v1/session/*`: create, destroy, renew, and read sessions. IDs are UUIDs drawn from the node's seeded
//! rng; a session created on an agent belongs to that agent's node unless the body names another.
//! Renewals go to the leader, which keeps the TTL timers.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use conclave_core::acl::{Need, Resource};
use conclave_core::api::encode_kv::session_json;
use conclave_core::state::{Command, Response as Applied, WatchKey};
use rand::RngCore;
use serde_json::json;

use super::authz::Caller;
use super::{catalog_read, json_response, HttpError, QueryParams};
use crate::env::Env;
use crate::node::Node;
use conclave_core::kv::SessionCommand;

pub async fn create<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    params.check_datacenter(&node.config.datacenter)?;
    let mut session = conclave_core::api::decode_session_create(&body, &node.config.node_name)?;
    let mut id_bytes = [0u8; 16];
    node.rng.lock().expect("rng lock").fill_bytes(&mut id_bytes);
    session.id = uuid::Builder::from_random_bytes(id_bytes).into_uuid().to_string();
    match node.write_as(Command::Session(SessionCommand::Create(session.clone())), caller.authority()).await? {
        (_, Applied::Applied) => Ok(json_response(&json!({ "ID": session.id }), &params)),
        (_, Applied::Denied(why)) => Err(super::authz::denied(why)),
        (_, Applied::Rejected(why)) => Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, why)),
        (_, other) => Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("unexpected answer {other:?}"))),
    }
}

pub async fn destroy<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    params.check_datacenter(&node.config.datacenter)?;
    super::catalog::apply(&node, &caller, Command::Session(SessionCommand::Destroy { id })).await?;
    Ok(json_response(&true, &params))
}

pub async fn renew<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    params.check_datacenter(&node.config.datacenter)?;
    if let Some(session) = node.state.read().sessions().get(&id) {
        caller.require(Resource::Session, &session.node, Need::Write)?;
    }
    match node.renew_session(&id).await? {
        Some(session) => Ok(json_response(&[session_json(&session)], &params)),
        None => Err(HttpError::new(StatusCode::NOT_FOUND, format!("Session id '{id}' not found"))),
    }
}

pub async fn info<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    catalog_read(&node, &params, &caller, WatchKey::Sessions, |catalog, filter| {
        let session = catalog.sessions().get(&id).filter(|s| filter.keep(Resource::Session, &s.node));
        session.map(session_json).into_iter().collect::<Vec<_>>()
    })
    .await
}

pub async fn of_node<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    catalog_read(&node, &params, &caller, WatchKey::Sessions, |catalog, filter| {
        let sessions = catalog.sessions().of_node(&name).filter(|s| filter.keep(Resource::Session, &s.node));
        sessions.map(session_json).collect::<Vec<_>>()
    })
    .await
}

pub async fn list<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    catalog_read(&node, &params, &caller, WatchKey::Sessions, |catalog, filter| {
        catalog
            .sessions()
            .all()
            .filter(|s| filter.keep(Resource::Session, &s.node))
            .map(session_json)
            .collect::<Vec<_>>()
    })
    .await
}
