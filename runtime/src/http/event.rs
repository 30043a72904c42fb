//! `/v1/event/*`: fire a user event over LAN gossip, and list the events this agent recorded, with the
//! blocking Consul simulates for them (`agent/event_endpoint.go`): the index is derived from the last
//! event's UUID, which is not monotonic, so a blocking list returns as soon as the index differs from
//! the client's.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;
use conclave_core::acl::{Need, Resource};
use conclave_core::agent::events::list_index;
use conclave_core::gossip::UserEvent;
use serde_json::{json, Value};

use super::authz::Caller;
use super::{json_response, HttpError, QueryParams};
use crate::env::Env;
use crate::node::events::{self, FireError};
use crate::node::Node;

/// Consul's `UserEventParam` version.
const USER_EVENT_VERSION: u64 = 1;

/// An event as Consul's API shows it (`api.UserEvent`): the payload base64-encoded, or null.
pub fn event_json(event: &UserEvent) -> Value {
    let payload = event.payload.as_ref().map(|p| base64::engine::general_purpose::STANDARD.encode(p));
    json!({
        "ID": event.id,
        "Name": event.name,
        "Payload": payload,
        "NodeFilter": event.node_filter,
        "ServiceFilter": event.service_filter,
        "TagFilter": event.tag_filter,
        "Version": USER_EVENT_VERSION,
        "LTime": event.ltime,
    })
}

/// `PUT /v1/event/fire/` without a name.
pub async fn fire_unnamed() -> HttpError {
    HttpError::bad_request("Missing name")
}

pub async fn fire<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    params.check_datacenter(&node.config.datacenter)?;
    if name.is_empty() {
        return Err(fire_unnamed().await);
    }
    caller.require(Resource::Event, &name, Need::Write)?;
    let filter = |key: &str| params.value(key).unwrap_or("").to_string();
    let event = UserEvent {
        name,
        payload: (!body.is_empty()).then(|| body.to_vec()),
        node_filter: filter("node"),
        service_filter: filter("service"),
        tag_filter: filter("tag"),
        ..UserEvent::default()
    };
    match events::fire(&node, event).await {
        Ok(fired) => Ok(json_response(&event_json(&fired), &params)),
        Err(FireError::Invalid(why)) => Err(HttpError::bad_request(why)),
        Err(FireError::Gossip(why)) => Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, why)),
    }
}

pub async fn list<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    let name = params.value("name").unwrap_or("").to_string();
    let filter = caller.filter();
    let mut recorded = node.events.subscribe();
    let wait = super::query_wait(&node, &params);
    let deadline = tokio::time::Instant::now() + wait + node.jitter(wait / 16);
    let (index, shown) = loop {
        recorded.borrow_and_update();
        let shown: Vec<UserEvent> =
            node.events.list(&name).into_iter().filter(|e| filter.keep(Resource::Event, &e.name)).collect();
        let index = list_index(&shown);
        // The index is not monotonic: only an exact match with the client's blocks.
        let client_index = params.index.filter(|i| *i > 0);
        if client_index != Some(index) {
            break (index, shown);
        }
        match tokio::time::timeout_at(deadline, recorded.changed()).await {
            Ok(Ok(())) => continue,
            _ => break (index, shown),
        }
    };
    let body: Vec<Value> = shown.iter().map(event_json).collect();
    let mut response = json_response(&body, &params);
    response.headers_mut().insert("x-consul-index", HeaderValue::from(index));
    filter.mark(&mut response);
    Ok(response)
}
