//! Tokens: bootstrap, create, read (by AccessorID and `self`), update, clone, delete, list (with
//! `?policy=`, `?role=`, `?authmethod=`), and the agent's own tokens (`/v1/agent/token/:kind`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use conclave_core::acl::{AclCommand, Link, Need, Resource, Token, GLOBAL_MANAGEMENT_POLICY_ID};
use conclave_core::api::acl_input::{self, LinkKind, TokenInput};
use conclave_core::api::encode_acl::{token_json, token_stub_json};
use conclave_core::state::{State as ReplicatedState, WatchKey};

use super::{delete_answer, new_id, propose, propose_as, read_back, read_one, require_enabled, require_read};
use crate::env::Env;
use crate::http::authz::Caller;
use crate::http::{await_read, empty_ok, json_response, set_query_meta, HttpError, QueryParams};
use crate::node::Node;

/// The token a body describes, its names resolved against the state and its IDs filled in.
fn token_from<E: Env>(
    node: &Node<E>,
    input: &TokenInput,
    accessor: String,
    secret: String,
) -> Result<Token, HttpError> {
    let state = node.state.read();
    let acl = state.acl();
    let (expiration_time_ms, expiration_ttl_ns) = input.expiry(node.env.unix_time_ms())?;
    Ok(Token {
        accessor_id: accessor,
        secret_id: secret,
        description: input.description.clone().unwrap_or_default(),
        policies: acl_input::resolve_links(input.policies.as_deref().unwrap_or(&[]), LinkKind::Policy, acl)?,
        roles: acl_input::resolve_links(input.roles.as_deref().unwrap_or(&[]), LinkKind::Role, acl)?,
        service_identities: acl_input::service_identities(input.service_identities.as_deref().unwrap_or(&[]))?,
        node_identities: acl_input::node_identities(input.node_identities.as_deref().unwrap_or(&[]))?,
        local: input.local.unwrap_or(false),
        expiration_time_ms,
        expiration_ttl_ns,
        auth_method: String::new(),
        create_time_ms: 0,
        create_index: 0,
        modify_index: 0,
    })
}

fn given(field: &Option<String>) -> Option<String> {
    field.clone().filter(|s| !s.is_empty())
}

fn answer_token(node_state: &ReplicatedState, accessor: &str, params: &QueryParams) -> Result<Response, HttpError> {
    let token = read_back(node_state, |s| s.acl().token(accessor).cloned())?;
    Ok(json_response(&token_json(&token, node_state.acl(), true), params))
}

pub async fn bootstrap<E: Env>(
    State(node): State<Arc<Node<E>>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    require_enabled(&node)?;
    let params = QueryParams::parse(query.as_deref())?;
    let wanted_secret = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("BootstrapSecret").and_then(|s| s.as_str()).map(str::to_string))
        .filter(|s| !s.is_empty());
    let accessor = new_id(&node);
    let secret = wanted_secret.unwrap_or_else(|| new_id(&node));
    let mut token = token_from(&node, &TokenInput::default(), accessor.clone(), secret)?;
    token.description = "Bootstrap Token (Global Management)".to_string();
    token.policies = vec![Link { id: GLOBAL_MANAGEMENT_POLICY_ID.to_string() }];
    // Consul's reset: the reset index written to `acl-bootstrap-reset` in the data dir allows one more
    // bootstrap; the file is removed once it was used.
    let reset_file = node.config.data_dir.as_ref().map(|dir| dir.join("acl-bootstrap-reset"));
    let reset_text = reset_file.as_ref().and_then(|path| std::fs::read_to_string(path).ok());
    let reset_index = reset_text.and_then(|text| text.trim().parse().ok());
    propose(&node, None, AclCommand::Bootstrap { token, reset_index }).await?;
    if let (Some(path), Some(_)) = (&reset_file, reset_index) {
        let _ = std::fs::remove_file(path);
    }
    answer_token(&node.state.read(), &accessor, &params)
}

pub async fn create<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    require_enabled(&node)?;
    let params = QueryParams::parse(query.as_deref())?;
    let input = acl_input::decode_token(&body)?;
    let accessor = given(&input.accessor_id).unwrap_or_else(|| new_id(&node));
    let secret = given(&input.secret_id).unwrap_or_else(|| new_id(&node));
    let token = token_from(&node, &input, accessor.clone(), secret)?;
    propose_as(&node, &caller, AclCommand::SetToken { token, create: true }).await?;
    answer_token(&node.state.read(), &accessor, &params)
}

