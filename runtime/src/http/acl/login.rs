//! Auth methods, binding rules, and login/logout with the `jwt` method: a bearer JWT verified against the
//! method's keys becomes a token bound to what the matching binding rules name (policies, roles, service
//! and node identities), created by the server for the caller; logout deletes it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use conclave_core::acl::login::{self as jwt, JwtConfig};
use conclave_core::acl::{AclCommand, AuthMethod, BindType, BindingRule, Link, NodeIdentity, ServiceIdentity, Token};
use conclave_core::api::acl_input;
use conclave_core::api::encode_acl::{auth_method_json, binding_rule_json, token_json};
use conclave_core::state::WatchKey;

use super::{delete_answer, new_id, propose, propose_as, read_back, read_one, require_enabled};
use crate::env::Env;
use crate::http::authz::Caller;
use crate::http::{json_response, HttpError, QueryParams};
use crate::node::Node;

fn method_from(body: &[u8]) -> Result<AuthMethod, HttpError> {
    let input = acl_input::decode_auth_method(body)?;
    let method_type = input.method_type.clone().unwrap_or_default();
    if method_type != "jwt" {
        return Err(HttpError::bad_request(format!(
            "Invalid Auth Method: Type should be one of: [jwt] (Conclave serves the jwt type), not {method_type:?}"
        )));
    }
    let config = input.config.clone().unwrap_or_else(|| serde_json::json!({}));
    JwtConfig::parse(&config).map_err(HttpError::bad_request)?;
    Ok(AuthMethod {
        name: input.name.clone().unwrap_or_default(),
        method_type,
        display_name: input.display_name.clone().unwrap_or_default(),
        description: input.description.clone().unwrap_or_default(),
        max_token_ttl_ns: input.max_token_ttl_ns()?,
        token_locality: input.token_locality.clone().filter(|l| !l.is_empty()).unwrap_or_else(|| "local".into()),
        config_json: config.to_string(),
        create_index: 0,
        modify_index: 0,
    })
}

pub async fn create_method<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    let method = method_from(&body)?;
    let name = method.name.clone();
    propose_as(&node, &caller, AclCommand::SetAuthMethod { method, create: true }).await?;
    let state = node.state.read();
    Ok(json_response(&read_back(&state, |s| s.acl().auth_method(&name).map(auth_method_json))?, &params))
}

pub async fn update_method<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    let method = method_from(&body)?;
    if method.name != name {
        return Err(HttpError::bad_request("Auth method name in URL and payload do not match"));
    }
    propose_as(&node, &caller, AclCommand::SetAuthMethod { method, create: false }).await?;
    let state = node.state.read();
    Ok(json_response(&read_back(&state, |s| s.acl().auth_method(&name).map(auth_method_json))?, &params))
}

pub async fn read_method<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    read_one(&node, &caller, query.as_deref(), WatchKey::AclAuthMethods, |s, _| {
        s.acl().auth_method(&name).map(auth_method_json)
    })
    .await
}

pub async fn delete_method<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    delete_answer(&node, &caller, query.as_deref(), AclCommand::DeleteAuthMethod { name }).await
}

pub async fn list_methods<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    read_one(&node, &caller, query.as_deref(), WatchKey::AclAuthMethods, |s, _| {
        Some(s.acl().auth_methods().map(auth_method_json).collect::<Vec<_>>())
    })
    .await
}

/// A binding rule from its body, its selector and bind name checked against the method's claims.
fn rule_from<E: Env>(node: &Node<E>, body: &[u8], id: String) -> Result<BindingRule, HttpError> {
    let input = acl_input::decode_binding_rule(body)?;
    let method_name = input.auth_method.clone().unwrap_or_default();
    let method = node.state.read().acl().auth_method(&method_name).cloned();
    let method = method
        .ok_or_else(|| HttpError::bad_request(format!("Invalid Binding Rule: unknown auth method {method_name:?}")))?;
    let config = method_config(&method)?;
    let selector = input.selector.clone().unwrap_or_default();
    jwt::parse_selector(&selector)
        .map_err(|e| HttpError::bad_request(format!("invalid Binding Rule: Selector is invalid: {e}")))?;
    let bind_name = input.bind_name.clone().unwrap_or_default();
    jwt::interpolate_bind_name(&bind_name, &jwt::placeholder_identity(&config))
        .map_err(|e| HttpError::bad_request(format!("Invalid Binding Rule: invalid BindName: {e}")))?;
    Ok(BindingRule {
        id,
        description: input.description.clone().unwrap_or_default(),
        auth_method: method_name,
        selector,
        bind_type: BindType::parse(input.bind_type.as_deref().unwrap_or("")).expect("checked by decode"),
        bind_name,
        create_index: 0,
        modify_index: 0,
    })
}

fn method_config(method: &AuthMethod) -> Result<JwtConfig, HttpError> {
    let value: serde_json::Value = serde_json::from_str(&method.config_json).unwrap_or_default();
    JwtConfig::parse(&value).map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e))
}

pub async fn create_rule<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    require_enabled(&node)?;
    let id = new_id(&node);
    let rule = rule_from(&node, &body, id.clone())?;
    propose_as(&node, &caller, AclCommand::SetBindingRule { rule, create: true }).await?;
    let state = node.state.read();
    Ok(json_response(&read_back(&state, |s| s.acl().binding_rule(&id).map(binding_rule_json))?, &params))
}

