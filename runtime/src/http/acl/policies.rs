//! Policies and roles: create, read (by ID and by name), update, delete, list.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use conclave_core::acl::{AclCommand, CompiledRules, Policy, Role};
use conclave_core::api::acl_input::{self, LinkKind, PolicyInput, RoleInput};
use conclave_core::api::encode_acl::{policy_json, policy_stub_json, role_json};
use conclave_core::state::WatchKey;

use super::{delete_answer, new_id, propose_as, read_back, read_one};
use crate::env::Env;
use crate::http::authz::Caller;
use crate::http::{json_response, HttpError, QueryParams};
use crate::node::Node;

fn policy_from(input: PolicyInput, id: String) -> Policy {
    Policy {
        id,
        name: input.name.unwrap_or_default(),
        description: input.description.unwrap_or_default(),
        rules: input.rules.unwrap_or_default(),
        datacenters: input.datacenters.unwrap_or_default(),
        compiled: CompiledRules::default(),
        create_index: 0,
        modify_index: 0,
    }
}

pub async fn create_policy<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    let input = acl_input::decode_policy(&body)?;
    let id = new_id(&node);
    propose_as(&node, &caller, AclCommand::SetPolicy { policy: policy_from(input, id.clone()), create: true }).await?;
    let state = node.state.read();
    Ok(json_response(&read_back(&state, |s| s.acl().policy(&id).map(policy_json))?, &params))
}

pub async fn update_policy<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    let input = acl_input::decode_policy(&body)?;
    if input.id.as_deref().is_some_and(|given| !given.is_empty() && given != id) {
        return Err(HttpError::bad_request("Policy ID in URL and payload do not match"));
    }
    propose_as(&node, &caller, AclCommand::SetPolicy { policy: policy_from(input, id.clone()), create: false }).await?;
    let state = node.state.read();
    Ok(json_response(&read_back(&state, |s| s.acl().policy(&id).map(policy_json))?, &params))
}

pub async fn read_policy<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    read_one(&node, &caller, query.as_deref(), WatchKey::AclPolicies, |s, _| s.acl().policy(&id).map(policy_json)).await
}

pub async fn read_policy_by_name<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    read_one(&node, &caller, query.as_deref(), WatchKey::AclPolicies, |s, _| {
        s.acl().policy_by_name(&name).map(policy_json)
    })
    .await
}

pub async fn delete_policy<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    delete_answer(&node, &caller, query.as_deref(), AclCommand::DeletePolicy { id }).await
}

pub async fn list_policies<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    read_one(&node, &caller, query.as_deref(), WatchKey::AclPolicies, |s, _| {
        Some(s.acl().policies().map(policy_stub_json).collect::<Vec<_>>())
    })
    .await
}

fn role_from<E: Env>(node: &Node<E>, input: RoleInput, id: String) -> Result<Role, HttpError> {
    let state = node.state.read();
    Ok(Role {
        id,
        name: input.name.clone().unwrap_or_default(),
        description: input.description.clone().unwrap_or_default(),
        policies: acl_input::resolve_links(input.policies.as_deref().unwrap_or(&[]), LinkKind::Policy, state.acl())?,
        service_identities: acl_input::service_identities(input.service_identities.as_deref().unwrap_or(&[]))?,
        node_identities: acl_input::node_identities(input.node_identities.as_deref().unwrap_or(&[]))?,
        create_index: 0,
        modify_index: 0,
    })
}

pub async fn create_role<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    let input = acl_input::decode_role(&body)?;
    let id = new_id(&node);
    let role = role_from(&node, input, id.clone())?;
    propose_as(&node, &caller, AclCommand::SetRole { role, create: true }).await?;
    let state = node.state.read();
    Ok(json_response(&read_back(&state, |s| s.acl().role(&id).map(|r| role_json(r, s.acl())))?, &params))
}

pub async fn update_role<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    let input = acl_input::decode_role(&body)?;
    if input.id.as_deref().is_some_and(|given| !given.is_empty() && given != id) {
        return Err(HttpError::bad_request("Role ID in URL and payload do not match"));
    }
    let role = role_from(&node, input, id.clone())?;
    propose_as(&node, &caller, AclCommand::SetRole { role, create: false }).await?;
    let state = node.state.read();
    Ok(json_response(&read_back(&state, |s| s.acl().role(&id).map(|r| role_json(r, s.acl())))?, &params))
}

pub async fn read_role<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    read_one(&node, &caller, query.as_deref(), WatchKey::AclRoles, |s, _| {
        s.acl().role(&id).map(|r| role_json(r, s.acl()))
    })
    .await
}

pub async fn read_role_by_name<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    read_one(&node, &caller, query.as_deref(), WatchKey::AclRoles, |s, _| {
        s.acl().role_by_name(&name).map(|r| role_json(r, s.acl()))
    })
    .await
}

pub async fn delete_role<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    delete_answer(&node, &caller, query.as_deref(), AclCommand::DeleteRole { id }).await
}

pub async fn list_roles<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    read_one(&node, &caller, query.as_deref(), WatchKey::AclRoles, |s, _| {
        Some(s.acl().roles().map(|r| role_json(r, s.acl())).collect::<Vec<_>>())
    })
    .await
}
