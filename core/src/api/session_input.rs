//! `PUT /v1/session/create` bodies (Consul's `structs.Session`): `LockDelay` as a Go duration or a
//! number (below 1000 it counts seconds, as Consul's `FixupLockDelay`), `TTL` between 10 s and 24 h,
//! `Behavior` `release` or `delete`, and the checks the session is bound to (`serfHealth` by default).

use serde::Deserialize;

use super::duration::parse_go_duration;
use super::keys::decode_object;
use super::ApiError;
use crate::kv::session::LOCK_DELAY_DEFAULT_NS;
use crate::kv::{ServiceCheckRef, Session, SessionBehavior};

/// Consul's session TTL bounds (`session_ttl_min` 10 s, and 24 h).
pub const SESSION_TTL_MIN_MS: u64 = 10_000;
pub const SESSION_TTL_MAX_MS: u64 = 86_400_000;

// Consul fields Conclave accepts but does not act on are kept so payloads carrying them decode.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionInput {
    id: Option<String>,
    name: Option<String>,
    node: Option<String>,
    #[serde(rename = "lockdelay")]
    lock_delay: Option<serde_json::Value>,
    behavior: Option<String>,
    ttl: Option<String>,
    checks: Option<Vec<String>>,
    #[serde(rename = "nodechecks")]
    node_checks: Option<Vec<String>>,
    #[serde(rename = "servicechecks")]
    service_checks: Option<Vec<ServiceCheckInput>>,
    namespace: Option<String>,
    partition: Option<String>,
    #[serde(rename = "createindex")]
    create_index: Option<u64>,
    #[serde(rename = "modifyindex")]
    modify_index: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceCheckInput {
    id: Option<String>,
    namespace: Option<String>,
}

/// Decodes a session to create; `agent_node` is the node it belongs to when the body names none. The
/// ID is left empty: the server chooses it.
pub fn decode_session_create(body: &[u8], agent_node: &str) -> Result<Session, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    let input: SessionInput = decode_object(body, "structs.Session")?;
    let behavior = match input.behavior.as_deref() {
        None | Some("") | Some("release") => SessionBehavior::Release,
        Some("delete") => SessionBehavior::Delete,
        Some(other) => return Err(ApiError::bad_request(format!("Invalid Behavior setting '{other}'"))),
    };
    let ttl = input.ttl.unwrap_or_default();
    let ttl_ms = if ttl.is_empty() {
        0
    } else {
        let parsed = parse_go_duration(&ttl)
            .map_err(|_| ApiError::bad_request(format!("Request decode failed: time: invalid duration {ttl:?}")))?;
        let ms = parsed.as_millis() as u64;
        if ms != 0 && !(SESSION_TTL_MIN_MS..=SESSION_TTL_MAX_MS).contains(&ms) {
            return Err(ApiError::bad_request(format!(
                "Invalid Session TTL '{}', must be between [10s=24h0m0s]",
                parsed.as_nanos()
            )));
        }
        ms
    };
    let node_checks = match (input.node_checks, input.checks, &input.service_checks) {
        (Some(checks), _, _) | (None, Some(checks), _) => checks,
        (None, None, Some(_)) => Vec::new(),
        (None, None, None) => vec!["serfHealth".to_string()],
    };
    let service_checks = input
        .service_checks
        .unwrap_or_default()
        .into_iter()
        .map(|c| ServiceCheckRef { id: c.id.unwrap_or_default(), namespace: c.namespace.unwrap_or_default() })
        .collect();
    Ok(Session {
        id: String::new(),
        name: input.name.unwrap_or_default(),
        node: input.node.filter(|n| !n.is_empty()).unwrap_or_else(|| agent_node.to_string()),
        lock_delay_ns: lock_delay_ns(input.lock_delay)?,
        behavior,
        ttl: if ttl_ms == 0 { String::new() } else { ttl },
        ttl_ms,
        node_checks,
        service_checks,
        create_index: 0,
        modify_index: 0,
    })
}

fn lock_delay_ns(value: Option<serde_json::Value>) -> Result<u64, ApiError> {
    let invalid = || ApiError::bad_request("Request decode failed: invalid LockDelay");
    match value {
        None | Some(serde_json::Value::Null) => Ok(LOCK_DELAY_DEFAULT_NS),
        Some(serde_json::Value::String(text)) if text.is_empty() => Ok(LOCK_DELAY_DEFAULT_NS),
        Some(serde_json::Value::String(text)) => {
            let nanos = parse_go_duration(&text)?.as_nanos();
            u64::try_from(nanos).map_err(|_| invalid())
        }
        Some(serde_json::Value::Number(number)) => {
            let raw = number.as_u64().ok_or_else(invalid)?;
            // Consul's FixupLockDelay: a small number is seconds, a large one nanoseconds.
            Ok(if raw < 1000 { raw.checked_mul(1_000_000_000).ok_or_else(invalid)? } else { raw })
        }
        Some(_) => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_consuls() {
        let session = decode_session_create(b"", "agent-1").unwrap();
        assert_eq!(session.node, "agent-1");
        assert_eq!(session.lock_delay_ns, 15_000_000_000);
        assert_eq!(session.node_checks, ["serfHealth"]);
        assert_eq!(session.behavior, SessionBehavior::Release);
        assert_eq!(session.ttl_ms, 0);
    }

    #[test]
    fn lock_delay_numbers_below_1000_are_seconds() {
        let session = decode_session_create(br#"{"LockDelay": 5}"#, "n").unwrap();
        assert_eq!(session.lock_delay_ns, 5_000_000_000);
        let session = decode_session_create(br#"{"LockDelay": 2000000000}"#, "n").unwrap();
        assert_eq!(session.lock_delay_ns, 2_000_000_000);
        let session = decode_session_create(br#"{"lock_delay": "0s"}"#, "n").unwrap();
        assert_eq!(session.lock_delay_ns, 0);
    }

    #[test]
    fn ttl_outside_bounds_is_refused() {
        let error = decode_session_create(br#"{"TTL": "5s"}"#, "n").unwrap_err();
        assert_eq!(error.message, "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]");
        assert!(decode_session_create(br#"{"TTL": "86401s"}"#, "n").is_err());
        let session = decode_session_create(br#"{"TTL": "10s", "Behavior": "delete"}"#, "n").unwrap();
        assert_eq!((session.ttl.as_str(), session.ttl_ms, session.behavior), ("10s", 10_000, SessionBehavior::Delete));
        assert!(decode_session_create(br#"{"Behavior": "explode"}"#, "n").is_err());
    }
}
