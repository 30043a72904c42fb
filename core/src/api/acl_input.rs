//! Bodies of the ACL endpoints (`/v1/acl/token`, `policy`, `role`, `auth-method`, `binding-rule`,
//! `login`), decoded with Consul's rules and checked as Consul checks them. Links may name a policy or
//! role by ID or by name; [`resolve_links`] turns names into IDs against the ACL table. IDs and secrets
//! the body leaves out are chosen by the caller (the server), so decoding stays deterministic.

use serde::Deserialize;

use super::duration::parse_go_duration;
use super::keys::decode_object;
use super::ApiError;
use crate::acl::{AclTable, Link, NodeIdentity, ServiceIdentity};

/// Consul's `acl_token_max_expiration_ttl` and `acl_token_min_expiration_ttl` defaults.
pub const TOKEN_TTL_MIN_MS: u64 = 60_000;
pub const TOKEN_TTL_MAX_MS: u64 = 24 * 3_600_000;

#[derive(Debug, Default, Deserialize)]
pub struct LinkInput {
    pub id: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceIdentityInput {
    #[serde(rename = "servicename")]
    pub service_name: Option<String>,
    pub datacenters: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeIdentityInput {
    #[serde(rename = "nodename")]
    pub node_name: Option<String>,
    pub datacenter: Option<String>,
}

/// Consul's `structs.ACLToken` as a body. Read-only fields a client echoes back are accepted and
/// ignored, as Consul ignores them.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenInput {
    #[serde(rename = "accessorid")]
    pub accessor_id: Option<String>,
    #[serde(rename = "secretid")]
    pub secret_id: Option<String>,
    pub description: Option<String>,
    pub policies: Option<Vec<LinkInput>>,
    pub roles: Option<Vec<LinkInput>>,
    #[serde(rename = "serviceidentities")]
    pub service_identities: Option<Vec<ServiceIdentityInput>>,
    #[serde(rename = "nodeidentities")]
    pub node_identities: Option<Vec<NodeIdentityInput>>,
    pub local: Option<bool>,
    #[serde(rename = "expirationtime")]
    pub expiration_time: Option<String>,
    #[serde(rename = "expirationttl")]
    pub expiration_ttl: Option<serde_json::Value>,
    #[serde(rename = "authmethod")]
    auth_method: Option<String>,
    #[serde(rename = "createtime")]
    create_time: Option<String>,
    hash: Option<String>,
    #[serde(rename = "createindex")]
    create_index: Option<u64>,
    #[serde(rename = "modifyindex")]
    modify_index: Option<u64>,
    legacy: Option<bool>,
    namespace: Option<String>,
    partition: Option<String>,
    #[serde(rename = "templatedpolicies")]
    templated_policies: Option<serde_json::Value>,
}

/// Decodes a token body; an empty body is an empty token.
pub fn decode_token(body: &[u8]) -> Result<TokenInput, ApiError> {
    let input: TokenInput = decode_object(non_empty(body), "structs.ACLToken")?;
    if input.templated_policies.as_ref().is_some_and(|t| !t.is_null() && t.as_array().is_none_or(|a| !a.is_empty())) {
        return Err(ApiError::bad_request("Templated policies are not supported by Conclave"));
    }
    Ok(input)
}

impl TokenInput {
    /// The token's expiry: `ExpirationTTL` (a Go duration) from `now_ms`, or `ExpirationTime`
    /// (RFC 3339). Returns (expiry ms, TTL ns).
    pub fn expiry(&self, now_ms: u64) -> Result<(Option<u64>, u64), ApiError> {
        let ttl = match &self.expiration_ttl {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) if s.is_empty() => None,
            Some(serde_json::Value::String(s)) => Some(parse_go_duration(s)?),
            Some(serde_json::Value::Number(n)) => {
                Some(std::time::Duration::from_nanos(n.as_u64().ok_or_else(|| bad_ttl(&n.to_string()))?))
            }
            Some(other) => return Err(bad_ttl(&other.to_string())),
        };
        let time = self.expiration_time.as_deref().filter(|t| !t.is_empty());
        match (ttl, time) {
            (Some(_), Some(_)) => Err(ApiError::bad_request("Expiration TTL and Expiration Time cannot both be set")),
            (Some(ttl), None) => {
                let ms = ttl.as_millis() as u64;
                if ms == 0 {
                    return Ok((None, 0));
                }
                if !(TOKEN_TTL_MIN_MS..=TOKEN_TTL_MAX_MS).contains(&ms) {
                    return Err(ApiError::bad_request(format!(
                        "Expiration TTL '{ttl:?}' should be between 1m0s and 24h0m0s"
                    )));
                }
                Ok((Some(now_ms + ms), ttl.as_nanos() as u64))
            }
            (None, Some(time)) => {
                let at = chrono::DateTime::parse_from_rfc3339(time)
                    .map_err(|e| ApiError::bad_request(format!("Invalid ExpirationTime {time:?}: {e}")))?;
                let at_ms = at.timestamp_millis().max(0) as u64;
                if at_ms <= now_ms {
                    return Err(ApiError::bad_request("ExpirationTime cannot be in the past"));
                }
                Ok((Some(at_ms), 0))
            }
            (None, None) => Ok((None, 0)),
        }
    }
}

