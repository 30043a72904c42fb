//! The HTTP API (Consul's `/v1/...`), served by axum over the Env's listener. This module holds what every
//! endpoint shares: query parameters, consistency modes, blocking queries, the response headers and
//! errors. One file per API area holds the handlers.

mod acl;
mod agent;
pub mod authz;
mod autopilot;
mod catalog;
mod connect_ca;
pub mod event;
pub mod forward;
mod health;
mod keyring;
mod kv;
mod metrics;
mod operator;
mod params;
pub mod serve;
mod session;
mod snapshot;
mod status;
mod txn;
mod ui;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use conclave_core::state::{State, WatchKey};
use serde::Serialize;

pub use params::{Consistency, QueryParams};

use crate::env::Env;
use crate::node::requests::RequestError;
use crate::node::Node;

/// Largest request body accepted; bigger bodies get 413 before they are read.
pub const REQUEST_BODY_BYTES_MAX: usize = 1 << 20;

/// The API's router. `face_routes` are the endpoints other faces serve over HTTP (the DNS interface's
/// forwarded queries); they pass through the same forwarding and request guards.
pub fn router<E: Env>(node: Arc<Node<E>>, face_routes: Router<Arc<Node<E>>>) -> Router {
    let ui = node.config.ui;
    let router = Router::new()
        .route("/v1/agent/self", get(agent::agent_self::<E>))
        .route("/v1/agent/members", get(agent::members::<E>))
        .route("/v1/agent/metrics", get(metrics::metrics::<E>))
        .route("/v1/agent/services", get(agent::services::<E>))
        .route("/v1/agent/service/{id}", get(agent::service::<E>))
        .route("/v1/agent/service/register", put(agent::register_service::<E>))
        .route("/v1/agent/service/deregister/{id}", put(agent::deregister_service::<E>))
        .route("/v1/agent/service/maintenance/{id}", put(agent::service_maintenance::<E>))
        .route("/v1/agent/maintenance", put(agent::node_maintenance::<E>))
        .route("/v1/agent/checks", get(agent::checks::<E>))
        .route("/v1/agent/check/register", put(agent::register_check::<E>))
        .route("/v1/agent/check/deregister/{id}", put(agent::deregister_check::<E>))
        .route("/v1/agent/check/pass/{id}", put(agent::pass_check::<E>))
        .route("/v1/agent/check/warn/{id}", put(agent::warn_check::<E>))
        .route("/v1/agent/check/fail/{id}", put(agent::fail_check::<E>))
        .route("/v1/agent/check/update/{id}", put(agent::update_check::<E>))
        .route("/v1/agent/join/{address}", put(agent::join::<E>))
        .route("/v1/agent/leave", put(agent::leave::<E>))
        .route("/v1/agent/force-leave/{node}", put(agent::force_leave::<E>))
        .route("/v1/agent/reload", put(agent::reload::<E>))
        .route("/v1/agent/monitor", get(agent::monitor::<E>))
        .route("/v1/agent/host", get(agent::host::<E>))
        .route("/v1/catalog/register", put(catalog::register::<E>))
        .route("/v1/catalog/deregister", put(catalog::deregister::<E>))
        .route("/v1/catalog/datacenters", get(catalog::datacenters::<E>))
        .route("/v1/catalog/services", get(catalog::services::<E>))
        .route("/v1/catalog/service/{name}", get(catalog::service::<E>))
        .route("/v1/catalog/nodes", get(catalog::nodes::<E>))
        .route("/v1/catalog/node/{node}", get(catalog::node::<E>))
        .route("/v1/health/service/{name}", get(health::service::<E>))
        .route("/v1/status/leader", get(status::leader::<E>))
        .route("/v1/status/peers", get(status::peers::<E>))
        .route("/v1/connect/ca/roots", get(connect_ca::roots::<E>))
        .route("/v1/agent/connect/ca/roots", get(connect_ca::roots::<E>))
        .route("/v1/operator/raft/configuration", get(operator::configuration::<E>))
        .route("/v1/operator/raft/peer", axum::routing::delete(operator::remove_peer::<E>))
        .route("/v1/operator/raft/transfer-leader", axum::routing::post(operator::transfer_leader::<E>))
        .route(
            "/v1/operator/autopilot/configuration",
            get(autopilot::get_configuration::<E>).put(autopilot::put_configuration::<E>),
        )
        .route("/v1/operator/autopilot/health", get(autopilot::health::<E>))
        .route("/v1/operator/autopilot/state", get(autopilot::state::<E>))
        .route(
            "/v1/operator/keyring",
            get(keyring::keyring::<E>)
                .post(keyring::keyring::<E>)
                .put(keyring::keyring::<E>)
                .delete(keyring::keyring::<E>),
        )
        .route("/v1/catalog/node-services/{node}", get(catalog::node_services::<E>))
        .route("/v1/health/node/{node}", get(health::node::<E>))
        .route("/v1/health/checks/{service}", get(health::checks::<E>))
        .route("/v1/health/state/{state}", get(health::state::<E>))
        .route("/v1/kv", axum::routing::any(kv::handle::<E>))
        .route("/v1/kv/", axum::routing::any(kv::handle::<E>))
        .route("/v1/kv/{*key}", axum::routing::any(kv::handle::<E>))
        .route("/v1/session/create", put(session::create::<E>))
        .route("/v1/session/destroy/{id}", put(session::destroy::<E>))
        .route("/v1/session/renew/{id}", put(session::renew::<E>))
        .route("/v1/session/info/{id}", get(session::info::<E>))
        .route("/v1/session/node/{node}", get(session::of_node::<E>))
        .route("/v1/session/list", get(session::list::<E>))
        .route("/v1/txn", put(txn::txn::<E>))
        .route("/v1/snapshot", get(snapshot::save::<E>).put(snapshot::restore::<E>))
        .route("/v1/event/fire/", put(event::fire_unnamed))
        .route("/v1/event/fire/{name}", put(event::fire::<E>))
        .route("/v1/event/list", get(event::list::<E>))
        .merge(acl::routes())
        .merge(face_routes)
        .fallback(unknown_path)
        .layer(axum::middleware::from_fn_with_state(node.clone(), forward_if_client::<E>))
        .layer(axum::middleware::from_fn_with_state(node.clone(), metrics::time_request::<E>))
        .layer(axum::middleware::from_fn(guard_request))
        .layer(DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
        .with_state(node);
    if ui {
        router.route("/ui/", get(ui::page)).route("/ui", get(ui::root)).route("/", get(ui::root))
    } else {
        router
    }
}

/// What every request goes through first: a body whose declared length is over the limit gets 413 before
/// any of it is read, and a 405 says which method was refused, as Consul's does.
async fn guard_request(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Bodies up to the limit are read, so that a client still sending gets its answer (the KV endpoint
    // answers 413 itself above its 512 KiB value limit); beyond it nothing is read.
    // A snapshot restore streams its archive to disk: it has no body limit.
    let unlimited = request.uri().path() == "/v1/snapshot";
    if let Some(length) = declared.filter(|length| *length > REQUEST_BODY_BYTES_MAX as u64 && !unlimited) {
        let message = format!("Request body({length} bytes) too large, max size: {REQUEST_BODY_BYTES_MAX} bytes");
        return HttpError::new(StatusCode::PAYLOAD_TOO_LARGE, message).into_response();
    }
    let method = request.method().clone();
    let url = redacted_url(request.uri());
    let started = tokio::time::Instant::now();
    let response = next.run(request).await;
    // Consul's agent.http debug line; the URL's token is hidden, as Consul hides it.
    tracing::debug!(target: "conclave::http", method = %method, url = %url, latency = ?started.elapsed(), "Request finished");
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && axum::body::HttpBody::size_hint(response.body()).exact() == Some(0)
    {
        let (parts, _) = response.into_parts();
        let mut replaced = Response::from_parts(parts, Body::from(format!("method {method} not allowed")));
        replaced.headers_mut().insert("content-type", HeaderValue::from_static("text/plain; charset=utf-8"));
        return replaced;
    }
    response
}

/// The request's path and query with any `token=` value replaced by `<hidden>`, for the log.
fn redacted_url(uri: &axum::http::Uri) -> String {
    let Some(query) = uri.query() else { return uri.path().to_string() };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("token") => format!("{key}=<hidden>"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{}?{}", uri.path(), pairs.join("&"))
}

async fn unknown_path(uri: axum::http::Uri) -> HttpError {
    if uri.path().contains("/v1/") {
        HttpError::new(StatusCode::NOT_FOUND, "Invalid URL path: not a recognized HTTP API endpoint")
    } else {
        HttpError::new(
            StatusCode::NOT_FOUND,
            "Invalid URL path: if attempting to use the HTTP API, ensure the path starts with '/v1/'",
        )
    }
}

/// An error answer: Consul sends these as plain text.
#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub message: String,
}

impl HttpError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> HttpError {
        HttpError { status, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<RequestError> for HttpError {
    fn from(e: RequestError) -> HttpError {
        HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl From<conclave_core::api::ApiError> for HttpError {
    fn from(e: conclave_core::api::ApiError) -> HttpError {
        HttpError::new(StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST), e.message)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.message).into_response();
        response.headers_mut().insert("content-type", HeaderValue::from_static("text/plain; charset=utf-8"));
        response
    }
}

/// Serializes `value` as Consul does: compact, or indented by four spaces with a newline for `?pretty`.
pub fn json_body<T: Serialize>(value: &T, pretty: bool) -> Vec<u8> {
    if pretty {
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        value.serialize(&mut serializer).expect("JSON values always serialize");
        out.push(b'\n');
        out
    } else {
        serde_json::to_vec(value).expect("JSON values always serialize")
    }
}

/// A 200 JSON answer without query metadata (writes).
pub fn json_response<T: Serialize>(value: &T, params: &QueryParams) -> Response {
    let mut response = Response::new(Body::from(json_body(value, params.pretty)));
    response.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    response
}

/// A 200 answer with an empty body, as Consul gives for agent writes.
pub fn empty_ok() -> Response {
    StatusCode::OK.into_response()
}

/// Runs a read with the consistency and blocking semantics the client asked for, and answers it with
/// Consul's query-meta headers. `key` says which part of the catalog the read depends on: a blocking query
/// returns when that part moves past the client's index, or when its wait time runs out.
/// `read` sees the caller's [`authz::Filter`] and leaves out what the caller may not read; the answer
/// says so in `X-Consul-Results-Filtered-By-ACLs`.
pub async fn catalog_read<E: Env, T: Serialize>(
    node: &Node<E>,
    params: &QueryParams,
    caller: &authz::Caller,
    key: WatchKey,
    read: impl Fn(&State, &authz::Filter<'_>) -> T,
) -> Result<Response, HttpError> {
    await_read(node, params, &key).await?;
    let filter = caller.filter();
    let (index, value) = {
        let catalog = node.state.read();
        (catalog.index_of(&key), read(&catalog, &filter))
    };
    let mut response = json_response(&value, params);
    set_query_meta(&mut response, node, params, index);
    filter.mark(&mut response);
    Ok(response)
}

/// How long a blocking query waits on this agent: its `?wait=` within the agent's `default_query_time`
/// and `max_query_time`.
pub fn query_wait<E: Env>(node: &Node<E>, params: &QueryParams) -> std::time::Duration {
    params.wait_within(node.config.query_wait_default, node.config.query_wait_max)
}

/// The waiting half of a read: the datacenter check, the read barrier the consistency mode needs, and
/// for a blocking query (`?index=`) the wait until `key`'s index passes the client's or `wait` runs out.
pub async fn await_read<E: Env>(node: &Node<E>, params: &QueryParams, key: &WatchKey) -> Result<(), HttpError> {
    params.check_datacenter(&node.config.datacenter)?;
    if params.consistency != Consistency::Stale {
        node.read_barrier().await?;
    }
    if let Some(client_index) = params.index.filter(|i| *i > 0) {
        let asked = query_wait(node, params);
        let wait = asked + node.jitter(asked / 16);
        let deadline = tokio::time::Instant::now() + wait;
        let mut applied = node.state.subscribe();
        while node.state.read().index_of(key) <= client_index {
            match tokio::time::timeout_at(deadline, applied.changed()).await {
                Ok(Ok(())) => continue,
                _ => break,
            }
        }
    }
    Ok(())
}

/// Consul's query-meta headers on a read's answer.
pub fn set_query_meta<E: Env>(response: &mut Response, node: &Node<E>, params: &QueryParams, index: u64) {
    let headers = response.headers_mut();
    // Consul never sends index 0: a client passing ?index=0 would not block.
    headers.insert("x-consul-index", HeaderValue::from(index.max(1)));
    headers.insert(
        "x-consul-knownleader",
        HeaderValue::from_static(if node.leader().is_some() { "true" } else { "false" }),
    );
    headers.insert("x-consul-lastcontact", HeaderValue::from(node.last_contact_ms()));
    headers.insert("x-consul-effective-consistency", HeaderValue::from_static(params.consistency.header_value()));
}

/// Consul's `X-Consul-ContentHash` for hash-based blocking on agent endpoints: a hash of the body.
pub fn content_hash(value: &serde_json::Value) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in value.to_string().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The endpoints a client agent answers by forwarding to a server (it keeps no catalog of its own).
/// `/v1/agent/members` is not one of them: every agent runs LAN gossip and answers from its own view, as
/// Consul's agents do (forwarded, a client agent cut off from the servers could not answer at all).
const FORWARDED_PREFIXES: &[&str] = &[
    "/v1/catalog/",
    "/v1/health/",
    "/v1/status/",
    "/v1/operator/",
    "/v1/kv/",
    "/v1/session/",
    "/v1/txn",
    "/v1/acl/",
    "/v1/connect/ca/",
    "/v1/agent/connect/ca/",
];

async fn forward_if_client<E: Env>(
    axum::extract::State(node): axum::extract::State<Arc<Node<E>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    if node.config.server || !FORWARDED_PREFIXES.iter().any(|prefix| path.starts_with(prefix)) {
        return next.run(request).await;
    }
    let method = request.method().to_string();
    let path_and_query = request.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let token = node.request_secret(authz::token_of(request.headers(), request.uri().query()).as_deref());
    let body = match axum::body::to_bytes(request.into_body(), REQUEST_BODY_BYTES_MAX).await {
        Ok(body) => body,
        Err(_) => return HttpError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large").into_response(),
    };
    let body = if path_and_query.starts_with("/v1/session/create") {
        session_on_this_node(&body, &node.config.node_name)
    } else {
        body
    };
    forward::forward_to_server(&node, &method, &path_and_query, body, token).await
}

/// A session created through a client agent belongs to the agent's node unless the body names one (the
/// server that applies it would otherwise pick its own name). Bodies that are not JSON objects pass
/// through unchanged for the server to refuse.
fn session_on_this_node(body: &axum::body::Bytes, node_name: &str) -> axum::body::Bytes {
    let text = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body.as_ref() };
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_slice::<serde_json::Value>(text) else {
        return body.clone();
    };
    if !fields.keys().any(|k| conclave_core::api::normalize_key(k) == "node") {
        fields.insert("Node".to_string(), serde_json::Value::String(node_name.to_string()));
    }
    serde_json::to_vec(&fields).expect("JSON values always serialize").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logged_url_hides_the_token() {
        let uri: axum::http::Uri = "/v1/kv/a?token=secret&recurse&Token=s2".parse().unwrap();
        assert_eq!(redacted_url(&uri), "/v1/kv/a?token=<hidden>&recurse&Token=<hidden>");
        let uri: axum::http::Uri = "/v1/agent/self".parse().unwrap();
        assert_eq!(redacted_url(&uri), "/v1/agent/self");
    }
}
