//! `/v1/operator/autopilot/...`: the replicated autopilot configuration (read, and written with an
//! optional check-and-set), and the leader's view of server health (`/health`, 429 when not healthy,
//! as Consul answers) and of the cluster (`/state`). Health and state are the leader's: another
//! server forwards them to the leader once, marking the hop so two servers that disagree on who leads
//! never pass a request back and forth.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use conclave_core::acl::{Need, Resource};
use conclave_core::api::{format_go_duration, normalize_key, parse_go_duration};
use conclave_core::autopilot::{AutopilotCommand, AutopilotConfig};
use conclave_core::state::{Command, Response as Applied};
use serde_json::{json, Map, Value};

use super::authz::Caller;
use super::{json_response, HttpError, QueryParams};
use crate::env::Env;
use crate::node::autopilot::{Report, ServerReport};
use crate::node::Node;

/// The query parameter a server adds when it forwards health or state to the leader.
const LEADER_HOP: &str = "leader-hop";

fn duration_text(ms: u64) -> String {
    format_go_duration(std::time::Duration::from_millis(ms))
}

/// Consul's `AutopilotConfiguration` JSON.
pub fn config_json(config: &AutopilotConfig) -> Value {
    json!({
        "CleanupDeadServers": config.cleanup_dead_servers,
        "LastContactThreshold": duration_text(config.last_contact_threshold_ms),
        "MaxTrailingLogs": config.max_trailing_logs,
        "MinQuorum": config.min_quorum,
        "ServerStabilizationTime": duration_text(config.server_stabilization_time_ms),
        "RedundancyZoneTag": "",
        "DisableUpgradeMigration": false,
        "UpgradeVersionTag": "",
        "CreateIndex": config.create_index,
        "ModifyIndex": config.modify_index,
    })
}

pub async fn get_configuration<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    caller.require(Resource::Operator, "", Need::Read)?;
    if params.consistency != super::Consistency::Stale {
        node.read_barrier().await?;
    }
    Ok(json_response(&config_json(&node.autopilot_config()), &params))
}

/// Decodes a PUT body as Go decodes it into Consul's struct: keys case-insensitive, fields left out are
/// zero, unknown fields refused, durations as Go strings or nanoseconds, enterprise fields only when off.
pub fn decode_config(body: &[u8]) -> Result<AutopilotConfig, HttpError> {
    let bad = |why: String| HttpError::bad_request(format!("Error parsing autopilot config: {why}"));
    let value: Value = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    let Value::Object(fields) = value else { return Err(bad("expected a JSON object".to_string())) };
    let mut config = AutopilotConfig {
        cleanup_dead_servers: false,
        last_contact_threshold_ms: 0,
        max_trailing_logs: 0,
        min_quorum: 0,
        server_stabilization_time_ms: 0,
        create_index: 0,
        modify_index: 0,
    };
    let duration_ms = |key: &str, value: &Value| -> Result<u64, HttpError> {
        match value {
            Value::String(text) => {
                Ok(parse_go_duration(text).map_err(|e| bad(format!("{key}: {e}")))?.as_millis() as u64)
            }
            Value::Number(n) => {
                n.as_u64().map(|nanos| nanos / 1_000_000).ok_or_else(|| bad(format!("{key}: bad duration")))
            }
            _ => Err(bad(format!("{key}: expected a duration"))),
        }
    };
    let unsigned = |key: &str, value: &Value| value.as_u64().ok_or_else(|| bad(format!("{key}: expected a number")));
    for (key, value) in &fields {
        match normalize_key(key).as_str() {
            "cleanupdeadservers" => {
                config.cleanup_dead_servers = value.as_bool().ok_or_else(|| bad(format!("{key}: expected a bool")))?
            }
            "lastcontactthreshold" => config.last_contact_threshold_ms = duration_ms(key, value)?,
            "maxtrailinglogs" => config.max_trailing_logs = unsigned(key, value)?,
            "minquorum" => {
                config.min_quorum =
                    u32::try_from(unsigned(key, value)?).map_err(|_| bad(format!("{key}: too large")))?
            }
            "serverstabilizationtime" => config.server_stabilization_time_ms = duration_ms(key, value)?,
            "redundancyzonetag" | "disableupgrademigration" | "upgradeversiontag" => {
                if !crate::config::is_off(value) {
                    return Err(bad(format!("{key} is a Consul Enterprise feature Conclave does not have")));
                }
            }
            "createindex" | "modifyindex" => {}
            _ => return Err(bad(format!("unknown field {key:?}"))),
        }
    }
    Ok(config)
}

pub async fn put_configuration<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    caller.require(Resource::Operator, "", Need::Write)?;
    let cas = match params.all.iter().find(|(k, _)| k == "cas") {
        Some((_, text)) => Some(
            text.parse::<u64>().map_err(|_| HttpError::bad_request(format!("Error parsing cas value: {text:?}")))?,
        ),
        None => None,
    };
    let config = decode_config(&body)?;
    let command = Command::Autopilot(AutopilotCommand::Set { config, cas });
    match node.write_as(command, caller.authority()).await? {
        (_, Applied::Kv(done)) => Ok(json_response(&done, &params)),
        (_, Applied::Denied(why)) => Err(super::authz::denied(why)),
        (_, other) => Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("unexpected answer {other:?}"))),
    }
}