fn bad_ttl(text: &str) -> ApiError {
    ApiError::bad_request(format!("Request decode failed: invalid ExpirationTTL {text}"))
}

fn non_empty(body: &[u8]) -> &[u8] {
    if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    }
}

/// Which kind of record a link points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    Policy,
    Role,
}

/// Turns links given by ID or name into links by ID, refusing one that names nothing.
pub fn resolve_links(links: &[LinkInput], kind: LinkKind, table: &AclTable) -> Result<Vec<Link>, ApiError> {
    let mut out: Vec<Link> = Vec::new();
    for link in links {
        let id = match (link.id.as_deref().filter(|s| !s.is_empty()), link.name.as_deref().filter(|s| !s.is_empty())) {
            (Some(id), _) => match kind {
                LinkKind::Policy => table.policy(id).map(|p| p.id.clone()),
                LinkKind::Role => table.role(id).map(|r| r.id.clone()),
            }
            .ok_or_else(|| ApiError::bad_request(format!("No such ACL {} with ID {id:?}", kind_name(kind))))?,
            (None, Some(name)) => match kind {
                LinkKind::Policy => table.policy_by_name(name).map(|p| p.id.clone()),
                LinkKind::Role => table.role_by_name(name).map(|r| r.id.clone()),
            }
            .ok_or_else(|| ApiError::bad_request(format!("No such ACL {} with name {name:?}", kind_name(kind))))?,
            (None, None) => {
                return Err(ApiError::bad_request(format!("{} link needs an ID or a Name", kind_name(kind))));
            }
        };
        if !out.iter().any(|l| l.id == id) {
            out.push(Link { id });
        }
    }
    Ok(out)
}

fn kind_name(kind: LinkKind) -> &'static str {
    match kind {
        LinkKind::Policy => "policy",
        LinkKind::Role => "role",
    }
}

/// Consul's service names in identities: lowercase alphanumerics and dashes, up to 256.
pub fn valid_service_identity_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

pub fn service_identities(inputs: &[ServiceIdentityInput]) -> Result<Vec<ServiceIdentity>, ApiError> {
    inputs
        .iter()
        .map(|input| {
            let name = input.service_name.clone().unwrap_or_default();
            if !valid_service_identity_name(&name) {
                return Err(ApiError::bad_request(format!("Service identity {name:?} has an invalid name")));
            }
            Ok(ServiceIdentity { service_name: name, datacenters: input.datacenters.clone().unwrap_or_default() })
        })
        .collect()
}

