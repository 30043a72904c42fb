//! `/v1/health/...`: service instances with their node's and their own checks.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use conclave_core::api::encode;
use conclave_core::catalog::CheckStatus;
use conclave_core::state::WatchKey;

use super::authz::Caller;
use super::catalog::{has_node_meta, has_tags};
use super::{catalog_read, HttpError, QueryParams};
use crate::env::Env;
use crate::node::Node;

pub async fn service<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    node.telemetry.counter("health.service.query", 1, &[("service", &name)]);
    catalog_read(&node, &params, &caller, WatchKey::Service(name.clone()), |catalog, filter| {
        catalog
            .service_health(&name)
            .into_iter()
            .filter(|entry| filter.keep_instance(&entry.node.node, &entry.service.service))
            .filter(|entry| has_tags(entry.service, &params.tags) && has_node_meta(&entry.node.meta, &params.node_meta))
            // `?passing` drops an instance if any of its checks, node-level included, is not passing.
            .filter(|entry| !params.passing || entry.checks.iter().all(|c| c.status == CheckStatus::Passing))
            .map(|entry| encode::health_service_json(entry.node, entry.service, &entry.checks))
            .filter(|entry| params.keep(entry))
            .collect::<Vec<_>>()
    })
    .await
}

/// `/v1/health/node/:node`: the node's checks, node-level and service-level.
pub async fn node<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    catalog_read(&node, &params, &caller, WatchKey::Node(name.clone()), |catalog, filter| {
        catalog
            .node_checks(&name)
            .into_iter()
            .filter(|c| filter.keep_check(&c.node, &c.service_name))
            .map(encode::health_check_json)
            .filter(|c| params.keep(c))
            .collect::<Vec<_>>()
    })
    .await
}

/// `/v1/health/checks/:service`: the checks bound to instances of a service.
pub async fn checks<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    catalog_read(&node, &params, &caller, WatchKey::Service(name.clone()), |catalog, filter| {
        catalog
            .service_checks(&name)
            .into_iter()
            .filter(|c| filter.keep_check(&c.node, &c.service_name))
            .map(encode::health_check_json)
            .filter(|c| params.keep(c))
            .collect::<Vec<_>>()
    })
    .await
}

/// `/v1/health/state/:state` with `any`, `passing`, `warning` or `critical`.
pub async fn state<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(state): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    let wanted = match state.as_str() {
        "any" => None,
        other => Some(
            CheckStatus::parse(other).ok_or_else(|| HttpError::bad_request(format!("Invalid check state: {other}")))?,
        ),
    };
    catalog_read(&node, &params, &caller, WatchKey::Checks, |catalog, filter| {
        catalog
            .checks_in_state(wanted)
            .into_iter()
            .filter(|c| filter.keep_check(&c.node, &c.service_name))
            .map(encode::health_check_json)
            .filter(|c| params.keep(c))
            .collect::<Vec<_>>()
    })
    .await
}
