//! `/v1/agent/metrics`: the agent's metrics as Consul serves them — the in-memory sink's JSON by default,
//! the Prometheus text format with `?format=prometheus` once `telemetry.prometheus_retention_time` is set
//! (415 with Consul's message before) — and the middleware that times every request as `api.http`
//! labelled with the method and the route's pattern (plus the pre-1.9 `http.<METHOD>.<path>` names when
//! `disable_compat_1.9 = false`).

use std::sync::Arc;

use axum::extract::{MatchedPath, RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use conclave_core::acl::{Need, Resource};

use super::authz::Caller;
use super::{json_response, HttpError, QueryParams};
use crate::env::Env;
use crate::node::Node;
use crate::telemetry::PROMETHEUS_OFF;

pub async fn metrics<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    caller.require(Resource::Agent, &node.config.node_name, Need::Read)?;
    let prometheus = params.all.iter().any(|(k, v)| k == "format" && v == "prometheus");
    if !prometheus {
        return Ok(json_response(&node.telemetry.json(), &params));
    }
    let Some(text) = node.telemetry.prometheus_text() else {
        return Ok((StatusCode::UNSUPPORTED_MEDIA_TYPE, PROMETHEUS_OFF).into_response());
    };
    let mut response = Response::new(text.into());
    response.headers_mut().insert("content-type", HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    Ok(response)
}

/// Consul's `path` label: the route's pattern without its parameters, `/` as `_` (`v1_kv_`).
fn path_label(pattern: &str) -> String {
    let kept: Vec<&str> =
        pattern.trim_start_matches('/').split('/').map(|part| if part.starts_with('{') { "" } else { part }).collect();
    kept.join("_")
}

/// Times each request; the route's pattern names it (`_unknown` for paths no route matches).
pub async fn time_request<E: Env>(
    State(node): State<Arc<Node<E>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let start = tokio::time::Instant::now();
    let method = request.method().to_string();
    let pattern = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let response = next.run(request).await;
    let path = pattern.as_deref().map(path_label).unwrap_or_else(|| "_unknown".to_string());
    node.telemetry.since("api.http", start, &[("method", &method), ("path", &path)]);
    if !node.telemetry.settings().disable_compat_1_9 {
        node.telemetry.since(&format!("http.{method}.{}", path.replace('_', ".")), start, &[]);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::path_label;

    #[test]
    fn the_path_label_is_the_pattern_without_its_parameters() {
        assert_eq!(path_label("/v1/kv/{*key}"), "v1_kv_");
        assert_eq!(path_label("/v1/kv"), "v1_kv");
        assert_eq!(path_label("/v1/catalog/service/{name}"), "v1_catalog_service_");
        assert_eq!(path_label("/v1/agent/metrics"), "v1_agent_metrics");
    }
}
