//! Consul's pretty and JSON output for ACL resources (command/acl/*/formatter.go), as pure functions of
//! the API's JSON so that each layout is tested without an agent. Times print as Go's `time.Time`
//! prints them (`2020-05-22 18:52:31 +0000 UTC`), hashes in hex as Go's `%x`.

use std::fmt::Write;

use base64::Engine;
use serde_json::Value;

use super::go_text::{go_duration, go_time};

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or("").to_string()
}

fn list(v: &Value, key: &str) -> Vec<Value> {
    v[key].as_array().cloned().unwrap_or_default()
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    list(v, key).iter().filter_map(|s| s.as_str().map(str::to_string)).collect()
}

/// `encoding/json.MarshalIndent(v, "", "    ")`, which `-format=json` prints.
pub fn json(value: &Value) -> String {
    json_indented(value, b"    ")
}

fn json_indented(value: &Value, indent: &[u8]) -> String {
    let mut out = Vec::new();
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(indent));
    serde::Serialize::serialize(value, &mut serializer).expect("a JSON value always serialises");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Go's `%x` of a `[]byte` that JSON carried as base64.
fn hash_hex(v: &Value) -> String {
    let bytes = base64::engine::general_purpose::STANDARD.decode(v["Hash"].as_str().unwrap_or("")).unwrap_or_default();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn service_identity_lines(out: &mut String, v: &Value, indent: &str) {
    for identity in list(v, "ServiceIdentities") {
        let dcs = strings(&identity, "Datacenters");
        let dcs = if dcs.is_empty() { "all".to_string() } else { dcs.join(", ") };
        let _ = writeln!(out, "{indent}{} (Datacenters: {dcs})", text(&identity, "ServiceName"));
    }
}

fn node_identity_lines(out: &mut String, v: &Value, indent: &str) {
    for identity in list(v, "NodeIdentities") {
        let _ =
            writeln!(out, "{indent}{} (Datacenter: {})", text(&identity, "NodeName"), text(&identity, "Datacenter"));
    }
}

/// The `Policies:`/`Roles:`/identity blocks shared by tokens and roles; `indent` is the block's own.
fn links(out: &mut String, v: &Value, indent: &str) {
    for (key, title) in [("Policies", "Policies"), ("Roles", "Roles")] {
        let links = list(v, key);
        if !links.is_empty() {
            let _ = writeln!(out, "{indent}{title}:");
            for link in links {
                let _ = writeln!(out, "{indent}   {} - {}", text(&link, "ID"), text(&link, "Name"));
            }
        }
    }
    if !list(v, "ServiceIdentities").is_empty() {
        let _ = writeln!(out, "{indent}Service Identities:");
        service_identity_lines(out, v, &format!("{indent}   "));
    }
    if !list(v, "NodeIdentities").is_empty() {
        let _ = writeln!(out, "{indent}Node Identities:");
        node_identity_lines(out, v, &format!("{indent}   "));
    }
}

fn token_head(out: &mut String, token: &Value, show_meta: bool) {
    let _ = writeln!(out, "AccessorID:       {}", text(token, "AccessorID"));
    let _ = writeln!(out, "SecretID:         {}", text(token, "SecretID"));
    for key in ["Partition", "Namespace"] {
        if !text(token, key).is_empty() {
            let _ = writeln!(out, "{:<18}{}", format!("{key}:"), text(token, key));
        }
    }
    let _ = writeln!(out, "Description:      {}", text(token, "Description"));
    let _ = writeln!(out, "Local:            {}", token["Local"].as_bool().unwrap_or(false));
    if !text(token, "AuthMethod").is_empty() {
        let namespace = text(token, "AuthMethodNamespace");
        let _ = writeln!(out, "Auth Method:      {} (Namespace: {namespace})", text(token, "AuthMethod"));
    }
    let _ = writeln!(out, "Create Time:      {}", go_time(&text(token, "CreateTime")));
    let expires = text(token, "ExpirationTime");
    if !expires.is_empty() && !expires.starts_with("0001-01-01") {
        let _ = writeln!(out, "Expiration Time:  {}", go_time(&expires));
    }
    if show_meta {
        let _ = writeln!(out, "Hash:             {}", hash_hex(token));
        let _ = writeln!(out, "Create Index:     {}", token["CreateIndex"].as_u64().unwrap_or(0));
        let _ = writeln!(out, "Modify Index:     {}", token["ModifyIndex"].as_u64().unwrap_or(0));
    }
}

/// `FormatToken`: what `acl bootstrap` and `acl token create|read|update|clone` print.
pub fn token(token: &Value, show_meta: bool) -> String {
    let mut out = String::new();
    token_head(&mut out, token, show_meta);
    links(&mut out, token, "");
    if !text(token, "Rules").is_empty() {
        let _ = writeln!(out, "Rules:\n{}", text(token, "Rules"));
    }
    out
}

/// `FormatTokenList`: the entries of `acl token list`, a blank line between them.
pub fn token_list(tokens: &[Value], show_meta: bool) -> String {
    let entries: Vec<String> = tokens
        .iter()
        .map(|t| {
            let mut out = String::new();
            token_head(&mut out, t, show_meta);
            links(&mut out, t, "");
            out
        })
        .collect();
    entries.join("\n")
}

/// `FormatPolicy`: the rules come last, as they are, without a newline added.
pub fn policy(policy: &Value, show_meta: bool) -> String {
    let mut out = policy_fields(policy, show_meta, "", true);
    let _ = write!(out, "Rules:\n{}", text(policy, "Rules"));
    out
}

fn policy_fields(policy: &Value, show_meta: bool, indent: &str, with_name: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{indent}ID:           {}", text(policy, "ID"));
    if with_name {
        let _ = writeln!(out, "{indent}Name:         {}", text(policy, "Name"));
    }
    if !text(policy, "Namespace").is_empty() {
        let _ = writeln!(out, "{indent}Namespace:    {}", text(policy, "Namespace"));
    }
    let _ = writeln!(out, "{indent}Description:  {}", text(policy, "Description"));
    let _ = writeln!(out, "{indent}Datacenters:  {}", strings(policy, "Datacenters").join(", "));
    if show_meta {
        meta_lines(&mut out, policy, indent, true);
    }
    out
}

fn meta_lines(out: &mut String, v: &Value, indent: &str, with_hash: bool) {
    if with_hash {
        let _ = writeln!(out, "{indent}Hash:         {}", hash_hex(v));
    }
    let _ = writeln!(out, "{indent}Create Index: {}", v["CreateIndex"].as_u64().unwrap_or(0));
    let _ = writeln!(out, "{indent}Modify Index: {}", v["ModifyIndex"].as_u64().unwrap_or(0));
}

/// `FormatPolicyList`: `<name>:` then the fields indented by three spaces.
pub fn policy_list(policies: &[Value], show_meta: bool) -> String {
    policies.iter().map(|p| format!("{}:\n{}", text(p, "Name"), policy_fields(p, show_meta, "   ", false))).collect()
}

fn role_fields(role: &Value, show_meta: bool, indent: &str, with_name: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{indent}ID:           {}", text(role, "ID"));
    if with_name {
        let _ = writeln!(out, "{indent}Name:         {}", text(role, "Name"));
    }
    for key in ["Partition", "Namespace"] {
        if !text(role, key).is_empty() {
            let _ = writeln!(out, "{indent}{:<14}{}", format!("{key}:"), text(role, key));
        }
    }
    let _ = writeln!(out, "{indent}Description:  {}", text(role, "Description"));
    if show_meta {
        meta_lines(&mut out, role, indent, true);
    }
    links(&mut out, role, indent);
    out
}

/// `FormatRole`.
pub fn role(role: &Value, show_meta: bool) -> String {
    role_fields(role, show_meta, "", true)
}

/// `FormatRoleList`: `<name>:` then the fields and links indented by three spaces.
pub fn role_list(roles: &[Value], show_meta: bool) -> String {
    roles.iter().map(|r| format!("{}:\n{}", text(r, "Name"), role_fields(r, show_meta, "   ", false))).collect()
}

/// `MaxTokenTTL` as Go's `Duration.String()`; the API sends it as that string, or as nanoseconds.
fn max_token_ttl(method: &Value) -> Option<String> {
    match &method["MaxTokenTTL"] {
        Value::String(s) if !s.is_empty() && s != "0s" => Some(s.clone()),
        Value::Number(n) if n.as_u64().unwrap_or(0) > 0 => Some(go_duration(n.as_u64().unwrap_or(0))),
        _ => None,
    }
}

/// `FormatAuthMethod`: the config comes last as JSON indented by two spaces.
pub fn auth_method(method: &Value, show_meta: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Name:          {}", text(method, "Name"));
    let _ = writeln!(out, "Type:          {}", text(method, "Type"));
    for (key, label) in [("Namespace", "Namespace:"), ("DisplayName", "DisplayName:")] {
        if !text(method, key).is_empty() {
            let _ = writeln!(out, "{label:<15}{}", text(method, key));
        }
    }
    let _ = writeln!(out, "Description:   {}", text(method, "Description"));
    if let Some(ttl) = max_token_ttl(method) {
        let _ = writeln!(out, "MaxTokenTTL:   {ttl}");
    }
    if !text(method, "TokenLocality").is_empty() {
        let _ = writeln!(out, "TokenLocality: {}", text(method, "TokenLocality"));
    }
    if show_meta {
        let _ = writeln!(out, "Create Index:  {}", method["CreateIndex"].as_u64().unwrap_or(0));
        let _ = writeln!(out, "Modify Index:  {}", method["ModifyIndex"].as_u64().unwrap_or(0));
    }
    let _ = write!(out, "Config:\n{}", json_indented(&method["Config"], b"  "));
    out
}

/// `FormatAuthMethodList`.
pub fn auth_method_list(methods: &[Value], show_meta: bool) -> String {
    let mut out = String::new();
    for method in methods {
        let _ = writeln!(out, "{}:", text(method, "Name"));
        let _ = writeln!(out, "   Type:         {}", text(method, "Type"));
        for (key, label) in [("Namespace", "Namespace:"), ("DisplayName", "DisplayName:")] {
            if !text(method, key).is_empty() {
                let _ = writeln!(out, "   {label:<14}{}", text(method, key));
            }
        }
        let _ = writeln!(out, "   Description:  {}", text(method, "Description"));
        if show_meta {
            meta_lines(&mut out, method, "   ", false);
        }
    }
    out
}

fn binding_rule_fields(rule: &Value, show_meta: bool, indent: &str) -> String {
    let mut out = String::new();
    for key in ["Partition", "Namespace"] {
        if !text(rule, key).is_empty() {
            let _ = writeln!(out, "{indent}{:<14}{}", format!("{key}:"), text(rule, key));
        }
    }
    let _ = writeln!(out, "{indent}AuthMethod:   {}", text(rule, "AuthMethod"));
    let _ = writeln!(out, "{indent}Description:  {}", text(rule, "Description"));
    let _ = writeln!(out, "{indent}BindType:     {}", text(rule, "BindType"));
    let _ = writeln!(out, "{indent}BindName:     {}", text(rule, "BindName"));
    let _ = writeln!(out, "{indent}Selector:     {}", text(rule, "Selector"));
    if show_meta {
        meta_lines(&mut out, rule, indent, false);
    }
    out
}

/// `FormatBindingRule`.
pub fn binding_rule(rule: &Value, show_meta: bool) -> String {
    format!("ID:           {}\n{}", text(rule, "ID"), binding_rule_fields(rule, show_meta, ""))
}

/// `FormatBindingRuleList`: `<id>:` then the fields indented by three spaces.
pub fn binding_rule_list(rules: &[Value], show_meta: bool) -> String {
    rules.iter().map(|r| format!("{}:\n{}", text(r, "ID"), binding_rule_fields(r, show_meta, "   "))).collect()
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
