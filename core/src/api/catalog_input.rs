//! `PUT /v1/catalog/register` and `PUT /v1/catalog/deregister` bodies (Consul's `RegisterRequest` and
//! `DeregisterRequest`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::duration::GoDuration;
use super::keys::decode_object;
use super::service_input::{is_unspecified_address, port, tagged_addresses, weights, AddressInput, WeightsInput};
use super::ApiError;
use crate::catalog::{
    CheckDefinition, CheckSpec, CheckStatus, DeregisterRequest, NodeSpec, RegisterRequest, ServiceSpec,
};

// Consul fields Conclave accepts but does not act on are kept so payloads carrying them decode.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AgentServiceInput {
    kind: Option<String>,
    id: Option<String>,
    service: Option<String>,
    tags: Option<Vec<String>>,
    address: Option<String>,
    #[serde(rename = "taggedaddresses")]
    tagged_addresses: Option<BTreeMap<String, AddressInput>>,
    meta: Option<BTreeMap<String, String>>,
    port: Option<i64>,
    weights: Option<WeightsInput>,
    #[serde(rename = "enabletagoverride")]
    enable_tag_override: Option<bool>,
    #[serde(rename = "socketpath")]
    socket_path: Option<String>,
    proxy: Option<serde_json::Value>,
    connect: Option<serde_json::Value>,
    namespace: Option<String>,
    partition: Option<String>,
    datacenter: Option<String>,
    #[serde(rename = "createindex")]
    create_index: Option<u64>,
    #[serde(rename = "modifyindex")]
    pub(super) modify_index: Option<u64>,
    locality: Option<serde_json::Value>,
}

// Consul fields Conclave accepts but does not act on are kept so payloads carrying them decode.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefinitionInput {
    http: Option<String>,
    tcp: Option<String>,
    udp: Option<String>,
    grpc: Option<String>,
    #[serde(rename = "grpcusetls")]
    grpc_use_tls: Option<bool>,
    method: Option<String>,
    header: Option<BTreeMap<String, Vec<String>>>,
    body: Option<String>,
    #[serde(rename = "tlsservername")]
    tls_server_name: Option<String>,
    #[serde(rename = "tlsskipverify")]
    tls_skip_verify: Option<bool>,
    interval: Option<GoDuration>,
    timeout: Option<GoDuration>,
    ttl: Option<GoDuration>,
    #[serde(rename = "deregistercriticalserviceafter")]
    deregister_critical_service_after: Option<GoDuration>,
    #[serde(rename = "intervalduration")]
    interval_duration: Option<GoDuration>,
    #[serde(rename = "timeoutduration")]
    timeout_duration: Option<GoDuration>,
}

// Consul fields Conclave accepts but does not act on are kept so payloads carrying them decode.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HealthCheckInput {
    pub(super) node: Option<String>,
    #[serde(rename = "checkid")]
    check_id: Option<String>,
    name: Option<String>,
    status: Option<String>,
    notes: Option<String>,
    output: Option<String>,
    #[serde(rename = "serviceid")]
    service_id: Option<String>,
    #[serde(rename = "servicename")]
    service_name: Option<String>,
    #[serde(rename = "servicetags")]
    service_tags: Option<Vec<String>>,
    #[serde(rename = "type")]
    check_type: Option<String>,
    definition: Option<DefinitionInput>,
    namespace: Option<String>,
    partition: Option<String>,
    #[serde(rename = "createindex")]
    create_index: Option<u64>,
    #[serde(rename = "modifyindex")]
    pub(super) modify_index: Option<u64>,
}

