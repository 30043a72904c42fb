//! `/v1/agent/...`: the local agent. Services and checks registered here belong to this agent: they are
//! persisted in its data dir before the answer, and pushed to the catalog under its node.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use conclave_core::acl::{Need, Resource};
use conclave_core::agent::LocalState;
use conclave_core::api::{self, encode};
use conclave_core::catalog::{CheckSpec, CheckStatus, DeregisterRequest, HealthCheck, ServiceInstance};
use conclave_core::state::Command;
use serde_json::{json, Value};

use super::authz::Caller;
use super::{empty_ok, json_response, HttpError, QueryParams};
use crate::env::Env;
use crate::node::gossip::Pool;
use crate::node::Node;
use conclave_core::catalog::CatalogCommand;

fn refused(message: String) -> HttpError {
    if message.starts_with("Unknown") || message.starts_with("ServiceID") {
        HttpError::new(StatusCode::NOT_FOUND, message)
    } else {
        HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

fn param<'a>(params: &'a QueryParams, name: &str) -> Option<&'a str> {
    params.all.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

pub async fn register_service<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    let replace = param(&params, "replace-existing-checks").is_some_and(|v| v.is_empty() || v == "true");
    let definition = api::decode_service_definition(&body)?;
    caller.require(Resource::Service, &definition.name, Need::Write)?;
    if definition.checks.iter().any(|c| c.check_type == "script") {
        scripts_allowed(&node)?;
    }
    let request = definition.to_register_request(&node.node_spec());
    let spec = request.service.clone().expect("a service definition registers a service");
    let checks = definition.to_local_checks();
    node.change_local(|local| local.register_service(spec, checks, "", replace)).map_err(refused)?;
    node.push_services(&[&definition.id]).await;
    Ok(empty_ok())
}

pub async fn deregister_service<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    require_service_write(&node, &caller, &id)?;
    node.change_local(|local| Ok(local.deregister_service(&id))).map_err(refused)?;
    node.push_to_catalog(vec![LocalState::deregister_command(&node.config.node_name, Some(&id), None)]).await;
    Ok(empty_ok())
}

/// Write on the local service `id`'s name (nothing to check for an unknown ID: the change refuses it).
fn require_service_write<E: Env>(node: &Node<E>, caller: &Caller, id: &str) -> Result<(), HttpError> {
    let name = node.local.lock().expect("local state lock").service(id).map(|s| s.spec.service.clone());
    match name {
        Some(name) => caller.require(Resource::Service, &name, Need::Write),
        None => Ok(()),
    }
}

/// Write on what the local check `id` belongs to: its service, or this node.
fn require_check_write<E: Env>(node: &Node<E>, caller: &Caller, service_id: &str) -> Result<(), HttpError> {
    if service_id.is_empty() {
        return caller.require(Resource::Node, &node.config.node_name, Need::Write);
    }
    require_service_write(node, caller, service_id)
}

/// An agent service as Consul's `AgentService`, with the catalog's indexes once it has been synced.
fn agent_service<E: Env>(node: &Node<E>, spec: &conclave_core::catalog::ServiceSpec) -> Value {
    let catalog = node.state.read();
    let synced = catalog.instance(&node.config.node_name, &spec.id);
    let (create_index, modify_index) = synced.map(|s| (s.create_index, s.modify_index)).unwrap_or((0, 0));
    let instance = ServiceInstance::from_spec(&node.config.node_name, spec, create_index, modify_index);
    encode::agent_service_json(&instance, &node.config.datacenter)
}

pub async fn services<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    let specs: Vec<_> = node.local.lock().expect("local state lock").services().map(|s| s.spec.clone()).collect();
    let filter = caller.filter();
    let out: serde_json::Map<String, Value> = specs
        .iter()
        .filter(|spec| filter.keep(Resource::Service, &spec.service))
        .map(|spec| (spec.id.clone(), agent_service(&node, spec)))
        .filter(|(_, v)| params.keep(v))
        .collect();
    let mut response = json_response(&out, &params);
    filter.mark(&mut response);
    Ok(response)
}

pub async fn service<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    let spec = node.local.lock().expect("local state lock").service(&id).map(|s| s.spec.clone());
    let spec = spec.ok_or_else(|| HttpError::new(StatusCode::NOT_FOUND, format!("unknown service ID: {id}")))?;
    caller.require(Resource::Service, &spec.service, Need::Read)?;
    let mut body = agent_service(&node, &spec);
    let hash = crate::http::content_hash(&body);
    body["ContentHash"] = json!(hash);
    let mut response = json_response(&body, &params);
    response.headers_mut().insert("x-consul-contenthash", hash.parse().expect("hex is a valid header"));
    Ok(response)
}

