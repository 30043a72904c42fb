//! `/v1/kv/:key`: Consul's KV endpoint. The key is the request path after `/v1/kv/`, percent-decoded
//! (so `a%2Fb` is the key `a/b`). GET reads one key, a prefix (`recurse`) or key names (`keys`,
//! `separator`), as JSON or `raw`; PUT writes the body as the value (`flags`, `cas`, `acquire`,
//! `release`); DELETE removes a key or a prefix (`recurse`, `cas`). Blocking GETs wake only for changes
//! to the key or prefix they read.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use conclave_core::acl::{Need, Resource};
use conclave_core::api::encode_kv::kv_entry_json;
use conclave_core::kv::{KvCommand, KV_VALUE_BYTES_MAX};
use conclave_core::state::{Command, Response as Applied, State as ReplicatedState, WatchKey};

use super::authz::Caller;
use super::{await_read, json_response, set_query_meta, HttpError, QueryParams};
use crate::env::Env;
use crate::node::Node;

/// Longest key accepted.
pub const KV_KEY_BYTES_MAX: usize = 2048;

/// The KV key a request names: its path after `/v1/kv/`, percent-decoded.
fn key_of(uri: &Uri) -> Result<String, HttpError> {
    let raw = uri.path().strip_prefix("/v1/kv/").or_else(|| uri.path().strip_prefix("/v1/kv")).unwrap_or("");
    let key = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| HttpError::bad_request("Invalid key: not valid UTF-8 after percent-decoding"))?
        .into_owned();
    if key.len() > KV_KEY_BYTES_MAX {
        return Err(HttpError::bad_request(format!(
            "Key too long: {} bytes, max size: {KV_KEY_BYTES_MAX} bytes",
            key.len()
        )));
    }
    Ok(key)
}

pub async fn handle<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    let key = key_of(&uri)?;
    match method {
        Method::GET => get(&node, &caller, &params, key).await,
        Method::PUT => put(&node, &caller, &params, query.as_deref().unwrap_or(""), key, body).await,
        Method::DELETE => delete(&node, &caller, &params, query.as_deref().unwrap_or(""), key).await,
        _ => {
            let mut refused =
                HttpError::new(StatusCode::METHOD_NOT_ALLOWED, format!("method {method} not allowed")).into_response();
            refused.headers_mut().insert("allow", HeaderValue::from_static("GET,PUT,DELETE"));
            Ok(refused)
        }
    }
}

async fn get<E: Env>(
    node: &Node<E>,
    caller: &Caller,
    params: &QueryParams,
    key: String,
) -> Result<Response, HttpError> {
    let recurse = params.flag("recurse");
    let keys = params.flag("keys");
    if key.is_empty() && !recurse && !keys {
        return Err(HttpError::bad_request("Missing key name"));
    }
    // A prefix read watches everything under it; a single key only itself.
    let watch = if recurse || keys { WatchKey::KvPrefix(key.clone()) } else { WatchKey::KvKey(key.clone()) };
    await_read(node, params, &watch).await?;
    // A single key needs read on it; a listing shows only what the caller may read.
    if !recurse && !keys {
        caller.require(Resource::Key, &key, Need::Read)?;
    }
    let filter = caller.filter();
    let catalog = node.state.read();
    // The index a client blocks on next: what it read, or the whole store's when that never existed.
    let index = match catalog.index_of(&watch) {
        0 => catalog.index_of(&WatchKey::Kv),
        own => own,
    };
    let (found, mut response) = if keys {
        let separator = params.value("separator").or_else(|| params.value("seperator")).unwrap_or("");
        let mut names = catalog.kv().keys(&key, separator);
        names.retain(|name| filter.keep(Resource::Key, name));
        (!names.is_empty() || key.is_empty(), json_response(&names, params))
    } else if recurse {
        let entries: Vec<_> = catalog
            .kv()
            .list(&key)
            .into_iter()
            .filter(|entry| filter.keep(Resource::Key, &entry.key))
            .map(kv_entry_json)
            .collect();
        (!entries.is_empty(), json_response(&entries, params))
    } else {
        single_key(&catalog, &key, params)
    };
    drop(catalog);
    if !found {
        response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_FOUND;
    }
    set_query_meta(&mut response, node, params, index);
    filter.mark(&mut response);
    Ok(response)
}

