//! `/v1/catalog/...`: register and deregister through Raft; list nodes and services with blocking queries.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use conclave_core::acl::Resource;
use conclave_core::api::{self, encode};
use conclave_core::catalog::ServiceInstance;
use conclave_core::state::{Command, Response as Applied, WatchKey};

use super::authz::Caller;
use super::{catalog_read, json_response, HttpError, QueryParams};
use crate::env::Env;
use crate::node::Node;
use conclave_core::catalog::CatalogCommand;

/// Applies a catalog command and maps a refusal by the state machine to Consul's 500 with its message.
/// The write is proposed under the caller's authority; an ACL refusal is a 403.
pub(super) async fn apply<E: Env>(node: &Node<E>, caller: &Caller, command: Command) -> Result<u64, HttpError> {
    match node.write_as(command, caller.authority()).await? {
        (index, Applied::Applied) => Ok(index),
        (_, Applied::Denied(why)) => Err(super::authz::denied(why)),
        (_, Applied::Rejected(why)) => Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, why)),
        (_, other) => Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("unexpected answer {other:?}"))),
    }
}

pub async fn register<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    params.check_datacenter(&node.config.datacenter)?;
    let mut request = api::decode_catalog_register(&body)?;
    let caller = caller.with_body_token(&node, &body).await?;
    if request.node.datacenter.is_empty() {
        request.node.datacenter = node.config.datacenter.clone();
    }
    apply(&node, &caller, Command::Catalog(CatalogCommand::Register(request))).await?;
    Ok(json_response(&true, &params))
}

pub async fn deregister<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    params.check_datacenter(&node.config.datacenter)?;
    let request = api::decode_catalog_deregister(&body)?;
    let caller = caller.with_body_token(&node, &body).await?;
    apply(&node, &caller, Command::Catalog(CatalogCommand::Deregister(request))).await?;
    Ok(json_response(&true, &params))
}

pub async fn datacenters<E: Env>(
    State(node): State<Arc<Node<E>>>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    Ok(json_response(&[node.config.datacenter.as_str()], &params))
}

/// True when the instance carries every tag asked for (Consul ANDs repeated `tag` parameters).
pub(super) fn has_tags(instance: &ServiceInstance, tags: &[String]) -> bool {
    tags.iter().all(|tag| instance.tags.contains(tag))
}

/// True when the node's meta holds every `node-meta=key:value` asked for.
pub(super) fn has_node_meta(meta: &BTreeMap<String, String>, wanted: &[(String, String)]) -> bool {
    wanted.iter().all(|(k, v)| meta.get(k) == Some(v))
}

pub async fn services<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    catalog_read(&node, &params, &caller, WatchKey::Services, |catalog, filter| {
        if params.node_meta.is_empty() {
            let mut services = catalog.services();
            services.retain(|name, _| filter.keep(Resource::Service, name));
            return services;
        }
        let mut services: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for node in catalog.nodes().into_iter().filter(|n| has_node_meta(&n.meta, &params.node_meta)) {
            if !filter.keep(Resource::Node, &node.node) {
                continue;
            }
            for instance in catalog.node_services(&node.node) {
                if !filter.keep(Resource::Service, &instance.service) {
                    continue;
                }
                let tags = services.entry(instance.service.clone()).or_default();
                tags.extend(instance.tags.iter().cloned());
                tags.sort();
                tags.dedup();
            }
        }
        services
    })
    .await
}

pub async fn service<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    node.telemetry.counter("catalog.service.query", 1, &[("service", &name)]);
    catalog_read(&node, &params, &caller, WatchKey::Service(name.clone()), |catalog, filter| {
        catalog
            .service_instances(&name)
            .into_iter()
            .filter(|(node, instance)| filter.keep_instance(&node.node, &instance.service))
            .filter(|(node, instance)| has_tags(instance, &params.tags) && has_node_meta(&node.meta, &params.node_meta))
            .map(|(node, instance)| encode::catalog_service_json(node, instance))
            .filter(|row| params.keep(row))
            .collect::<Vec<_>>()
    })
    .await
}

pub async fn nodes<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    catalog_read(&node, &params, &caller, WatchKey::Nodes, |catalog, filter| {
        catalog
            .nodes()
            .into_iter()
            .filter(|n| filter.keep(Resource::Node, &n.node))
            .filter(|n| has_node_meta(&n.meta, &params.node_meta))
            .map(encode::node_json)
            .filter(|row| params.keep(row))
            .collect::<Vec<_>>()
    })
    .await
}

pub async fn node<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    let datacenter = node.config.datacenter.clone();
    catalog_read(&node, &params, &caller, WatchKey::Node(name.clone()), |catalog, filter| {
        // Consul answers `null` for a node it does not know (or may not read).
        catalog.node(&name).filter(|n| filter.keep(Resource::Node, &n.node)).map(|found| {
            let services: serde_json::Map<String, serde_json::Value> = catalog
                .node_services(&name)
                .into_iter()
                .filter(|s| filter.keep(Resource::Service, &s.service))
                .map(|s| (s.id.clone(), encode::agent_service_json(s, &datacenter)))
                .collect();
            serde_json::json!({ "Node": encode::node_json(found), "Services": services })
        })
    })
    .await
}

/// `/v1/catalog/node-services/:node`: like `/v1/catalog/node/:node`, with `Services` as a list.
pub async fn node_services<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    let datacenter = node.config.datacenter.clone();
    catalog_read(&node, &params, &caller, WatchKey::Node(name.clone()), |catalog, filter| {
        catalog.node(&name).filter(|n| filter.keep(Resource::Node, &n.node)).map(|found| {
            let services: Vec<_> = catalog
                .node_services(&name)
                .into_iter()
                .filter(|s| filter.keep(Resource::Service, &s.service))
                .map(|s| encode::agent_service_json(s, &datacenter))
                .collect();
            serde_json::json!({ "Node": encode::node_json(found), "Services": services })
        })
    })
    .await
}
