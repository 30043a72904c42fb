//! The ACL records as Consul's JSON: tokens (with policy and role links named as they are now, secrets
//! only where the caller may see them), policies, roles, auth methods and binding rules. Empty optional
//! fields are left out, as Go's `omitempty` leaves them.

use serde_json::{json, Map, Value};

use crate::acl::{AclTable, AuthMethod, BindingRule, Link, NodeIdentity, Policy, Role, ServiceIdentity, Token};

/// An instant (ms since the Unix epoch) as RFC 3339, as Go's `time.Time` marshals.
pub fn rfc3339(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn policy_links(links: &[Link], table: &AclTable) -> Value {
    links
        .iter()
        .map(|l| json!({"ID": l.id, "Name": table.policy(&l.id).map(|p| p.name.as_str()).unwrap_or("")}))
        .collect()
}

fn role_links(links: &[Link], table: &AclTable) -> Value {
    links
        .iter()
        .map(|l| json!({"ID": l.id, "Name": table.role(&l.id).map(|r| r.name.as_str()).unwrap_or("")}))
        .collect()
}

fn service_identities(identities: &[ServiceIdentity]) -> Value {
    identities
        .iter()
        .map(|s| {
            let mut out = json!({"ServiceName": s.service_name});
            if !s.datacenters.is_empty() {
                out["Datacenters"] = json!(s.datacenters);
            }
            out
        })
        .collect()
}

fn node_identities(identities: &[NodeIdentity]) -> Value {
    identities.iter().map(|n| json!({"NodeName": n.node_name, "Datacenter": n.datacenter})).collect()
}

/// Consul's record hashes: a digest of what a record grants, for clients that compare records (FNV-1a,
/// base64; Conclave's own, not Consul's blake2b).
fn digest(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, hash.to_be_bytes())
}

fn token_hash(token: &Token) -> String {
    digest(&format!(
        "{}|{:?}|{:?}|{:?}|{:?}|{}",
        token.description, token.policies, token.roles, token.service_identities, token.node_identities, token.local
    ))
}

fn insert_nonempty(out: &mut Map<String, Value>, key: &str, value: Value) {
    if value.as_array().is_some_and(|a| !a.is_empty()) {
        out.insert(key.to_string(), value);
    }
}

/// A token; `show_secret` false replaces the SecretID with Consul's redaction.
pub fn token_json(token: &Token, table: &AclTable, show_secret: bool) -> Value {
    let mut out = Map::new();
    out.insert("AccessorID".into(), json!(token.accessor_id));
    out.insert("SecretID".into(), json!(if show_secret { token.secret_id.as_str() } else { "<hidden>" }));
    out.insert("Description".into(), json!(token.description));
    insert_nonempty(&mut out, "Policies", policy_links(&token.policies, table));
    insert_nonempty(&mut out, "Roles", role_links(&token.roles, table));
    insert_nonempty(&mut out, "ServiceIdentities", service_identities(&token.service_identities));
    insert_nonempty(&mut out, "NodeIdentities", node_identities(&token.node_identities));
    out.insert("Local".into(), json!(token.local));
    if !token.auth_method.is_empty() {
        out.insert("AuthMethod".into(), json!(token.auth_method));
    }
    if let Some(at) = token.expiration_time_ms {
        out.insert("ExpirationTime".into(), json!(rfc3339(at)));
    }
    if token.expiration_ttl_ns > 0 {
        out.insert("ExpirationTTL".into(), json!(super::encode::duration(token.expiration_ttl_ns / 1_000_000)));
    }
    out.insert("CreateTime".into(), json!(rfc3339(token.create_time_ms)));
    out.insert("Hash".into(), json!(token_hash(token)));
    out.insert("CreateIndex".into(), json!(token.create_index));
    out.insert("ModifyIndex".into(), json!(token.modify_index));
    Value::Object(out)
}

/// A token in a list (Consul's `ACLTokenListStub`): no rules, and `Legacy` false.
pub fn token_stub_json(token: &Token, table: &AclTable, show_secret: bool) -> Value {
    let mut out = token_json(token, table, show_secret);
    out["Legacy"] = json!(false);
    out
}

pub fn policy_json(policy: &Policy) -> Value {
    let mut out = json!({
        "ID": policy.id,
        "Name": policy.name,
        "Description": policy.description,
        "Rules": policy.rules,
        "Hash": policy_hash(policy),
        "CreateIndex": policy.create_index,
        "ModifyIndex": policy.modify_index,
    });
    if !policy.datacenters.is_empty() {
        out["Datacenters"] = json!(policy.datacenters);
    }
    out
}

/// A policy in a list: no rules.
pub fn policy_stub_json(policy: &Policy) -> Value {
    let mut out = policy_json(policy);
    out.as_object_mut().expect("an object").remove("Rules");
    out
}

fn policy_hash(policy: &Policy) -> String {
    digest(&format!("{}|{}|{}|{:?}", policy.name, policy.description, policy.rules, policy.datacenters))
}

pub fn role_json(role: &Role, table: &AclTable) -> Value {
    let mut out = Map::new();
    out.insert("ID".into(), json!(role.id));
    out.insert("Name".into(), json!(role.name));
    out.insert("Description".into(), json!(role.description));
    insert_nonempty(&mut out, "Policies", policy_links(&role.policies, table));
    insert_nonempty(&mut out, "ServiceIdentities", service_identities(&role.service_identities));
    insert_nonempty(&mut out, "NodeIdentities", node_identities(&role.node_identities));
    out.insert("Hash".into(), json!(""));
    out.insert("CreateIndex".into(), json!(role.create_index));
    out.insert("ModifyIndex".into(), json!(role.modify_index));
    Value::Object(out)
}

pub fn auth_method_json(method: &AuthMethod) -> Value {
    let config: Value = serde_json::from_str(&method.config_json).unwrap_or_else(|_| json!({}));
    let mut out = json!({
        "Name": method.name,
        "Type": method.method_type,
        "Description": method.description,
        "TokenLocality": method.token_locality,
        "Config": config,
        "CreateIndex": method.create_index,
        "ModifyIndex": method.modify_index,
    });
    if !method.display_name.is_empty() {
        out["DisplayName"] = json!(method.display_name);
    }
    if method.max_token_ttl_ns > 0 {
        out["MaxTokenTTL"] = json!(super::encode::duration(method.max_token_ttl_ns / 1_000_000));
    }
    out
}

pub fn binding_rule_json(rule: &BindingRule) -> Value {
    json!({
        "ID": rule.id,
        "Description": rule.description,
        "AuthMethod": rule.auth_method,
        "Selector": rule.selector,
        "BindType": rule.bind_type.name(),
        "BindName": rule.bind_name,
        "CreateIndex": rule.create_index,
        "ModifyIndex": rule.modify_index,
    })
}
