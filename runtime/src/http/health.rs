//! `/v1/health/...`: service instances with their node's and their own checks.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use conclave_core::api::encode;
use conclave_core::catalog::{CheckStatus, WatchKey};

use super::catalog::{has_node_meta, has_tags};
use super::{catalog_read, HttpError, QueryParams};
use crate::env::Env;
use crate::node::Node;

pub async fn service<E: Env>(
    State(node): State<Arc<Node<E>>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    catalog_read(&node, &params, WatchKey::Service(name.clone()), |catalog| {
        catalog
            .service_health(&name)
            .into_iter()
            .filter(|entry| {
                has_tags(entry.service, &params.tags)
                    && has_node_meta(&entry.node.meta, &params.node_meta)
            })
            // `?passing` drops an instance if any of its checks, node-level included, is not passing.
            .filter(|entry| {
                !params.passing
                    || entry
                        .checks
                        .iter()
                        .all(|c| c.status == CheckStatus::Passing)
            })
            .map(|entry| encode::health_service_json(entry.node, entry.service, &entry.checks))
            .collect::<Vec<_>>()
    })
    .await
}