/// A local check as the agent shows it.
fn agent_check<E: Env>(node: &Node<E>, spec: &CheckSpec, local: &LocalState) -> Value {
    let service = local.service(&spec.service_id).map(|s| &s.spec);
    let service = service.map(|s| (s.service.as_str(), s.tags.as_slice()));
    let check = HealthCheck::from_spec(&node.config.node_name, spec, service, 0);
    encode::health_check_json(&check)
}

pub async fn checks<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    let local = node.local.lock().expect("local state lock").clone();
    let filter = caller.filter();
    let out: BTreeMap<String, Value> = local
        .checks()
        .filter(|c| {
            let service = local.service(&c.service_id).map(|s| s.spec.service.as_str()).unwrap_or("");
            filter.keep_check(&node.config.node_name, service)
        })
        .map(|c| (c.check_id.clone(), agent_check(&node, c, &local)))
        .filter(|(_, v)| params.keep(v))
        .collect();
    let mut response = json_response(&out, &params);
    filter.mark(&mut response);
    Ok(response)
}

pub async fn register_check<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, HttpError> {
    let (check, service_id) = api::decode_check_definition(&body)?;
    require_check_write(&node, &caller, &service_id)?;
    if check.check_type == "script" {
        scripts_allowed(&node)?;
    }
    let local_check = check.to_local_check(&service_id);
    node.change_local(|local| local.register_check(local_check)).map_err(refused)?;
    node.push_services(&[&service_id]).await;
    Ok(empty_ok())
}

pub async fn deregister_check<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    let service_id = node.local.lock().expect("local state lock").check(&id).map(|c| c.service_id.clone());
    require_check_write(&node, &caller, &service_id.unwrap_or_default())?;
    node.change_local(|local| Ok(local.deregister_check(&id))).map_err(refused)?;
    node.push_to_catalog(vec![LocalState::deregister_command(&node.config.node_name, None, Some(&id))]).await;
    Ok(empty_ok())
}

async fn set_check_status<E: Env>(
    node: &Node<E>,
    caller: &Caller,
    id: &str,
    status: CheckStatus,
    output: &str,
) -> Result<Response, HttpError> {
    let owner = node.local.lock().expect("local state lock").check(id).map(|c| c.service_id.clone());
    require_check_write(node, caller, &owner.unwrap_or_default())?;
    let service_id = node.change_local(|local| {
        local.update_check(id, status, output)?;
        Ok(local.check(id).map(|c| c.service_id.clone()).unwrap_or_default())
    });
    let service_id = service_id.map_err(refused)?;
    node.checks.touch(id);
    node.push_services(&[&service_id]).await;
    Ok(empty_ok())
}

/// Consul refuses script checks unless the agent was started with `enable_script_checks`.
fn scripts_allowed<E: Env>(node: &Node<E>) -> Result<(), HttpError> {
    match node.config.enable_script_checks {
        true => Ok(()),
        false => Err(HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or \
             'enable_local_script_checks' to true",
        )),
    }
}

pub async fn pass_check<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    set_check_status(&node, &caller, &id, CheckStatus::Passing, param(&params, "note").unwrap_or("")).await
}

pub async fn warn_check<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    set_check_status(&node, &caller, &id, CheckStatus::Warning, param(&params, "note").unwrap_or("")).await
}

pub async fn fail_check<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    set_check_status(&node, &caller, &id, CheckStatus::Critical, param(&params, "note").unwrap_or("")).await
}

/// `PUT /v1/agent/check/update/:id` with `{"Status": ..., "Output": ...}`.
pub async fn update_check<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, HttpError> {
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))?;
    let field = |name: &str| {
        value
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .and_then(|(_, v)| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let status = CheckStatus::parse(&field("Status"))
        .ok_or_else(|| HttpError::bad_request(format!("Invalid check status: \"{}\"", field("Status"))))?;
    set_check_status(&node, &caller, &id, status, &field("Output")).await
}

fn enable_param(params: &QueryParams) -> Result<bool, HttpError> {
    match param(params, "enable") {
        None | Some("") => Err(HttpError::bad_request("Missing value for enable")),
        Some(other) => super::params::parse_go_bool(other)
            .ok_or_else(|| HttpError::bad_request(format!("Invalid value for enable: \"{other}\""))),
    }
}

pub async fn service_maintenance<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    let enable = enable_param(&params)?;
    require_service_write(&node, &caller, &id)?;
    let reason = param(&params, "reason").unwrap_or("").to_string();
    node.change_local(|local| local.set_service_maintenance(&id, enable, &reason)).map_err(refused)?;
    if !enable {
        let check_id = format!("{}{id}", conclave_core::agent::SERVICE_MAINTENANCE_PREFIX);
        node.push_to_catalog(vec![LocalState::deregister_command(&node.config.node_name, None, Some(&check_id))]).await;
    }
    node.push_services(&[&id]).await;
    Ok(empty_ok())
}

