//! The agent's service definition (`PUT /v1/agent/service/register`, config files): decoding,
//! validation, and the catalog registration it becomes.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::check_input::{CheckInput, ServiceCheck};
use super::keys::decode_object;
use super::ApiError;
use crate::catalog::{NodeSpec, RegisterRequest, ServiceAddress, ServiceSpec, Weights};

/// Largest service definition body decoded.
pub const SERVICE_DEFINITION_BYTES_MAX: usize = 512 * 1024;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AddressInput {
    pub address: Option<String>,
    pub port: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WeightsInput {
    pub passing: Option<i64>,
    pub warning: Option<i64>,
}

// Consul fields Conclave accepts but does not act on are kept so payloads carrying them decode.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceDefinitionInput {
    kind: Option<String>,
    id: Option<String>,
    name: Option<String>,
    tags: Option<Vec<String>>,
    address: Option<String>,
    #[serde(rename = "taggedaddresses")]
    tagged_addresses: Option<BTreeMap<String, AddressInput>>,
    meta: Option<BTreeMap<String, String>>,
    port: Option<i64>,
    #[serde(rename = "socketpath")]
    socket_path: Option<String>,
    check: Option<CheckInput>,
    checks: Option<Vec<CheckInput>>,
    weights: Option<WeightsInput>,
    token: Option<String>,
    #[serde(rename = "enabletagoverride")]
    enable_tag_override: Option<bool>,
    proxy: Option<serde_json::Value>,
    connect: Option<serde_json::Value>,
    namespace: Option<String>,
    partition: Option<String>,
    locality: Option<serde_json::Value>,
}

/// A validated service definition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceDefinition {
    pub kind: String,
    /// Defaults to `name`.
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    pub address: String,
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    pub meta: BTreeMap<String, String>,
    pub port: u16,
    pub weights: Weights,
    pub enable_tag_override: bool,
    pub checks: Vec<ServiceCheck>,
}

pub(super) fn port(value: Option<i64>, field: &str) -> Result<u16, ApiError> {
    match value {
        None => Ok(0),
        Some(p) if (0..=65535).contains(&p) => Ok(p as u16),
        Some(p) => Err(ApiError::bad_request(format!("Invalid {field} {p}: must be between 0 and 65535"))),
    }
}

pub(super) fn is_unspecified_address(address: &str) -> bool {
    matches!(address, "0.0.0.0" | "::" | "[::]")
}

pub(super) fn tagged_addresses(
    input: Option<BTreeMap<String, AddressInput>>,
) -> Result<BTreeMap<String, ServiceAddress>, ApiError> {
    let mut out = BTreeMap::new();
    for (tag, value) in input.unwrap_or_default() {
        out.insert(
            tag,
            ServiceAddress {
                address: value.address.unwrap_or_default(),
                port: port(value.port, "tagged address port")?,
            },
        );
    }
    Ok(out)
}

pub(super) fn weights(input: Option<WeightsInput>) -> Result<Weights, ApiError> {
    let Some(input) = input else {
        return Ok(Weights::default());
    };
    let passing = input.passing.unwrap_or(1);
    let warning = input.warning.unwrap_or(1);
    if passing < 1 {
        return Err(ApiError::bad_request("Passing must be greater than 0"));
    }
    if warning < 0 {
        return Err(ApiError::bad_request("Warning must be greater or equal than 0"));
    }
    let clamp = |v: i64| v.min(i64::from(i32::MAX)) as i32;
    Ok(Weights { passing: clamp(passing), warning: clamp(warning) })
}

/// Decodes and validates a service definition (Consul's `ServiceDefinition` rules).
pub fn decode_service_definition(body: &[u8]) -> Result<ServiceDefinition, ApiError> {
    if body.len() > SERVICE_DEFINITION_BYTES_MAX {
        return Err(ApiError::too_large(format!(
            "Request body({} bytes) too large, max size: {SERVICE_DEFINITION_BYTES_MAX} bytes",
            body.len()
        )));
    }
    let input: ServiceDefinitionInput = decode_object(body, "structs.ServiceDefinition")?;
    let name = input.name.unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::bad_request("Missing service name"));
    }
    let address = input.address.unwrap_or_default();
    if is_unspecified_address(&address) {
        return Err(ApiError::bad_request(format!("Invalid service address {address:?}")));
    }
    let id = input.id.filter(|id| !id.is_empty()).unwrap_or_else(|| name.clone());
    let mut checks = Vec::new();
    for check in input.check.into_iter().chain(input.checks.unwrap_or_default()) {
        checks.push(check.into_check()?);
    }
    Ok(ServiceDefinition {
        kind: input.kind.unwrap_or_default(),
        id,
        name,
        tags: input.tags.unwrap_or_default(),
        address,
        tagged_addresses: tagged_addresses(input.tagged_addresses)?,
        meta: input.meta.unwrap_or_default(),
        port: port(input.port, "port")?,
        weights: weights(input.weights)?,
        enable_tag_override: input.enable_tag_override.unwrap_or(false),
        checks,
    })
}

impl ServiceDefinition {
    /// The service's checks as the agent keeps them: catalog entries (as `to_register_request` makes
    /// them) with how each is run.
    pub fn to_local_checks(&self) -> Vec<crate::agent::LocalCheck> {
        let count = self.checks.len();
        self.checks
            .iter()
            .enumerate()
            .map(|(i, c)| crate::agent::LocalCheck {
                spec: c.to_check_spec(&self.id, &self.name, i, count),
                run: c.run(),
            })
            .collect()
    }