pub async fn read<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    require_read(&node, &caller)?;
    let params = QueryParams::parse(query.as_deref())?;
    await_read(&node, &params, &WatchKey::AclTokens).await?;
    let state = node.state.read();
    let token = state.acl().token(&id).ok_or_else(|| HttpError::new(StatusCode::FORBIDDEN, "ACL not found"))?;
    let show_secret = caller.allows(Resource::Acl, "", Need::Write);
    let mut response = json_response(&token_json(token, state.acl(), show_secret), &params);
    set_query_meta(&mut response, &node, &params, token.modify_index);
    Ok(response)
}

pub async fn read_self<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    require_enabled(&node)?;
    let params = QueryParams::parse(query.as_deref())?;
    let state = node.state.read();
    let token = state
        .acl()
        .token_by_secret(&caller.secret)
        .ok_or_else(|| HttpError::new(StatusCode::FORBIDDEN, "ACL not found"))?;
    Ok(json_response(&token_json(token, state.acl(), true), &params))
}

pub async fn update<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    require_enabled(&node)?;
    let params = QueryParams::parse(query.as_deref())?;
    let input = acl_input::decode_token(&body)?;
    if given(&input.accessor_id).is_some_and(|a| a != id) {
        return Err(HttpError::bad_request("Token Accessor ID in URL and payload do not match"));
    }
    let existing = node.state.read().acl().token(&id).cloned();
    let existing =
        existing.ok_or_else(|| HttpError::new(StatusCode::NOT_FOUND, format!("Cannot find token {id:?}")))?;
    if given(&input.secret_id).is_some_and(|s| s != existing.secret_id) {
        return Err(HttpError::bad_request("Changing a tokens SecretID is not permitted"));
    }
    let token = token_from(&node, &input, id.clone(), existing.secret_id)?;
    propose_as(&node, &caller, AclCommand::SetToken { token, create: false }).await?;
    answer_token(&node.state.read(), &id, &params)
}

pub async fn clone<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    require_enabled(&node)?;
    let params = QueryParams::parse(query.as_deref())?;
    let input = acl_input::decode_token(&body)?;
    let original = node.state.read().acl().token(&id).cloned();
    let mut token =
        original.ok_or_else(|| HttpError::new(StatusCode::NOT_FOUND, format!("Cannot find token {id:?}")))?;
    let accessor = new_id(&node);
    token.accessor_id = accessor.clone();
    token.secret_id = new_id(&node);
    token.auth_method = String::new();
    if let Some(description) = input.description {
        token.description = description;
    }
    propose_as(&node, &caller, AclCommand::SetToken { token, create: true }).await?;
    answer_token(&node.state.read(), &accessor, &params)
}

pub async fn delete<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    delete_answer(&node, &caller, query.as_deref(), AclCommand::DeleteToken { accessor_id: id }).await
}

pub async fn list<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let show_secret = caller.allows(Resource::Acl, "", Need::Write);
    read_one(&node, &caller, query.as_deref(), WatchKey::AclTokens, |s, params| {
        let (policy, role, method) = (params.value("policy"), params.value("role"), params.value("authmethod"));
        let tokens = s
            .acl()
            .tokens()
            .filter(|t| policy.is_none_or(|p| t.policies.iter().any(|l| l.id == p)))
            .filter(|t| role.is_none_or(|r| t.roles.iter().any(|l| l.id == r)))
            .filter(|t| method.is_none_or(|m| t.auth_method == m));
        Some(tokens.map(|t| token_stub_json(t, s.acl(), show_secret)).collect::<Vec<_>>())
    })
    .await
}

/// `PUT /v1/agent/token/:kind` with `{"Token": "..."}`: replaces one of this agent's tokens.
pub async fn set_agent_token<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(kind): Path<String>,
    body: Bytes,
) -> Result<Response, HttpError> {
    require_enabled(&node)?;
    caller.require(Resource::Agent, &node.config.node_name, Need::Write)?;
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))?;
    let token = value
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("token")))
        .and_then(|(_, v)| v.as_str())
        .unwrap_or("")
        .to_string();
    let kind = match kind.as_str() {
        "acl_token" => "default",
        "acl_agent_token" => "agent",
        "acl_agent_master_token" | "agent_master" => "agent_recovery",
        "acl_replication_token" => "replication",
        other => other,
    };
    node.set_agent_token(kind, &token).map_err(|e| HttpError::new(StatusCode::NOT_FOUND, e))?;
    tracing::info!(target: "conclave::acl", kind, "agent ACL token updated");
    if kind == "agent" || kind == "default" {
        node.sync_all().await;
    }
    Ok(empty_ok())
}