pub async fn node_maintenance<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    let enable = enable_param(&params)?;
    caller.require(Resource::Node, &node.config.node_name, Need::Write)?;
    let reason = param(&params, "reason").unwrap_or("").to_string();
    node.change_local(|local| {
        local.set_node_maintenance(enable, &reason);
        Ok(())
    })
    .map_err(refused)?;
    if !enable {
        let check_id = conclave_core::agent::NODE_MAINTENANCE_CHECK_ID;
        node.push_to_catalog(vec![LocalState::deregister_command(&node.config.node_name, None, Some(check_id))]).await;
    }
    node.push_services(&[""]).await;
    Ok(empty_ok())
}

/// A gossip member as Consul's `/v1/agent/members` shows it.
fn gossip_member_json(member: &conclave_core::gossip::Member) -> Value {
    json!({
        "Name": member.name,
        "Addr": member.addr.ip().to_string(),
        "Port": member.addr.port(),
        "Tags": member.tags.to_consul(),
        "Status": member.status.serf_code(),
        "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
        "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
    })
}

/// `/v1/agent/members`: gossip's member list once this agent has met another member; before that (a lone
/// agent, or gossip not yet joined) the catalog's nodes, alive while their `serfHealth` check passes.
pub async fn members<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    let wan = param(&params, "wan").is_some_and(|v| v.is_empty() || v == "1" || v == "true");
    let filter = caller.filter();
    if wan {
        let mut out: Vec<Value> = node.gossip.members_of(Pool::Wan).iter().map(gossip_member_json).collect();
        out.retain(|member| params.keep(member) && filter.keep(Resource::Node, member["Name"].as_str().unwrap_or("")));
        return Ok(json_response(&out, &params));
    }
    let gossip_members = node.gossip.members();
    if gossip_members.len() > 1 {
        let mut out: Vec<Value> = gossip_members.iter().map(gossip_member_json).collect();
        out.retain(|member| params.keep(member) && filter.keep(Resource::Node, member["Name"].as_str().unwrap_or("")));
        return Ok(json_response(&out, &params));
    }
    let catalog = node.state.read();
    let mut out = Vec::new();
    for member in catalog.nodes() {
        let checks = catalog.node_checks(&member.node);
        let alive = checks.iter().any(|c| c.check_id == "serfHealth" && c.status == CheckStatus::Passing);
        let server = catalog.instance(&member.node, "consul");
        let mut tags = serde_json::Map::new();
        tags.insert("role".into(), json!(if server.is_some() { "consul" } else { "node" }));
        tags.insert("dc".into(), json!(member.datacenter));
        tags.insert("id".into(), json!(member.id));
        tags.insert("build".into(), json!(format!("{}:conclave", env!("CARGO_PKG_VERSION"))));
        tags.insert("vsn".into(), json!("2"));
        if let Some(server) = server {
            tags.insert("port".into(), json!(server.port.to_string()));
        }
        out.push(json!({
            "Name": member.node,
            "Addr": member.address,
            "Port": node.config.ports.serf_lan,
            "Tags": tags,
            "Status": if alive { 1 } else { 4 },
            "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
            "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
        }));
    }
    drop(catalog);
    out.retain(|member| params.keep(member) && filter.keep(Resource::Node, member["Name"].as_str().unwrap_or("")));
    Ok(json_response(&out, &params))
}

pub async fn join<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(address): Path<String>,
) -> Result<Response, HttpError> {
    caller.require(Resource::Agent, &node.config.node_name, Need::Write)?;
    let addr = crate::env::join_address::resolve_join(&address, node.config.ports.serf_lan)
        .map_err(|e| HttpError::bad_request(e.to_string()))?;
    let (reply, joined) = tokio::sync::oneshot::channel();
    if node.gossip.send(crate::node::gossip::GossipCommand::Join(addr, reply)).await {
        if let Ok(Err(e)) = joined.await {
            tracing::debug!(error = %e, "gossip join");
        }
    }
    crate::node::bootstrap::hello(&node, addr)
        .await
        .map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(empty_ok())
}

