//! `/v1/acl/*` and `/v1/agent/token/*`: Consul's ACL API. Reads need `acl:read` (a token may always
//! read itself); writes go through Raft under the caller's authority, so the state decides `acl:write`
//! where they apply, and the answer is read back once this agent has applied the write. With ACLs off
//! every endpoint answers Consul's 401 "ACL support disabled".

mod login;
mod policies;
mod tokens;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use conclave_core::acl::{AclCommand, Need, Resource};
use conclave_core::state::{Command, Response as Applied, State as ReplicatedState, WatchKey};
use rand::RngCore;

use super::authz::Caller;
use super::{await_read, json_response, set_query_meta, HttpError, QueryParams};
use crate::env::Env;
use crate::node::Node;

pub fn routes<E: Env>() -> Router<Arc<Node<E>>> {
    Router::new()
        .route("/v1/acl/bootstrap", put(tokens::bootstrap::<E>))
        .route("/v1/acl/token", put(tokens::create::<E>))
        .route("/v1/acl/token/self", get(tokens::read_self::<E>))
        .route("/v1/acl/token/{id}", get(tokens::read::<E>).put(tokens::update::<E>).delete(tokens::delete::<E>))
        .route("/v1/acl/token/{id}/clone", put(tokens::clone::<E>))
        .route("/v1/acl/tokens", get(tokens::list::<E>))
        .route("/v1/acl/policy", put(policies::create_policy::<E>))
        .route(
            "/v1/acl/policy/{id}",
            get(policies::read_policy::<E>).put(policies::update_policy::<E>).delete(policies::delete_policy::<E>),
        )
        .route("/v1/acl/policy/name/{name}", get(policies::read_policy_by_name::<E>))
        .route("/v1/acl/policies", get(policies::list_policies::<E>))
        .route("/v1/acl/role", put(policies::create_role::<E>))
        .route(
            "/v1/acl/role/{id}",
            get(policies::read_role::<E>).put(policies::update_role::<E>).delete(policies::delete_role::<E>),
        )
        .route("/v1/acl/role/name/{name}", get(policies::read_role_by_name::<E>))
        .route("/v1/acl/roles", get(policies::list_roles::<E>))
        .route("/v1/acl/auth-method", put(login::create_method::<E>))
        .route(
            "/v1/acl/auth-method/{name}",
            get(login::read_method::<E>).put(login::update_method::<E>).delete(login::delete_method::<E>),
        )
        .route("/v1/acl/auth-methods", get(login::list_methods::<E>))
        .route("/v1/acl/binding-rule", put(login::create_rule::<E>))
        .route(
            "/v1/acl/binding-rule/{id}",
            get(login::read_rule::<E>).put(login::update_rule::<E>).delete(login::delete_rule::<E>),
        )
        .route("/v1/acl/binding-rules", get(login::list_rules::<E>))
        .route("/v1/acl/login", post(login::login::<E>))
        .route("/v1/acl/logout", post(login::logout::<E>))
        .route("/v1/agent/token/{kind}", put(tokens::set_agent_token::<E>))
}

/// Consul's answer on every ACL endpoint of an agent without ACLs.
fn require_enabled<E: Env>(node: &Node<E>) -> Result<(), HttpError> {
    if node.config.acl.enabled {
        Ok(())
    } else {
        Err(HttpError::new(StatusCode::UNAUTHORIZED, "ACL support disabled"))
    }
}

/// ACLs on and `acl:read`.
fn require_read<E: Env>(node: &Node<E>, caller: &Caller) -> Result<(), HttpError> {
    require_enabled(node)?;
    caller.require(Resource::Acl, "", Need::Read)
}

/// A fresh UUID from the node's seeded rng.
fn new_id<E: Env>(node: &Node<E>) -> String {
    let mut bytes = [0u8; 16];
    node.rng.lock().expect("rng lock").fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

/// Proposes an ACL change under `authority` and waits until this agent has applied it, so the answer
/// can be read back from local state.
async fn propose<E: Env>(
    node: &Node<E>,
    authority: Option<conclave_core::acl::Authority>,
    command: AclCommand,
) -> Result<(), HttpError> {
    let (index, applied) = node.write_as(Command::Acl(command), authority).await?;
    match applied {
        Applied::Applied => {}
        Applied::Denied(why) => return Err(super::authz::denied(why)),
        Applied::Rejected(why) if why.starts_with("ACL bootstrap no longer allowed") => {
            return Err(HttpError::new(StatusCode::FORBIDDEN, why));
        }
        Applied::Rejected(why) if why.starts_with("Cannot find") => {
            return Err(HttpError::new(StatusCode::NOT_FOUND, why));
        }
        Applied::Rejected(why) => return Err(HttpError::bad_request(why)),
        other => return Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("unexpected answer {other:?}"))),
    }
    let deadline = tokio::time::Instant::now() + node.config.request_timeout;
    node.wait_applied(index, deadline).await?;
    Ok(())
}

/// A write on behalf of `caller`, which must hold `acl:write` (checked here for a clear answer, and
/// again by the state where it applies).
async fn propose_as<E: Env>(node: &Node<E>, caller: &Caller, command: AclCommand) -> Result<(), HttpError> {
    require_enabled(node)?;
    caller.require(Resource::Acl, "", Need::Write)?;
    propose(node, caller.authority(), command).await
}

/// A read after the consistency wait the client asked for (`acl:read` needed), answered with the query
/// meta of `key`; `read` sees the parsed parameters (list filters) and None is a 404.
async fn read_one<E: Env, T: serde::Serialize>(
    node: &Node<E>,
    caller: &Caller,
    query: Option<&str>,
    key: WatchKey,
    read: impl Fn(&ReplicatedState, &QueryParams) -> Option<T>,
) -> Result<Response, HttpError> {
    require_read(node, caller)?;
    let params = QueryParams::parse(query)?;
    await_read(node, &params, &key).await?;
    let state = node.state.read();
    let value = read_back(&state, |s| read(s, &params))?;
    let mut response = json_response(&value, &params);
    set_query_meta(&mut response, node, &params, state.index_of(&key));
    Ok(response)
}

/// A delete on behalf of `caller`, answered `true` as Consul does.
async fn delete_answer<E: Env>(
    node: &Node<E>,
    caller: &Caller,
    query: Option<&str>,
    command: AclCommand,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query)?;
    propose_as(node, caller, command).await?;
    Ok(json_response(&true, &params))
}

/// Reads a record back from the state, 404 when it is gone.
fn read_back<T>(node_state: &ReplicatedState, read: impl Fn(&ReplicatedState) -> Option<T>) -> Result<T, HttpError> {
    read(node_state).ok_or_else(|| HttpError::new(StatusCode::NOT_FOUND, "ACL not found"))
}
