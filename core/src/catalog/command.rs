//! The catalog table's commands (Consul's register and deregister requests) and the health losses
//! applying one reports to the other tables.
//!
//! A command carries no index: the index is the Raft log index of the entry that holds it, passed to
//! `CatalogTable::apply`. Commands are validated by the API layer before they are proposed; `apply` still
//! checks what depends on the state (for example that a check's service exists) and refuses with Consul's
//! error text.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::types::{CheckDefinition, CheckStatus, ServiceAddress, Weights};

/// A change to the catalog table: one arm of `state::Command`.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogCommand {
    /// Consul's catalog register: upsert a node, optionally one service instance and checks on it.
    Register(RegisterRequest),
    /// Consul's catalog deregister: a whole node, one service instance or one check.
    Deregister(DeregisterRequest),
}

/// A catalog change that other tables depend on: Consul invalidates the sessions of a node that is
/// deregistered, and those bound to a check that is removed or goes critical. The catalog reports it;
/// `State` carries it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HealthLoss {
    /// The node was deregistered.
    Node(String),
    /// The node's check `check_id` was removed or went critical.
    Check { node: String, check_id: String },
}

/// The node half of a registration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub id: String,
    pub node: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
}

/// A service instance to register on the request's node. `id` is already defaulted to `service`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub id: String,
    pub service: String,
    pub kind: String,
    pub tags: Vec<String>,
    pub address: String,
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    pub meta: BTreeMap<String, String>,
    pub port: u16,
    pub weights: Weights,
    pub enable_tag_override: bool,
}

/// A check to register on the request's node; `service_id` empty means a node-level check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSpec {
    pub check_id: String,
    pub name: String,
    pub status: CheckStatus,
    pub notes: String,
    pub output: String,
    pub service_id: String,
    pub check_type: String,
    pub definition: CheckDefinition,
}

/// Consul's `structs.RegisterRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub node: NodeSpec,
    /// Leave an existing node's fields alone (Consul's `SkipNodeUpdate`).
    pub skip_node_update: bool,
    pub service: Option<ServiceSpec>,
    pub checks: Vec<CheckSpec>,
}

/// Consul's `structs.DeregisterRequest`: with neither id set the whole node goes, with its services and
/// checks; `service_id` removes that instance and its checks; `check_id` removes one check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeregisterRequest {
    pub node: String,
    pub service_id: Option<String>,
    pub check_id: Option<String>,
}

/// A registration's service ID, which defaults to the service name (Consul's rule).
pub fn service_id_of(spec: &ServiceSpec) -> String {
    if spec.id.is_empty() {
        spec.service.clone()
    } else {
        spec.id.clone()
    }
}