pub fn node_identities(inputs: &[NodeIdentityInput]) -> Result<Vec<NodeIdentity>, ApiError> {
    inputs
        .iter()
        .map(|input| {
            let name = input.node_name.clone().unwrap_or_default();
            let datacenter = input.datacenter.clone().unwrap_or_default();
            if name.is_empty() || name.len() > 256 {
                return Err(ApiError::bad_request(format!("Node identity {name:?} has an invalid name")));
            }
            if datacenter.is_empty() {
                return Err(ApiError::bad_request(format!("Node identity {name:?} is missing the datacenter field")));
            }
            Ok(NodeIdentity { node_name: name, datacenter })
        })
        .collect()
}

/// Consul's `structs.ACLPolicy` as a body.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    pub id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub rules: Option<String>,
    pub datacenters: Option<Vec<String>>,
    hash: Option<String>,
    #[serde(rename = "createindex")]
    create_index: Option<u64>,
    #[serde(rename = "modifyindex")]
    modify_index: Option<u64>,
    namespace: Option<String>,
    partition: Option<String>,
}

/// Decodes a policy body and checks its name and rules.
pub fn decode_policy(body: &[u8]) -> Result<PolicyInput, ApiError> {
    let input: PolicyInput = decode_object(non_empty(body), "structs.ACLPolicy")?;
    let name = input.name.as_deref().unwrap_or("");
    if !valid_acl_name(name, 128) {
        return Err(ApiError::bad_request(
            "Invalid Policy: invalid Name. Only alphanumeric characters, '-' and '_' are allowed",
        ));
    }
    crate::acl::parse_rules(input.rules.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("Invalid Policy: {e}")))?;
    Ok(input)
}

/// Policy and role names: `^[A-Za-z0-9\-_]{1,max}$`.
pub fn valid_acl_name(name: &str, max: usize) -> bool {
    !name.is_empty() && name.len() <= max && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Consul's `structs.ACLRole` as a body.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    pub id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub policies: Option<Vec<LinkInput>>,
    #[serde(rename = "serviceidentities")]
    pub service_identities: Option<Vec<ServiceIdentityInput>>,
    #[serde(rename = "nodeidentities")]
    pub node_identities: Option<Vec<NodeIdentityInput>>,
    hash: Option<String>,
    #[serde(rename = "createindex")]
    create_index: Option<u64>,
    #[serde(rename = "modifyindex")]
    modify_index: Option<u64>,
    namespace: Option<String>,
    partition: Option<String>,
    #[serde(rename = "templatedpolicies")]
    templated_policies: Option<serde_json::Value>,
}

pub fn decode_role(body: &[u8]) -> Result<RoleInput, ApiError> {
    let input: RoleInput = decode_object(non_empty(body), "structs.ACLRole")?;
    if !valid_acl_name(input.name.as_deref().unwrap_or(""), 256) {
        return Err(ApiError::bad_request(
            "Invalid Role: invalid Name. Only alphanumeric characters, '-' and '_' are allowed",
        ));
    }
    Ok(input)
}

/// Consul's `structs.ACLAuthMethod` as a body.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthMethodInput {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub method_type: Option<String>,
    #[serde(rename = "displayname")]
    pub display_name: Option<String>,
    pub description: Option<String>,
    #[serde(rename = "maxtokenttl")]
    pub max_token_ttl: Option<serde_json::Value>,
    #[serde(rename = "tokenlocality")]
    pub token_locality: Option<String>,
    pub config: Option<serde_json::Value>,
    #[serde(rename = "createindex")]
    create_index: Option<u64>,
    #[serde(rename = "modifyindex")]
    modify_index: Option<u64>,
    #[serde(rename = "namespacerules")]
    namespace_rules: Option<serde_json::Value>,
    namespace: Option<String>,
    partition: Option<String>,
}