pub async fn update_rule<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    require_enabled(&node)?;
    let rule = rule_from(&node, &body, id.clone())?;
    propose_as(&node, &caller, AclCommand::SetBindingRule { rule, create: false }).await?;
    let state = node.state.read();
    Ok(json_response(&read_back(&state, |s| s.acl().binding_rule(&id).map(binding_rule_json))?, &params))
}

pub async fn read_rule<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    read_one(&node, &caller, query.as_deref(), WatchKey::AclBindingRules, |s, _| {
        s.acl().binding_rule(&id).map(binding_rule_json)
    })
    .await
}

pub async fn delete_rule<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    delete_answer(&node, &caller, query.as_deref(), AclCommand::DeleteBindingRule { id }).await
}

pub async fn list_rules<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    read_one(&node, &caller, query.as_deref(), WatchKey::AclBindingRules, |s, params| {
        let method = params.value("authmethod");
        let rules = s.acl().binding_rules().filter(|r| method.is_none_or(|m| r.auth_method == m));
        Some(rules.map(binding_rule_json).collect::<Vec<_>>())
    })
    .await
}

fn permission_denied() -> HttpError {
    HttpError::new(StatusCode::FORBIDDEN, "Permission denied")
}

/// `POST /v1/acl/login`: the bearer token is verified, the method's binding rules that match bind the
/// new token, and the server creates it (the login is its own authority).
pub async fn login<E: Env>(
    State(node): State<Arc<Node<E>>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    require_enabled(&node)?;
    let params = QueryParams::parse(query.as_deref())?;
    let input = acl_input::decode_login(&body)?;
    let method_name = input.auth_method.clone().unwrap_or_default();
    let (method, rules) = {
        let state = node.state.read();
        let method = state.acl().auth_method(&method_name).cloned();
        let method = method.ok_or_else(|| HttpError::bad_request(format!("auth method {method_name:?} not found")))?;
        let rules: Vec<BindingRule> =
            state.acl().binding_rules().filter(|r| r.auth_method == method_name).cloned().collect();
        (method, rules)
    };
    let config = method_config(&method)?;
    let now_ms = node.env.unix_time_ms();
    let identity =
        jwt::validate(&config, input.bearer_token.as_deref().unwrap_or(""), now_ms / 1000).map_err(|why| {
            tracing::info!(target: "conclave::acl", method = %method_name, %why, "login refused");
            permission_denied()
        })?;
    let accessor = new_id(&node);
    let mut token = Token {
        accessor_id: accessor.clone(),
        secret_id: new_id(&node),
        description: format!("token created via login: {}", serde_json::json!(input.meta.unwrap_or_default())),
        policies: Vec::new(),
        roles: Vec::new(),
        service_identities: Vec::new(),
        node_identities: Vec::new(),
        local: method.token_locality != "global",
        expiration_time_ms: (method.max_token_ttl_ns > 0).then(|| now_ms + method.max_token_ttl_ns / 1_000_000),
        expiration_ttl_ns: method.max_token_ttl_ns,
        auth_method: method_name,
        create_time_ms: 0,
        create_index: 0,
        modify_index: 0,
    };
    bind(&node, &rules, &identity, &mut token)?;
    if token.policies.is_empty()
        && token.roles.is_empty()
        && token.service_identities.is_empty()
        && token.node_identities.is_empty()
    {
        return Err(permission_denied());
    }
    propose(&node, None, AclCommand::SetToken { token, create: true }).await?;
    let state = node.state.read();
    let token = read_back(&state, |s| s.acl().token(&accessor).cloned())?;
    Ok(json_response(&token_json(&token, state.acl(), true), &params))
}

/// Adds to `token` what each matching rule binds; a policy or role that does not exist binds nothing.
fn bind<E: Env>(
    node: &Node<E>,
    rules: &[BindingRule],
    identity: &jwt::Identity,
    token: &mut Token,
) -> Result<(), HttpError> {
    let state = node.state.read();
    for rule in rules {
        let selector =
            jwt::parse_selector(&rule.selector).map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
        if !selector.matches(identity) {
            continue;
        }
        let Ok(name) = jwt::interpolate_bind_name(&rule.bind_name, identity) else { continue };
        match rule.bind_type {
            BindType::Service if jwt::valid_service_name(&name) => {
                token.service_identities.push(ServiceIdentity { service_name: name, datacenters: Vec::new() })
            }
            BindType::Node => {
                token.node_identities.push(NodeIdentity { node_name: name, datacenter: node.config.datacenter.clone() })
            }
            BindType::Policy => {
                if let Some(policy) = state.acl().policy_by_name(&name) {
                    token.policies.push(Link { id: policy.id.clone() });
                }
            }
            BindType::Role => {
                if let Some(role) = state.acl().role_by_name(&name) {
                    token.roles.push(Link { id: role.id.clone() });
                }
            }
            BindType::Service => {}
        }
    }
    token.policies.dedup();
    token.roles.dedup();
    Ok(())
}

/// `POST /v1/acl/logout`: deletes the caller's token, which must come from a login.
pub async fn logout<E: Env>(State(node): State<Arc<Node<E>>>, caller: Caller) -> Result<Response, HttpError> {
    require_enabled(&node)?;
    let from_login = node.state.read().acl().token_by_secret(&caller.secret).is_some_and(|t| !t.auth_method.is_empty());
    if !from_login {
        return Err(permission_denied());
    }
    propose(&node, None, AclCommand::Logout { secret_id: conclave_core::acl::command::Secret(caller.secret.clone()) })
        .await?;
    Ok(crate::http::empty_ok())
}