/// The leader's report, or the leader's own answer when this server does not lead.
async fn leader_report<E: Env>(
    node: &Arc<Node<E>>,
    headers: &HeaderMap,
    query: Option<&str>,
    path: &str,
) -> Result<Result<Report, Response>, HttpError> {
    if node.is_leader() {
        return node.autopilot.report().map(Ok).ok_or_else(|| {
            HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "autopilot has not observed the servers yet")
        });
    }
    let params = QueryParams::parse(query)?;
    if params.all.iter().any(|(k, _)| k == LEADER_HOP) || node.leader().is_none() {
        return Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "No cluster leader"));
    }
    let token = node.request_secret(super::authz::token_of(headers, query).as_deref());
    let path_and_query = match query {
        Some(query) if !query.is_empty() => format!("{path}?{query}&{LEADER_HOP}=1"),
        _ => format!("{path}?{LEADER_HOP}=1"),
    };
    Ok(Err(super::forward::forward_to_leader(node, "GET", &path_and_query, token).await))
}

fn contact_text(server: &ServerReport) -> Value {
    server.last_contact.map_or(Value::Null, |d| json!(format_go_duration(d)))
}

fn server_id(id: u64) -> String {
    format!("{id:016x}")
}

fn stable_since(server: &ServerReport) -> String {
    conclave_core::api::encode_acl::rfc3339(server.stable_since_unix_ms)
}

pub async fn health<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    caller.require(Resource::Operator, "", Need::Read)?;
    let report = match leader_report(&node, &headers, query.as_deref(), "/v1/operator/autopilot/health").await? {
        Ok(report) => report,
        Err(forwarded) => return Ok(forwarded),
    };
    let servers: Vec<Value> = report
        .servers
        .iter()
        .map(|s| {
            json!({
                "ID": server_id(s.id),
                "Name": s.name,
                "Address": s.address,
                "SerfStatus": s.serf.as_str(),
                "Version": s.version,
                "Leader": s.leader,
                "LastContact": contact_text(s),
                "LastTerm": s.last_term,
                "LastIndex": s.last_index,
                "Healthy": s.healthy,
                "Voter": s.voter,
                "StableSince": stable_since(s),
            })
        })
        .collect();
    let body = json!({"Healthy": report.healthy, "FailureTolerance": report.failure_tolerance, "Servers": servers});
    let mut response = json_response(&body, &params);
    if !report.healthy {
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    }
    Ok(response)
}

pub async fn state<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    caller.require(Resource::Operator, "", Need::Read)?;
    let report = match leader_report(&node, &headers, query.as_deref(), "/v1/operator/autopilot/state").await? {
        Ok(report) => report,
        Err(forwarded) => return Ok(forwarded),
    };
    let mut servers = Map::new();
    for s in &report.servers {
        let status = match (s.leader, s.voter) {
            (true, _) => "leader",
            (false, true) => "voter",
            (false, false) => "non-voter",
        };
        servers.insert(
            server_id(s.id),
            json!({
                "ID": server_id(s.id),
                "Name": s.name,
                "Address": s.address,
                "NodeStatus": s.serf.as_str(),
                "Version": s.version,
                "LastContact": contact_text(s),
                "LastTerm": s.last_term,
                "LastIndex": s.last_index,
                "Healthy": s.healthy,
                "StableSince": stable_since(s),
                "ReadReplica": false,
                "Status": status,
                "Meta": {},
                "NodeType": "voter",
            }),
        );
    }
    let voters: Vec<String> = report.servers.iter().filter(|s| s.voter).map(|s| server_id(s.id)).collect();
    let body = json!({
        "Healthy": report.healthy,
        "FailureTolerance": report.failure_tolerance,
        "OptimisticFailureTolerance": report.optimistic_failure_tolerance,
        "Servers": servers,
        "Leader": server_id(report.leader),
        "Voters": voters,
    });
    Ok(json_response(&body, &params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_json_is_consuls() {
        let value = config_json(&AutopilotConfig::default());
        assert_eq!(value["LastContactThreshold"], "200ms");
        assert_eq!(value["ServerStabilizationTime"], "10s");
        assert_eq!(value["MaxTrailingLogs"], 250);
        assert_eq!(value["RedundancyZoneTag"], "");
    }

    #[test]
    fn put_body_decodes_as_go_does() {
        let config = decode_config(br#"{"cleanupdeadservers": true, "LastContactThreshold": "1s", "MinQuorum": 3, "ServerStabilizationTime": 2000000000}"#).unwrap();
        assert!(config.cleanup_dead_servers);
        assert_eq!(
            (config.last_contact_threshold_ms, config.min_quorum, config.server_stabilization_time_ms),
            (1_000, 3, 2_000)
        );
        assert_eq!(config.max_trailing_logs, 0, "a field left out is zero, as Go decodes it");
        assert_eq!(decode_config(br#"{"Bogus": 1}"#).unwrap_err().status, StatusCode::BAD_REQUEST);
        assert!(decode_config(br#"{"RedundancyZoneTag": "az"}"#).is_err());
        assert!(decode_config(br#"{"RedundancyZoneTag": "", "DisableUpgradeMigration": false}"#).is_ok());
    }
}