/// Decodes an auth method body. `Config` is the method's own document and keeps its keys exactly (claim
/// names are case-sensitive), so it is taken out before the rest is decoded case-insensitively.
pub fn decode_auth_method(body: &[u8]) -> Result<AuthMethodInput, ApiError> {
    let mut config = None;
    let mut body = non_empty(body).to_vec();
    if let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_slice::<serde_json::Value>(&body) {
        if let Some(key) = fields.keys().find(|k| k.eq_ignore_ascii_case("config")).cloned() {
            config = fields.remove(&key);
            body = serde_json::to_vec(&fields).expect("JSON values always serialize");
        }
    }
    let mut input: AuthMethodInput = decode_object(&body, "structs.ACLAuthMethod")?;
    input.config = config;
    if !valid_acl_name(input.name.as_deref().unwrap_or(""), 128) {
        return Err(ApiError::bad_request(
            "Invalid Auth Method: invalid Name. Only alphanumeric characters, '-' and '_' are allowed",
        ));
    }
    match input.token_locality.as_deref() {
        None | Some("") | Some("local") | Some("global") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!("Invalid Auth Method: invalid TokenLocality {other:?}")));
        }
    }
    Ok(input)
}

impl AuthMethodInput {
    /// `MaxTokenTTL` in ns (a Go duration or a number of ns; 0 when absent).
    pub fn max_token_ttl_ns(&self) -> Result<u64, ApiError> {
        match &self.max_token_ttl {
            None | Some(serde_json::Value::Null) => Ok(0),
            Some(serde_json::Value::String(s)) if s.is_empty() => Ok(0),
            Some(serde_json::Value::String(s)) => Ok(parse_go_duration(s)?.as_nanos() as u64),
            Some(serde_json::Value::Number(n)) => n.as_u64().ok_or_else(|| bad_ttl(&n.to_string())),
            Some(other) => Err(bad_ttl(&other.to_string())),
        }
    }
}

/// Consul's `structs.ACLBindingRule` as a body.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingRuleInput {
    pub id: Option<String>,
    pub description: Option<String>,
    #[serde(rename = "authmethod")]
    pub auth_method: Option<String>,
    pub selector: Option<String>,
    #[serde(rename = "bindtype")]
    pub bind_type: Option<String>,
    #[serde(rename = "bindname")]
    pub bind_name: Option<String>,
    #[serde(rename = "bindvars")]
    bind_vars: Option<serde_json::Value>,
    #[serde(rename = "createindex")]
    create_index: Option<u64>,
    #[serde(rename = "modifyindex")]
    modify_index: Option<u64>,
    namespace: Option<String>,
    partition: Option<String>,
}

pub fn decode_binding_rule(body: &[u8]) -> Result<BindingRuleInput, ApiError> {
    let input: BindingRuleInput = decode_object(non_empty(body), "structs.ACLBindingRule")?;
    if input.auth_method.as_deref().unwrap_or("").is_empty() {
        return Err(ApiError::bad_request("Invalid Binding Rule: no AuthMethod is set"));
    }
    if crate::acl::BindType::parse(input.bind_type.as_deref().unwrap_or("")).is_none() {
        return Err(ApiError::bad_request(format!(
            "Invalid Binding Rule: unknown BindType {:?}",
            input.bind_type.as_deref().unwrap_or("")
        )));
    }
    if input.bind_name.as_deref().unwrap_or("").is_empty() {
        return Err(ApiError::bad_request("Invalid Binding Rule: no BindName is set"));
    }
    Ok(input)
}

/// `POST /v1/acl/login`'s body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    #[serde(rename = "authmethod")]
    pub auth_method: Option<String>,
    #[serde(rename = "bearertoken")]
    pub bearer_token: Option<String>,
    pub meta: Option<std::collections::BTreeMap<String, String>>,
    pub namespace: Option<String>,
    pub partition: Option<String>,
}

pub fn decode_login(body: &[u8]) -> Result<LoginInput, ApiError> {
    let input: LoginInput = decode_object(non_empty(body), "structs.ACLLoginParams")?;
    if input.auth_method.as_deref().unwrap_or("").is_empty() {
        return Err(ApiError::bad_request("Missing auth method name"));
    }
    if input.bearer_token.as_deref().unwrap_or("").is_empty() {
        return Err(ApiError::bad_request("Missing auth method bearer token"));
    }
    Ok(input)
}
