//! The catalog's data model: nodes, service instances and health checks as the Raft state machine stores
//! them. These types are encoded with bincode (see `codec`), so they use no serde attribute that changes the
//! shape of the encoding (`skip_serializing_if`, `flatten`, untagged enums): the JSON shapes Consul clients
//! see are built from them in `api::encode`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A node in the catalog (Consul's `structs.Node`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Consul's node ID (a UUID string), empty when the registrant gave none.
    pub id: String,
    /// The node name, unique in the datacenter; the key of the nodes table.
    pub node: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// An address and port of a service (`TaggedAddresses` values of a service).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceAddress {
    pub address: String,
    pub port: u16,
}

/// DNS SRV weights of a service instance (Consul's default is passing 1, warning 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    pub passing: i32,
    pub warning: i32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights { passing: 1, warning: 1 }
    }
}

/// One instance of a service on one node (Consul's `structs.ServiceNode` without the node half).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInstance {
    /// Name of the node the instance belongs to.
    pub node: String,
    /// Instance ID, unique per node; defaults to `service` when the registration has none.
    pub id: String,
    /// The service name (Consul's `Service` / `ServiceName`).
    pub service: String,
    pub kind: String,
    pub tags: Vec<String>,
    /// Empty means "use the node's address".
    pub address: String,
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    pub meta: BTreeMap<String, String>,
    pub port: u16,
    pub weights: Weights,
    pub enable_tag_override: bool,
    pub create_index: u64,
    pub modify_index: u64,
}

impl ServiceInstance {
    /// The instance a registration of `spec` on `node` describes, with the given indexes.
    pub fn from_spec(node: &str, spec: &super::ServiceSpec, create_index: u64, modify_index: u64) -> ServiceInstance {
        ServiceInstance {
            node: node.to_string(),
            id: super::service_id_of(spec),
            service: spec.service.clone(),
            kind: spec.kind.clone(),
            tags: spec.tags.clone(),
            address: spec.address.clone(),
            tagged_addresses: spec.tagged_addresses.clone(),
            meta: spec.meta.clone(),
            port: spec.port,
            weights: spec.weights,
            enable_tag_override: spec.enable_tag_override,
            create_index,
            modify_index,
        }
    }
}

/// Status of a health check, as Consul spells it on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CheckStatus {
    Passing,
    Warning,
    /// Consul's initial status of a check that has not run yet.
    #[default]
    Critical,
}

impl CheckStatus {
    /// Consul's lower-case name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Passing => "passing",
            CheckStatus::Warning => "warning",
            CheckStatus::Critical => "critical",
        }
    }

    /// Parses Consul's status names; anything else is `None`.
    pub fn parse(text: &str) -> Option<CheckStatus> {
        match text {
            "passing" => Some(CheckStatus::Passing),
            "warning" => Some(CheckStatus::Warning),
            "critical" => Some(CheckStatus::Critical),
            _ => None,
        }
    }
}

/// How a check is run (Consul's `HealthCheckDefinition`); stored, executed by the agent's check runner.
/// Durations are whole milliseconds; 0 means unset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckDefinition {
    pub http: String,
    pub method: String,
    pub header: BTreeMap<String, Vec<String>>,
    pub body: String,
    pub tls_skip_verify: bool,
    /// The name an HTTPS check verifies the target's certificate against (SNI too); empty: the URL's host.
    pub tls_server_name: String,
    pub tcp: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub ttl_ms: u64,
    pub deregister_critical_service_after_ms: u64,
}

/// A health check on a node, optionally bound to one of the node's service instances.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub node: String,
    /// Unique per node; the key of the checks table together with `node`.
    pub check_id: String,
    pub name: String,
    pub status: CheckStatus,
    pub notes: String,
    pub output: String,
    /// Empty for node-level checks (such as `serfHealth`).
    pub service_id: String,
    /// Filled in by the state machine from the service instance.
    pub service_name: String,
    /// Filled in by the state machine from the service instance.
    pub service_tags: Vec<String>,
    /// `http`, `tcp`, `ttl`, ... or empty (Consul's `Type`).
    pub check_type: String,
    pub definition: CheckDefinition,
    pub create_index: u64,
    pub modify_index: u64,
}

impl HealthCheck {
    /// The check a registration of `spec` on `node` describes, carrying its service's name and tags (empty
    /// for a node-level check), with both indexes at `index`.
    pub fn from_spec(
        node: &str,
        spec: &super::CheckSpec,
        service: Option<(&str, &[String])>,
        index: u64,
    ) -> HealthCheck {
        HealthCheck {
            node: node.to_string(),
            check_id: spec.check_id.clone(),
            name: spec.name.clone(),
            status: spec.status,
            notes: spec.notes.clone(),
            output: spec.output.clone(),
            service_id: spec.service_id.clone(),
            service_name: service.map(|(name, _)| name.to_string()).unwrap_or_default(),
            service_tags: service.map(|(_, tags)| tags.to_vec()).unwrap_or_default(),
            check_type: spec.check_type.clone(),
            definition: spec.definition.clone(),
            create_index: index,
            modify_index: index,
        }
    }
}
