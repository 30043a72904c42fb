//! `/v1/session/*`: create, destroy, renew, and read sessions. IDs are UUIDs drawn from the node's seeded
//! rng; a session created on an agent belongs to that agent's node unless the body names another.
//! Renewals go to the leader, which keeps the TTL timers.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use conclave_core::api::encode_kv::session_json;
use conclave_core::state::{Command, Response as Applied, WatchKey};
use rand::RngCore;
use serde_json::json;

use super::{catalog_read, json_response, HttpError, QueryParams};
use crate::env::Env;
use crate::node::Node;
use conclave_core::kv::SessionCommand;

pub async fn create<E: Env>(
    State(node): State<Arc<Node<E>>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    params.check_datacenter(&node.config.datacenter)?;
    let mut session = conclave_core::api::decode_session_create(&body, &node.config.node_name)?;
    let mut id_bytes = [0u8; 16];
    node.rng.lock().expect("rng lock").fill_bytes(&mut id_bytes);
    session.id = uuid::Builder::from_random_bytes(id_bytes).into_uuid().to_string();
    match node.write(Command::Session(SessionCommand::Create(session.clone()))).await? {
        (_, Applied::Applied) => Ok(json_response(&json!({ "ID": session.id }), &params)),
        (_, Applied::Rejected(why)) => Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, why)),
        (_, other) => Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("unexpected answer {other:?}"))),
    }
}

pub async fn destroy<E: Env>(
    State(node): State<Arc<Node<E>>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    params.check_datacenter(&node.config.datacenter)?;
    super::catalog::apply(&node, Command::Session(SessionCommand::Destroy { id })).await?;
    Ok(json_response(&true, &params))
}

pub async fn renew<E: Env>(
    State(node): State<Arc<Node<E>>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    params.check_datacenter(&node.config.datacenter)?;
    match node.renew_session(&id).await? {
        Some(session) => Ok(json_response(&[session_json(&session)], &params)),
        None => Err(HttpError::new(StatusCode::NOT_FOUND, format!("Session id '{id}' not found"))),
    }
}

pub async fn info<E: Env>(
    State(node): State<Arc<Node<E>>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    catalog_read(&node, &params, WatchKey::Sessions, |catalog| {
        catalog.sessions().get(&id).map(session_json).into_iter().collect::<Vec<_>>()
    })
    .await
}

pub async fn of_node<E: Env>(
    State(node): State<Arc<Node<E>>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    catalog_read(&node, &params, WatchKey::Sessions, |catalog| {
        catalog.sessions().of_node(&name).map(session_json).collect::<Vec<_>>()
    })
    .await
}

pub async fn list<E: Env>(State(node): State<Arc<Node<E>>>, RawQuery(query): RawQuery) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    catalog_read(&node, &params, WatchKey::Sessions, |catalog| {
        catalog.sessions().all().map(session_json).collect::<Vec<_>>()
    })
    .await
}