pub async fn leave<E: Env>(State(node): State<Arc<Node<E>>>, caller: Caller) -> Result<Response, HttpError> {
    caller.require(Resource::Agent, &node.config.node_name, Need::Write)?;
    crate::node::leave::leave_cluster(&node).await;
    node.shutdown.notify_one();
    Ok(empty_ok())
}

pub async fn force_leave<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, HttpError> {
    caller.require(Resource::Operator, "", Need::Write)?;
    if name == node.config.node_name {
        return Err(HttpError::bad_request("Cannot force-leave the agent itself"));
    }
    crate::node::gossip::remove_server_named(&node, &name).await;
    let request = DeregisterRequest { node: name, service_id: None, check_id: None };
    super::catalog::apply(&node, &Caller::unrestricted(), Command::Catalog(CatalogCommand::Deregister(request)))
        .await?;
    Ok(empty_ok())
}

pub async fn reload<E: Env>(State(node): State<Arc<Node<E>>>, caller: Caller) -> Result<Response, HttpError> {
    caller.require(Resource::Agent, &node.config.node_name, Need::Write)?;
    crate::node::reload_config(&node).await.map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(empty_ok())
}

/// The part of Consul's `/v1/agent/self` that clients read (Prometheus reads `Config.Datacenter`).
pub async fn agent_self<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    caller.require(Resource::Agent, &node.config.node_name, Need::Read)?;
    let config = &node.config;
    let body = json!({
        "Config": {
            "Datacenter": config.datacenter,
            "PrimaryDatacenter": config.datacenter,
            "NodeName": config.node_name,
            "NodeID": node.node_id,
            "Revision": "",
            "Server": config.server,
            "Version": env!("CARGO_PKG_VERSION"),
        },
        "DebugConfig": {
            "Datacenter": config.datacenter,
            "NodeName": config.node_name,
            "ServerMode": config.server,
            "BootstrapExpect": config.bootstrap_expect,
            "DNSDomain": config.domain,
        },
        "Member": {
            "Name": config.node_name,
            "Addr": config.advertise_addr.to_string(),
            "Port": config.ports.serf_lan,
            "Tags": {
                "role": if config.server { "consul" } else { "node" },
                "dc": config.datacenter,
                "port": config.ports.server.to_string(),
                "id": node.node_id,
                "build": format!("{}:conclave", env!("CARGO_PKG_VERSION")),
            },
            "Status": 1,
        },
        "Meta": config.node_meta,
        "Stats": {
            "raft": {
                "state": node.raft.as_ref().map(|r| format!("{:?}", r.metrics().borrow().state)).unwrap_or_else(|| "none (client agent)".to_string()),
                "applied_index": node.state.applied_index().to_string(),
            },
        },
    });
    Ok(json_response(&body, &params))
}

/// `/v1/agent/monitor?loglevel=&logjson`: the agent's log lines from now until the client goes away, one
/// per line of a chunked body, at the asked level (default info) whatever the agent's own level. A reader
/// that falls behind loses lines and is told so in the stream; it never holds the agent up (`env::logs`).
pub async fn monitor<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    caller.require(Resource::Agent, &node.config.node_name, Need::Read)?;
    let params = QueryParams::parse(query.as_deref())?;
    let asked = param(&params, "loglevel").filter(|l| !l.is_empty()).unwrap_or("INFO");
    let level = crate::env::logs::parse_level(asked)
        .ok_or_else(|| HttpError::bad_request(format!("Unknown log level: {asked}")))?;
    let json = params.all.iter().any(|(k, _)| k == "logjson");
    // Subscribed before the answer starts, so every line logged after the request is in the stream.
    let reader = crate::env::logs::stream().subscribe(level);
    let lines = futures::stream::unfold(reader, move |mut reader| async move {
        let mut line = reader.next_line(json).await;
        line.push('\n');
        Some((Ok::<_, std::convert::Infallible>(Bytes::from(line)), reader))
    });
    let mut response = Response::new(axum::body::Body::from_stream(lines));
    response.headers_mut().insert("content-type", axum::http::HeaderValue::from_static("text/plain; charset=utf-8"));
    Ok(response)
}

/// `/v1/agent/host`: the machine the agent runs on (OS, kernel, CPUs, memory, disk), as `consul debug`
/// records it in `host.json`; `operator:read`, as in Consul.
pub async fn host<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    caller.require(Resource::Operator, "", Need::Read)?;
    let params = QueryParams::parse(query.as_deref())?;
    let now_ns = u128::from(node.env.unix_time_ms()) * 1_000_000;
    let value = tokio::task::spawn_blocking(move || crate::env::host::collect(now_ns))
        .await
        .map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(json_response(&value, &params))
}
