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
use conclave_core::dns::{self, DnsConfig, Outcome, Transport};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};

use crate::env::Env;
use crate::node::Node;

/// The body of `POST /v1/internal/dns`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ForwardedQuery {
    pub config: DnsConfig,
    pub query: Vec<u8>,
}

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
    let response = crate::node::proxy::forward(node, "POST", "/v1/internal/dns", Bytes::from(body)).await;
    let status = response.status();
    let answer = match response.into_body().collect().await {
        Ok(collected) if status == StatusCode::OK => collected.to_bytes(),
        Ok(collected) => {
            let text = String::from_utf8_lossy(&collected.to_bytes()).into_owned();
            tracing::debug!(%status, %text, "DNS query forwarded to a server failed");
            return dns::servfail(query);
        }
        Err(e) => {
            tracing::debug!(error = %e, "DNS answer from a server unreadable");
            return dns::servfail(query);
        }
    };
    if answer.len() > ANSWER_BYTES_MAX {
        return dns::servfail(query);
    }
    dns::refit(query, &answer, transport, config)
}

/// On a server: `POST /v1/internal/dns`, the full (TCP-sized) answer to a client agent's query.
pub async fn serve_forwarded<E: Env>(State(node): State<Arc<Node<E>>>, body: Bytes) -> Response {
    let Ok(forwarded) = serde_json::from_slice::<ForwardedQuery>(&body) else {
        return (StatusCode::BAD_REQUEST, "invalid forwarded DNS query").into_response();
    };
    let outcome = {
        let catalog = node.catalog.read();
        let mut rng = node.rng.lock().expect("rng lock");
        dns::handle_query(&catalog, &forwarded.config, &forwarded.query, Transport::Tcp, &mut *rng)
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