    /// The catalog registration of this service, with its checks, on `node`.
    pub fn to_register_request(&self, node: &NodeSpec) -> RegisterRequest {
        let count = self.checks.len();
        RegisterRequest {
            node: node.clone(),
            skip_node_update: false,
            service: Some(ServiceSpec {
                id: self.id.clone(),
                service: self.name.clone(),
                kind: self.kind.clone(),
                tags: self.tags.clone(),
                address: self.address.clone(),
                tagged_addresses: self.tagged_addresses.clone(),
                meta: self.meta.clone(),
                port: self.port,
                weights: self.weights,
                enable_tag_override: self.enable_tag_override,
            }),
            checks: self
                .checks
                .iter()
                .enumerate()
                .map(|(i, c)| c.to_check_spec(&self.id, &self.name, i, count))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::CheckStatus;

    const SEED_PAYLOAD: &str = r#"{"ID":"node-exporter-10.0.0.5","Name":"node-exporter","Tags":["prometheus"],"Address":"10.0.0.5",
 "Meta":{"team":"infra"},"Port":9100,"checks":[{"http":"http://10.0.0.5:9100/metrics","interval":"15s"}]}"#;

    fn message(body: &str) -> String {
        decode_service_definition(body.as_bytes()).unwrap_err().message
    }

    #[test]
    fn seed_payload_decodes_with_lowercase_check_keys() {
        let def = decode_service_definition(SEED_PAYLOAD.as_bytes()).unwrap();
        assert_eq!(def.id, "node-exporter-10.0.0.5");
        assert_eq!(def.port, 9100);
        assert_eq!(def.meta["team"], "infra");
        assert_eq!(def.checks[0].definition.http, "http://10.0.0.5:9100/metrics");
        assert_eq!(def.checks[0].definition.interval_ms, 15_000);
        assert_eq!(def.checks[0].check_type, "http");
    }

    #[test]
    fn lowercase_keys_decode_like_pascal_case() {
        let a = decode_service_definition(br#"{"name":"web","port":80,"enable_tag_override":true}"#).unwrap();
        let b = decode_service_definition(br#"{"Name":"web","Port":80,"EnableTagOverride":true}"#).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn meta_keys_keep_their_case() {
        let def = decode_service_definition(br#"{"Name":"web","Meta":{"Team_X":"a"}}"#).unwrap();
        assert_eq!(def.meta.keys().collect::<Vec<_>>(), vec!["Team_X"]);
    }

    #[test]
    fn unknown_field_is_rejected_with_go_message() {
        assert_eq!(message(r#"{"Name":"web","Bogus":1}"#), "Request decode failed: json: unknown field \"Bogus\"");
    }

    #[test]
    fn bad_input_gets_consul_messages() {
        assert_eq!(message(r#"{"Port":80}"#), "Missing service name");
        assert_eq!(message(r#"{"Name":"web","Address":"0.0.0.0"}"#), "Invalid service address \"0.0.0.0\"");
        assert!(message(r#"{"Name":"web","Port":70000}"#).contains("Invalid port 70000"));
        assert!(message(r#"{"Name":"web","Port":-1}"#).contains("Invalid port -1"));
        assert!(message(r#"{"Name":"web","Port":"80"}"#).starts_with(
            "Request decode failed: json: cannot unmarshal into Go struct field structs.ServiceDefinition.Port"
        ));
        assert!(message(r#"{"Name":"web""#).starts_with("Request decode failed: "));
        assert!(message(r#"[1]"#).contains("cannot unmarshal array"));
        assert_eq!(
            message(r#"{"Name":"web","Check":{"TTL":"10s","Status":"bogus"}}"#),
            "Status for checks must 'passing', 'warning', 'critical'"
        );
        assert!(message(r#"{"Name":"web","Check":{"HTTP":"http://x"}}"#).contains("Interval must be > 0"));
        assert!(message(r#"{"Name":"web","Check":{"HTTP":"http://x","Interval":"15"}}"#).contains("invalid duration"));
        assert!(message(r#"{"Name":"web","Weights":{"Passing":0}}"#).contains("Passing must be greater than 0"));
    }

    #[test]
    fn check_ids_are_generated_by_position() {
        let def = decode_service_definition(
            br#"{"Name":"web","Check":{"TTL":"10s"},"Checks":[{"TCP":"localhost:1","Interval":"5s","Status":"passing"}]}"#,
        )
        .unwrap();
        let node = NodeSpec { node: "n1".into(), address: "10.0.0.1".into(), ..NodeSpec::default() };
        let request = def.to_register_request(&node);
        let ids: Vec<_> = request.checks.iter().map(|c| c.check_id.as_str()).collect();
        assert_eq!(ids, ["service:web:1", "service:web:2"]);
        assert_eq!(request.checks[0].name, "Service 'web' check");
        assert_eq!(request.checks[0].status, CheckStatus::Critical);
        assert_eq!(request.checks[1].status, CheckStatus::Passing);
        assert_eq!(request.service.unwrap().id, "web");
    }

    #[test]
    fn single_check_gets_the_plain_generated_id() {
        let def = decode_service_definition(SEED_PAYLOAD.as_bytes()).unwrap();
        let request = def.to_register_request(&NodeSpec::default());
        assert_eq!(request.checks[0].check_id, "service:node-exporter-10.0.0.5");
    }
}