// Consul fields Conclave accepts but does not act on are kept so payloads carrying them decode.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterInput {
    id: Option<String>,
    node: Option<String>,
    address: Option<String>,
    datacenter: Option<String>,
    #[serde(rename = "taggedaddresses")]
    tagged_addresses: Option<BTreeMap<String, String>>,
    #[serde(rename = "nodemeta")]
    node_meta: Option<BTreeMap<String, String>>,
    service: Option<AgentServiceInput>,
    check: Option<HealthCheckInput>,
    checks: Option<Vec<HealthCheckInput>>,
    #[serde(rename = "skipnodeupdate")]
    skip_node_update: Option<bool>,
    namespace: Option<String>,
    partition: Option<String>,
    token: Option<String>,
    locality: Option<serde_json::Value>,
}

// Consul fields Conclave accepts but does not act on are kept so payloads carrying them decode.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeregisterInput {
    node: Option<String>,
    #[serde(rename = "serviceid")]
    service_id: Option<String>,
    #[serde(rename = "checkid")]
    check_id: Option<String>,
    datacenter: Option<String>,
    namespace: Option<String>,
    partition: Option<String>,
    token: Option<String>,
}

pub(super) fn service_spec(input: AgentServiceInput) -> Result<ServiceSpec, ApiError> {
    let service = input.service.unwrap_or_default();
    if service.is_empty() {
        return Err(ApiError::bad_request("Must provide service name"));
    }
    let address = input.address.unwrap_or_default();
    if is_unspecified_address(&address) {
        return Err(ApiError::bad_request(format!("Invalid service address {address:?}")));
    }
    Ok(ServiceSpec {
        id: input.id.filter(|id| !id.is_empty()).unwrap_or_else(|| service.clone()),
        service,
        kind: input.kind.unwrap_or_default(),
        tags: input.tags.unwrap_or_default(),
        address,
        tagged_addresses: tagged_addresses(input.tagged_addresses)?,
        meta: input.meta.unwrap_or_default(),
        port: port(input.port, "port")?,
        // Consul's Go client always sends `Weights` on a catalog registration, as zeros when unset; the
        // catalog takes all-zero weights as the defaults.
        weights: weights(input.weights.filter(|w| w.passing.unwrap_or(0) != 0 || w.warning.unwrap_or(0) != 0))?,
        enable_tag_override: input.enable_tag_override.unwrap_or(false),
    })
}

pub(super) fn check_spec(input: HealthCheckInput, node: &str) -> Result<CheckSpec, ApiError> {
    if let Some(check_node) = input.node.as_deref().filter(|n| !n.is_empty()) {
        if check_node != node {
            return Err(ApiError::bad_request(format!("Check node {check_node:?} does not match node {node:?}")));
        }
    }
    let name = input.name.unwrap_or_default();
    let check_id = input.check_id.filter(|id| !id.is_empty()).unwrap_or_else(|| name.clone());
    if check_id.is_empty() {
        return Err(ApiError::bad_request("Must provide a check ID or name"));
    }
    let status = match input.status.as_deref() {
        None | Some("") => CheckStatus::Critical,
        Some(text) => CheckStatus::parse(text)
            .ok_or_else(|| ApiError::bad_request("Status for checks must 'passing', 'warning', 'critical'"))?,
    };
    let def = input.definition.unwrap_or_default();
    let millis = |d: Option<GoDuration>| d.unwrap_or_default().as_millis();
    let definition = CheckDefinition {
        http: def.http.unwrap_or_default(),
        method: def.method.unwrap_or_default(),
        header: def.header.unwrap_or_default(),
        body: def.body.unwrap_or_default(),
        tls_skip_verify: def.tls_skip_verify.unwrap_or(false),
        tls_server_name: def.tls_server_name.unwrap_or_default(),
        tcp: def.tcp.unwrap_or_default(),
        interval_ms: millis(def.interval.or(def.interval_duration)),
        timeout_ms: millis(def.timeout.or(def.timeout_duration)),
        ttl_ms: millis(def.ttl),
        deregister_critical_service_after_ms: millis(def.deregister_critical_service_after),
    };
    Ok(CheckSpec {
        check_id,
        name,
        status,
        notes: input.notes.unwrap_or_default(),
        output: input.output.unwrap_or_default(),
        service_id: input.service_id.unwrap_or_default(),
        check_type: input.check_type.unwrap_or_default(),
        definition,
    })
}

