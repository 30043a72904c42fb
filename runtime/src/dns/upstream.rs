//! A client agent's DNS: it keeps no catalog, so a query about the domain is sent to a server through the
//! same RPC forwarding path as the HTTP API (`POST /v1/internal/dns`, with the client's DNS settings), the
//! server answers it from its catalog as if over TCP, and the client cuts the answer to its own transport.
//! Forwarding the parsed request rather than the raw query to a server's DNS port means a client needs to
//! know only the servers' RPC addresses, which it already has, and gets the same failover.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use conclave_core::dns::{self, DnsConfig, Outcome, Transport};
use serde::{Deserialize, Serialize};

use crate::env::Env;
use crate::node::forward::{self, ForwardedRequest};
use crate::node::Node;

/// The body of `POST /v1/internal/dns`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ForwardedQuery {
    pub config: DnsConfig,
    pub query: Vec<u8>,
}

/// Where client agents send DNS queries about the domain.
const FORWARD_PATH: &str = "/v1/internal/dns";

/// Largest answer body accepted from a server: one TCP DNS message.
const ANSWER_BYTES_MAX: usize = dns::TCP_BYTES_MAX;

/// On a client agent: a server's answer to `query`, cut to `transport`; SERVFAIL when no server answers.
pub async fn ask_server<E: Env>(
    node: &Node<E>,
    config: &DnsConfig,
    query: &[u8],
    transport: Transport,
) -> Option<Vec<u8>> {
    let body = serde_json::to_vec(&ForwardedQuery { config: config.clone(), query: query.to_vec() })
        .expect("a DNS config always serializes");
    let request = ForwardedRequest {
        method: "POST".to_string(),
        path_and_query: FORWARD_PATH.to_string(),
        body,
        token: node.request_secret(None),
    };
    let answer = match forward::forward(node, request).await {
        Ok(answer) if answer.status == StatusCode::OK.as_u16() => answer.body,
        Ok(answer) => {
            let text = String::from_utf8_lossy(&answer.body).into_owned();
            tracing::debug!(status = answer.status, %text, "DNS query forwarded to a server failed");
            return dns::servfail(query);
        }
        Err(why) => {
            tracing::debug!(error = %why, "DNS query forwarded to a server got no answer");
            return dns::servfail(query);
        }
    };
    if answer.len() > ANSWER_BYTES_MAX {
        return dns::servfail(query);
    }
    dns::refit(query, &answer, transport, config)
}

/// The HTTP route a server answers client agents' DNS queries on, served by the HTTP API beside its own.
pub fn routes<E: Env>() -> Router<Arc<Node<E>>> {
    Router::new().route(FORWARD_PATH, axum::routing::post(serve_forwarded::<E>))
}

/// On a server: `POST /v1/internal/dns`, the full (TCP-sized) answer to a client agent's query.
/// The client agent forwards its default token; the answer shows only what that token may read.
async fn serve_forwarded<E: Env>(
    State(node): State<Arc<Node<E>>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(forwarded) = serde_json::from_slice::<ForwardedQuery>(&body) else {
        return (StatusCode::BAD_REQUEST, "invalid forwarded DNS query").into_response();
    };
    let token = headers.get("x-consul-token").and_then(|v| v.to_str().ok()).unwrap_or("");
    let identity = node.dns_identity(&node.request_secret(Some(token)));
    let outcome = {
        let catalog = node.state.read();
        let mut rng = node.rng.lock().expect("rng lock");
        let visible = |resource, segment: &str| node.dns_visible(identity.as_ref(), resource, segment);
        dns::handle_query_as(&catalog, &forwarded.config, &forwarded.query, Transport::Tcp, &mut *rng, &visible)
    };
    match outcome {
        Outcome::Reply(bytes) => {
            let mut response = Response::new(Body::from(bytes));
            response.headers_mut().insert("content-type", HeaderValue::from_static("application/dns-message"));
            response
        }
        Outcome::Recurse | Outcome::Drop(_) => {
            (StatusCode::BAD_REQUEST, "not a DNS query about the domain").into_response()
        }
    }
}
