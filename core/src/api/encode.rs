//! Consul's JSON shapes, built from catalog entries. Lists and maps are never `null`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::service_input::ServiceDefinition;
use crate::catalog::{CheckDefinition, HealthCheck, Node, ServiceAddress, ServiceInstance};

fn tagged(addresses: &BTreeMap<String, ServiceAddress>) -> Value {
    let map: Map<String, Value> =
        addresses.iter().map(|(k, a)| (k.clone(), json!({ "Address": a.address, "Port": a.port }))).collect();
    Value::Object(map)
}

/// Go's `time.Duration.String()` for whole milliseconds: "15s", "1m30s", "1h0m0s", "1.5s", "500ms"; "" for 0.
pub fn duration(ms: u64) -> String {
    if ms == 0 {
        return String::new();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (hours, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let seconds = if rest % 1000 == 0 {
        format!("{}s", rest / 1000)
    } else {
        format!("{}.{}s", rest / 1000, format!("{:03}", rest % 1000).trim_end_matches('0'))
    };
    match (hours, minutes) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}

/// A `/v1/catalog/nodes` element, also the `Node` of health entries.
pub fn node_json(node: &Node) -> Value {
    json!({
        "ID": node.id,
        "Node": node.node,
        "Address": node.address,
        "Datacenter": node.datacenter,
        "TaggedAddresses": node.tagged_addresses,
        "Meta": node.meta,
        "CreateIndex": node.create_index,
        "ModifyIndex": node.modify_index,
    })
}

/// A `/v1/catalog/service/:name` row (Consul's `ServiceNode`).
pub fn catalog_service_json(node: &Node, svc: &ServiceInstance) -> Value {
    json!({
        "ID": node.id,
        "Node": node.node,
        "Address": node.address,
        "Datacenter": node.datacenter,
        "TaggedAddresses": node.tagged_addresses,
        "NodeMeta": node.meta,
        "ServiceKind": svc.kind,
        "ServiceID": svc.id,
        "ServiceName": svc.service,
        "ServiceTags": svc.tags,
        "ServiceAddress": svc.address,
        "ServiceTaggedAddresses": tagged(&svc.tagged_addresses),
        "ServiceWeights": { "Passing": svc.weights.passing, "Warning": svc.weights.warning },
        "ServiceMeta": svc.meta,
        "ServicePort": svc.port,
        "ServiceSocketPath": "",
        "ServiceEnableTagOverride": svc.enable_tag_override,
        "ServiceProxy": { "Mode": "", "MeshGateway": {}, "Expose": {} },
        "ServiceConnect": {},
        "Namespace": "",
        "CreateIndex": svc.create_index,
        "ModifyIndex": svc.modify_index,
    })
}

/// A service as the agent endpoints and `/v1/catalog/node/:node` show it (Consul's `AgentService`).
pub fn agent_service_json(svc: &ServiceInstance, datacenter: &str) -> Value {
    let mut out = json!({
        "ID": svc.id,
        "Service": svc.service,
        "Tags": svc.tags,
        "Meta": svc.meta,
        "Port": svc.port,
        "Address": svc.address,
        "TaggedAddresses": tagged(&svc.tagged_addresses),
        "Weights": { "Passing": svc.weights.passing, "Warning": svc.weights.warning },
        "EnableTagOverride": svc.enable_tag_override,
        "Datacenter": datacenter,
        "CreateIndex": svc.create_index,
        "ModifyIndex": svc.modify_index,
    });
    if !svc.kind.is_empty() {
        out["Kind"] = json!(svc.kind);
    }
    out
}

fn definition_json(def: &CheckDefinition) -> Value {
    let mut out = Map::new();
    let mut put = |key: &str, value: Value| {
        out.insert(key.to_string(), value);
    };
    if !def.http.is_empty() {
        put("HTTP", json!(def.http));
    }
    if !def.method.is_empty() {
        put("Method", json!(def.method));
    }
    if !def.header.is_empty() {
        put("Header", json!(def.header));
    }
    if !def.body.is_empty() {
        put("Body", json!(def.body));
    }
    if !def.tls_server_name.is_empty() {
        put("TLSServerName", json!(def.tls_server_name));
    }
    if def.tls_skip_verify {
        put("TLSSkipVerify", json!(true));
    }
    if !def.tcp.is_empty() {
        put("TCP", json!(def.tcp));
    }
    if def.interval_ms > 0 {
        put("Interval", json!(duration(def.interval_ms)));
    }
    if def.timeout_ms > 0 {
        put("Timeout", json!(duration(def.timeout_ms)));
    }
    if def.ttl_ms > 0 {
        put("TTL", json!(duration(def.ttl_ms)));
    }
    if def.deregister_critical_service_after_ms > 0 {
        put("DeregisterCriticalServiceAfter", json!(duration(def.deregister_critical_service_after_ms)));
    }
    Value::Object(out)
}

/// A health check (`/v1/health/...`, `Checks` of health entries).
pub fn health_check_json(check: &HealthCheck) -> Value {
    json!({
        "Node": check.node,
        "CheckID": check.check_id,
        "Name": check.name,
        "Status": check.status.as_str(),
        "Notes": check.notes,
        "Output": check.output,
        "ServiceID": check.service_id,
        "ServiceName": check.service_name,
        "ServiceTags": check.service_tags,
        "Type": check.check_type,
        "Interval": duration(check.definition.interval_ms),
        "Timeout": duration(check.definition.timeout_ms),
        "ExposedPort": 0,
        "Definition": definition_json(&check.definition),
        "Namespace": "",
        "CreateIndex": check.create_index,
        "ModifyIndex": check.modify_index,
    })
}

/// A `/v1/health/service/:name` element.
pub fn health_service_json(node: &Node, svc: &ServiceInstance, checks: &[&HealthCheck]) -> Value {
    json!({
        "Node": node_json(node),
        "Service": agent_service_json(svc, &node.datacenter),
        "Checks": checks.iter().map(|c| health_check_json(c)).collect::<Vec<_>>(),
    })
}

/// A service definition as JSON that `decode_service_definition` reads back to the same value.
pub fn service_definition_json(def: &ServiceDefinition) -> Value {
    let checks: Vec<Value> = def
        .checks
        .iter()
        .map(|c| {
            let mut out = definition_json(&c.definition);
            let object = out.as_object_mut().expect("definition is an object");
            object.insert("CheckID".into(), json!(c.check_id));
            object.insert("Name".into(), json!(c.name));
            object.insert("Notes".into(), json!(c.notes));
            if let Some(status) = c.status {
                object.insert("Status".into(), json!(status.as_str()));
            }
            if !c.script_args.is_empty() {
                object.insert("Args".into(), json!(c.script_args));
            }
            object.insert("SuccessBeforePassing".into(), json!(c.success_before_passing));
            object.insert("FailuresBeforeCritical".into(), json!(c.failures_before_critical));
            object.insert("FailuresBeforeWarning".into(), json!(c.failures_before_warning));
            out
        })
        .collect();
    json!({
        "Kind": def.kind,
        "ID": def.id,
        "Name": def.name,
        "Tags": def.tags,
        "Address": def.address,
        "TaggedAddresses": tagged(&def.tagged_addresses),
        "Meta": def.meta,
        "Port": def.port,
        "Weights": { "Passing": def.weights.passing, "Warning": def.weights.warning },
        "EnableTagOverride": def.enable_tag_override,
        "Checks": checks,
    })
}

#[cfg(test)]
mod tests {
    use super::super::decode_service_definition;
    use super::*;

    #[test]
    fn durations_print_as_go_does() {
        let cases = [
            (0, ""),
            (500, "500ms"),
            (1500, "1.5s"),
            (15_000, "15s"),
            (90_000, "1m30s"),
            (3_600_000, "1h0m0s"),
            (5_400_250, "1h30m0.25s"),
        ];
        for (ms, want) in cases {
            assert_eq!(duration(ms), want, "{ms}");
        }
    }

    #[test]
    fn service_definition_round_trips_through_json() {
        let body = br#"{"ID":"a","Name":"web","Tags":["x"],"Meta":{"k":"v"},"Port":80,"Weights":{"Passing":3,"Warning":0},
            "TaggedAddresses":{"lan":{"address":"10.0.0.1","port":80}},
            "Checks":[{"HTTP":"http://x","Interval":"15s","Header":{"A":["b"]}},{"TTL":"30s","Status":"passing","Args":["x"]}]}"#;
        let def = decode_service_definition(body).unwrap();
        let again = decode_service_definition(service_definition_json(&def).to_string().as_bytes()).unwrap();
        assert_eq!(def, again);
    }
}
