//! Consul's JSON for KV entries, sessions and transaction answers: `Value` base64 (null when empty),
//! `Session` omitted when unset, `LockDelay` in nanoseconds.

use base64::Engine;
use serde_json::{json, Map, Value};

use super::encode::{agent_service_json, health_check_json, node_json};
use crate::kv::{KvEntry, Session, TxnError, TxnResult};

pub fn kv_entry_json(entry: &KvEntry) -> Value {
    let mut out = Map::new();
    out.insert("LockIndex".into(), json!(entry.lock_index));
    out.insert("Key".into(), json!(entry.key));
    out.insert("Flags".into(), json!(entry.flags));
    let value = match entry.value.is_empty() {
        true => Value::Null,
        false => json!(base64::engine::general_purpose::STANDARD.encode(&entry.value)),
    };
    out.insert("Value".into(), value);
    if !entry.session.is_empty() {
        out.insert("Session".into(), json!(entry.session));
    }
    out.insert("CreateIndex".into(), json!(entry.create_index));
    out.insert("ModifyIndex".into(), json!(entry.modify_index));
    Value::Object(out)
}

pub fn session_json(session: &Session) -> Value {
    let service_checks = match session.service_checks.is_empty() {
        true => Value::Null,
        false => session
            .service_checks
            .iter()
            .map(|c| json!({"ID": c.id, "Namespace": c.namespace}))
            .collect::<Vec<_>>()
            .into(),
    };
    json!({
        "ID": session.id,
        "Name": session.name,
        "Node": session.node,
        "LockDelay": session.lock_delay_ns,
        "Behavior": session.behavior.as_str(),
        "TTL": session.ttl,
        "NodeChecks": session.node_checks,
        "ServiceChecks": service_checks,
        "CreateIndex": session.create_index,
        "ModifyIndex": session.modify_index,
    })
}

/// A transaction's answer: `{"Results": [...], "Errors": null}` or `{"Results": null, "Errors": [...]}`.
pub fn txn_json(results: &[TxnResult], errors: &[TxnError], datacenter: &str) -> Value {
    let results: Vec<Value> = results
        .iter()
        .map(|result| match result {
            TxnResult::Kv(entry) => json!({ "KV": kv_entry_json(entry) }),
            TxnResult::Node(node) => json!({ "Node": node_json(node) }),
            TxnResult::Service(service) => json!({ "Service": agent_service_json(service, datacenter) }),
            TxnResult::Check(check) => json!({ "Check": health_check_json(check) }),
        })
        .collect();
    let errors: Vec<Value> = errors.iter().map(|e| json!({"OpIndex": e.op_index, "What": e.what})).collect();
    let or_null = |items: Vec<Value>| if items.is_empty() { Value::Null } else { Value::Array(items) };
    json!({ "Results": or_null(results), "Errors": or_null(errors) })
}
