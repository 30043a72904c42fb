//! ACLs on the HTTP API: the request's token (`X-Consul-Token`, `Authorization: Bearer`, `?token=`, else
//! the agent's default token, else anonymous) resolved once per request into a [`Caller`], which
//! handlers ask for permissions (403 with Consul's text when missing) and use to filter lists (marking
//! the answer `X-Consul-Results-Filtered-By-ACLs: true` when something was left out). Writes carry the
//! caller's authority into Raft, where the state decides.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use conclave_core::acl::{AclError, Authority, Need, ResolvedIdentity, Resource};

use super::HttpError;
use crate::env::Env;
use crate::node::Node;

/// Who is asking: the secret the request acts with and, with ACLs on, what it may do.
#[derive(Clone, Debug)]
pub struct Caller {
    pub secret: String,
    /// The request named its token (header, bearer or query) rather than falling back to the default.
    explicit: bool,
    /// None with ACLs off: everything is allowed.
    identity: Option<Arc<ResolvedIdentity>>,
    default_allow: bool,
    authority: Option<Authority>,
}

impl Caller {
    /// A caller that may do everything (ACLs off).
    pub fn unrestricted() -> Caller {
        Caller { secret: String::new(), explicit: false, identity: None, default_allow: true, authority: None }
    }

    pub fn accessor_id(&self) -> &str {
        self.identity.as_ref().map(|i| i.accessor_id.as_str()).unwrap_or("")
    }

    pub fn allows(&self, resource: Resource, segment: &str, need: Need) -> bool {
        match &self.identity {
            None => true,
            Some(identity) => identity.authorizer(self.default_allow).allows(resource, segment, need),
        }
    }

    /// `Ok` when allowed, else Consul's 403 naming the permission.
    pub fn require(&self, resource: Resource, segment: &str, need: Need) -> Result<(), HttpError> {
        if self.allows(resource, segment, need) {
            return Ok(());
        }
        let denied = AclError::Denied {
            accessor_id: self.accessor_id().to_string(),
            resource,
            need,
            segment: segment.to_string(),
        };
        Err(denied.into())
    }

    /// The authority its writes are proposed under (None with ACLs off).
    pub fn authority(&self) -> Option<Authority> {
        self.authority.clone()
    }

    /// A filter over this caller's permissions that remembers whether it left anything out.
    pub fn filter(&self) -> Filter<'_> {
        Filter { caller: self, removed: AtomicBool::new(false) }
    }
}

impl From<AclError> for HttpError {
    fn from(e: AclError) -> HttpError {
        HttpError::new(StatusCode::FORBIDDEN, e.to_string())
    }
}

/// Decides which entries of a list a caller may see.
pub struct Filter<'a> {
    caller: &'a Caller,
    removed: AtomicBool,
}

impl Filter<'_> {
    /// Whether the caller may read `segment` of `resource`; a refusal is remembered.
    pub fn keep(&self, resource: Resource, segment: &str) -> bool {
        let allowed = self.caller.allows(resource, segment, Need::Read);
        if !allowed {
            self.removed.store(true, Ordering::Relaxed);
        }
        allowed
    }

    /// A service instance is shown when the caller may read both its service and its node.
    pub fn keep_instance(&self, node: &str, service: &str) -> bool {
        self.keep(Resource::Service, service) && self.keep(Resource::Node, node)
    }

    /// A check is shown with its node, and with its service when it has one.
    pub fn keep_check(&self, node: &str, service_name: &str) -> bool {
        self.keep(Resource::Node, node) && (service_name.is_empty() || self.keep(Resource::Service, service_name))
    }

    pub fn removed(&self) -> bool {
        self.removed.load(Ordering::Relaxed)
    }

    /// Marks `response` as filtered if anything was left out.
    pub fn mark(&self, response: &mut Response) {
        if self.removed() {
            response.headers_mut().insert("x-consul-results-filtered-by-acls", HeaderValue::from_static("true"));
        }
    }
}

/// The token a request carries, from Consul's three places.
pub fn token_of(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(token) = headers.get("x-consul-token").and_then(|v| v.to_str().ok()).filter(|t| !t.is_empty()) {
        return Some(token.to_string());
    }
    let bearer = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if let Some(token) = bearer.and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).filter(|t| !t.is_empty()) {
        return Some(token.to_string());
    }
    let query = query?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, v)| k == "token" && !v.is_empty())
        .map(|(_, v)| v)
}

/// Resolves the caller of a request with these headers and query.
pub async fn resolve_caller<E: Env>(
    node: &Node<E>,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Caller, HttpError> {
    let given = token_of(headers, query);
    resolve_secret(node, given.is_some(), node.request_secret(given.as_deref())).await
}

async fn resolve_secret<E: Env>(node: &Node<E>, explicit: bool, secret: String) -> Result<Caller, HttpError> {
    if !node.config.acl.enabled {
        return Ok(Caller { secret, explicit, ..Caller::unrestricted() });
    }
    let identity = node.resolve_token(&secret).await?;
    let authority = node.authority(&secret);
    Ok(Caller { secret, explicit, identity: Some(identity), default_allow: node.config.acl.default_allow, authority })
}

impl Caller {
    /// Consul's `Token` field of a write body (catalog register and deregister): it is the request's
    /// token when the request named none in a header or the query.
    pub async fn with_body_token<E: Env>(self, node: &Node<E>, body: &[u8]) -> Result<Caller, HttpError> {
        if self.explicit {
            return Ok(self);
        }
        let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Ok(self);
        };
        let token = fields.iter().find(|(k, _)| k.eq_ignore_ascii_case("token")).and_then(|(_, v)| v.as_str());
        match token.filter(|t| !t.is_empty()) {
            Some(token) => resolve_secret(node, true, token.to_string()).await,
            None => Ok(self),
        }
    }
}

impl<E: Env> FromRequestParts<Arc<Node<E>>> for Caller {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, node: &Arc<Node<E>>) -> Result<Caller, HttpError> {
        resolve_caller(node, &parts.headers, parts.uri.query()).await
    }
}

/// Maps what applying a write answered when the ACL system refused it.
pub fn denied(why: String) -> HttpError {
    HttpError::new(StatusCode::FORBIDDEN, why)
}
