//! `/v1/operator/keyring`: list (GET), install (POST), use (PUT) and remove (DELETE) gossip encryption
//! keys across the WAN pool (servers) and the LAN pool, in Consul's shapes: a list answers one entry per
//! pool with how many members hold each key; a change that some member failed is a 500 naming them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use conclave_core::acl::{Need, Resource};
use serde_json::{json, Value};

use super::authz::Caller;
use super::{empty_ok, json_response, HttpError, QueryParams};
use crate::env::Env;
use crate::node::gossip::Pool;
use crate::node::keyring_ops::{apply_to_pool, PoolAnswers};
use crate::node::Node;
use crate::security::keyring::KeyringOp;

/// Consul's range for `?relay-factor` (how many extra members relay each answer; Conclave asks every
/// member directly, so it changes nothing but is checked as Consul checks it).
const RELAY_FACTOR_MAX: u8 = 5;

fn key_of(body: &[u8]) -> Result<String, HttpError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))?;
    let key = value
        .as_object()
        .and_then(|map| map.iter().find(|(k, _)| k.eq_ignore_ascii_case("Key")))
        .and_then(|(_, v)| v.as_str())
        .unwrap_or_default();
    Ok(key.to_string())
}

pub async fn keyring<E: Env>(
    State(node): State<Arc<Node<E>>>,
    method: Method,
    caller: Caller,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    let value = |name: &str| params.all.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if let Some(factor) = value("relay-factor") {
        let valid = factor.parse::<u8>().ok().filter(|f| *f <= RELAY_FACTOR_MAX);
        if valid.is_none() {
            return Err(HttpError::bad_request(format!("Relay factor must be in range: [0, {RELAY_FACTOR_MAX}]")));
        }
    }
    let local_only = value("local-only").is_some_and(|v| v.is_empty() || v == "true" || v == "1");
    let op = match method {
        Method::GET => KeyringOp::List,
        Method::POST => KeyringOp::Install(key_of(&body)?),
        Method::PUT => KeyringOp::Use(key_of(&body)?),
        Method::DELETE => KeyringOp::Remove(key_of(&body)?),
        _ => return Err(HttpError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")),
    };
    let need = if op == KeyringOp::List { Need::Read } else { Need::Write };
    caller.require(Resource::Keyring, "", need)?;
    if local_only && op != KeyringOp::List {
        return Err(HttpError::bad_request("local-only can only be used with a list operation"));
    }
    // The WAN pool is the servers'; a local-only list stays in this datacenter (Consul: no WAN traffic)
    // but still asks every member of the LAN pool. Both pools are asked at once.
    let with_wan = node.config.server && !local_only;
    let lan = apply_to_pool(&node, Pool::Lan, &op);
    let mut pools = Vec::new();
    if with_wan {
        let (wan, lan) = futures::future::join(apply_to_pool(&node, Pool::Wan, &op), lan).await;
        pools.push((Pool::Wan, wan));
        pools.push((Pool::Lan, lan));
    } else {
        pools.push((Pool::Lan, lan.await));
    }
    if op == KeyringOp::List {
        let listed: Vec<Value> = pools.iter().map(|(pool, answers)| list_entry(&node, *pool, answers)).collect();
        return Ok(json_response(&listed, &params));
    }
    let failures: Vec<String> = pools
        .iter()
        .flat_map(|(pool, answers)| answers.failures.iter().map(move |(name, why)| format!("{name} ({pool:?}): {why}")))
        .collect();
    if failures.is_empty() {
        return Ok(empty_ok());
    }
    let total: usize = pools.iter().map(|(_, answers)| answers.members()).sum();
    Err(HttpError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("{}/{} nodes reported failure:\n{}", failures.len(), total, failures.join("\n")),
    ))
}

fn list_entry<E: Env>(node: &Node<E>, pool: Pool, answers: &PoolAnswers) -> Value {
    let mut keys: BTreeMap<&str, u64> = BTreeMap::new();
    let mut primary: BTreeMap<&str, u64> = BTreeMap::new();
    for answer in answers.answers.values() {
        for key in &answer.keys {
            *keys.entry(key).or_default() += 1;
        }
        *primary.entry(&answer.primary).or_default() += 1;
    }
    json!({
        "WAN": pool == Pool::Wan,
        "Datacenter": node.config.datacenter,
        "Segment": "",
        "Partition": "",
        "Keys": keys,
        "PrimaryKeys": primary,
        "Messages": answers.failures,
        "NumNodes": answers.members(),
    })
}