fn single_key(catalog: &ReplicatedState, key: &str, params: &QueryParams) -> (bool, Response) {
    let Some(entry) = catalog.kv().get(key) else {
        return (false, Response::new(Body::empty()));
    };
    if !params.flag("raw") {
        return (true, json_response(&[kv_entry_json(entry)], params));
    }
    let mut response = Response::new(Body::from(entry.value.clone()));
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("text/plain"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("content-security-policy", HeaderValue::from_static("sandbox"));
    (true, response)
}

/// Consul refuses more than one of the given flags together, naming the query.
fn refuse_conflicts(params: &QueryParams, query: &str, flags: &[&str]) -> Result<(), HttpError> {
    if flags.iter().filter(|f| params.has(f)).count() > 1 {
        return Err(HttpError::bad_request(format!("Conflicting flags: {query}")));
    }
    Ok(())
}

fn number(params: &QueryParams, name: &str) -> Result<Option<u64>, HttpError> {
    match params.value(name) {
        None => Ok(None),
        Some(text) => text
            .parse::<u64>()
            .map(Some)
            .map_err(|e| HttpError::bad_request(format!("Invalid {name} value {text:?}: {e}"))),
    }
}

async fn put<E: Env>(
    node: &Node<E>,
    caller: &Caller,
    params: &QueryParams,
    query: &str,
    key: String,
    body: Bytes,
) -> Result<Response, HttpError> {
    params.check_datacenter(&node.config.datacenter)?;
    if key.is_empty() {
        return Err(HttpError::bad_request("Missing key name"));
    }
    refuse_conflicts(params, query, &["cas", "acquire", "release"])?;
    if body.len() > KV_VALUE_BYTES_MAX {
        return Err(HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Request body({} bytes) too large, max size: {KV_VALUE_BYTES_MAX} bytes. See \
                 https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.",
                body.len()
            ),
        ));
    }
    let flags = number(params, "flags")?.unwrap_or(0);
    let value = body.to_vec();
    let command = if let Some(index) = number(params, "cas")? {
        KvCommand::Cas { key, value, flags, index }
    } else if let Some(session) = params.value("acquire") {
        KvCommand::Lock { key, value, flags, session: session.to_string() }
    } else if let Some(session) = params.value("release") {
        KvCommand::Unlock { key, value, flags, session: session.to_string() }
    } else {
        KvCommand::Set { key, value, flags }
    };
    write(node, caller, params, command).await
}

async fn delete<E: Env>(
    node: &Node<E>,
    caller: &Caller,
    params: &QueryParams,
    query: &str,
    key: String,
) -> Result<Response, HttpError> {
    params.check_datacenter(&node.config.datacenter)?;
    refuse_conflicts(params, query, &["recurse", "cas"])?;
    let command = if params.flag("recurse") {
        KvCommand::DeleteTree { prefix: key }
    } else if key.is_empty() {
        return Err(HttpError::bad_request("Missing key name"));
    } else if let Some(index) = number(params, "cas")? {
        KvCommand::DeleteCas { key, index }
    } else {
        KvCommand::Delete { key }
    };
    write(node, caller, params, command).await
}

/// Applies a KV write and answers `true`/`false` as Consul does.
async fn write<E: Env>(
    node: &Node<E>,
    caller: &Caller,
    params: &QueryParams,
    command: KvCommand,
) -> Result<Response, HttpError> {
    match node.write_as(Command::Kv(command), caller.authority()).await? {
        (_, Applied::Kv(done)) => Ok(json_response(&done, params)),
        (_, Applied::Denied(why)) => Err(super::authz::denied(why)),
        (_, Applied::Rejected(why)) => Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, why)),
        (_, other) => Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("unexpected answer {other:?}"))),
    }
}