/// Decodes and validates a catalog registration.
pub fn decode_catalog_register(body: &[u8]) -> Result<RegisterRequest, ApiError> {
    let input: RegisterInput = decode_object(body, "structs.RegisterRequest")?;
    let node = input.node.unwrap_or_default();
    if node.is_empty() {
        return Err(ApiError::bad_request("Must provide node"));
    }
    let address = input.address.unwrap_or_default();
    let skip_node_update = input.skip_node_update.unwrap_or(false);
    if address.is_empty() && !skip_node_update {
        return Err(ApiError::bad_request("Must provide address"));
    }
    let service = input.service.map(service_spec).transpose()?;
    let mut checks = Vec::new();
    for check in input.check.into_iter().chain(input.checks.unwrap_or_default()) {
        checks.push(check_spec(check, &node)?);
    }
    Ok(RegisterRequest {
        node: NodeSpec {
            id: input.id.unwrap_or_default(),
            node,
            address,
            datacenter: input.datacenter.unwrap_or_default(),
            tagged_addresses: input.tagged_addresses.unwrap_or_default(),
            meta: input.node_meta.unwrap_or_default(),
        },
        skip_node_update,
        service,
        checks,
    })
}

/// Decodes and validates a catalog deregistration.
pub fn decode_catalog_deregister(body: &[u8]) -> Result<DeregisterRequest, ApiError> {
    let input: DeregisterInput = decode_object(body, "structs.DeregisterRequest")?;
    let node = input.node.unwrap_or_default();
    if node.is_empty() {
        return Err(ApiError::bad_request("Must provide node"));
    }
    Ok(DeregisterRequest {
        node,
        service_id: input.service_id.filter(|s| !s.is_empty()),
        check_id: input.check_id.filter(|c| !c.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_register_reads_node_service_and_checks() {
        let request = decode_catalog_register(
            br#"{"Datacenter":"dc1","Node":"ext","Address":"10.1.0.1","NodeMeta":{"Rack":"r1"},
                "Service":{"Service":"web","Port":8080,"Tags":["a"]},
                "Check":{"CheckID":"web-alive","Status":"passing","ServiceID":"web","Definition":{"HTTP":"http://x","Interval":"10s"}}}"#,
        )
        .unwrap();
        assert_eq!(request.node.meta["Rack"], "r1");
        let service = request.service.unwrap();
        assert_eq!((service.id.as_str(), service.port), ("web", 8080));
        assert_eq!(request.checks[0].status, CheckStatus::Passing);
        assert_eq!(request.checks[0].definition.interval_ms, 10_000);
    }

    #[test]
    fn catalog_register_requires_node_and_address() {
        assert_eq!(decode_catalog_register(br#"{"Address":"1.2.3.4"}"#).unwrap_err().message, "Must provide node");
        assert_eq!(decode_catalog_register(br#"{"Node":"n"}"#).unwrap_err().message, "Must provide address");
        assert_eq!(
            decode_catalog_register(br#"{"Node":"n","Address":"a","Service":{"Port":1}}"#).unwrap_err().message,
            "Must provide service name"
        );
    }

    #[test]
    fn catalog_deregister_takes_node_service_or_check() {
        let request = decode_catalog_deregister(br#"{"Node":"n","ServiceID":"s"}"#).unwrap();
        assert_eq!(request.service_id.as_deref(), Some("s"));
        assert_eq!(decode_catalog_deregister(br#"{}"#).unwrap_err().message, "Must provide node");
        assert!(decode_catalog_deregister(br#"{"Node":"n","x":1}"#)
            .unwrap_err()
            .message
            .contains("unknown field \"x\""));
    }
}
