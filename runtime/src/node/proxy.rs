//! Client agents answer catalog, health, status and operator requests by forwarding them to a server over
//! RPC; the server runs them through its own HTTP router, so the answer (status, headers, body) is exactly
//! what the server would have given. A dead server is skipped and the next one tried.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, Request as HttpRequest, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::Node;
use crate::env::Env;
use crate::rpc::{Reply, Request};

/// Longest a forwarded request may take: the longest blocking query plus slack.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(11 * 60);

/// On a server: runs a forwarded request through the local router.
pub async fn serve_forwarded<E: Env>(node: &Arc<Node<E>>, method: &str, path_and_query: &str, body: Vec<u8>) -> Reply {
    let Some(router) = node.router.get().cloned() else {
        return Reply::Refused("HTTP API not started yet".to_string());
    };
    if !node.config.server {
        return Reply::Refused("client agents do not serve forwarded requests".to_string());
    }
    let request = match HttpRequest::builder().method(method).uri(path_and_query).body(Body::from(body)) {
        Ok(request) => request,
        Err(e) => return Reply::Refused(format!("bad forwarded request: {e}")),
    };
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = match response.into_body().collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(e) => return Reply::Refused(format!("cannot read response: {e}")),
    };
    Reply::Http { status, headers, body }
}

/// On a client agent: forwards the request to a server, trying each known server once (a write only
/// while no server has received it).
pub async fn forward<E: Env>(node: &Node<E>, method: &str, path_and_query: &str, body: Bytes) -> Response {
    let servers = node.known_servers.lock().expect("known servers lock").len().max(1);
    let mut last_error = "No known Consul servers".to_string();
    for _ in 0..servers {
        let Some(addr) = node.pick_server().and_then(|a| a.parse().ok()) else { break };
        let request = Request::Http {
            method: method.to_string(),
            path_and_query: path_and_query.to_string(),
            body: body.to_vec(),
        };
        match node.pool.call(addr, &request, FORWARD_TIMEOUT).await {
            Ok(Reply::Http { status, headers, body }) => {
                let mut response = Response::new(Body::from(body));
                *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                for (name, value) in headers {
                    if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                        response.headers_mut().append(name, value);
                    }
                }
                return response;
            }
            Ok(other) => last_error = format!("unexpected reply from {addr}: {other:?}"),
            // A write that may have reached the server is not sent again: a CAS or a lock must not apply
            // twice. Reads, and requests the server never received, go to the next server.
            Err(e) if method != "GET" && e.kind() != std::io::ErrorKind::ConnectionRefused => {
                return (StatusCode::INTERNAL_SERVER_ERROR, format!("rpc error: {e}")).into_response();
            }
            Err(e) => last_error = format!("rpc error: {e}"),
        }
    }
    (StatusCode::INTERNAL_SERVER_ERROR, last_error).into_response()
}
