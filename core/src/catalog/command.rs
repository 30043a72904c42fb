//! Commands applied to the catalog through Raft, and what applying one answers.
//!
//! A command carries no index: the index is the Raft log index of the entry that holds it, passed to
//! `Catalog::apply`. Commands are validated by the API layer before they are proposed; `apply` still checks
//! what depends on the state (for example that a check's service exists) and answers `Rejected`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::types::{CheckDefinition, CheckStatus, ServiceAddress, Weights};

/// A change to the catalog, the payload of one Raft log entry. Registrations are large next to `Noop`,
/// but a command is built once per request and moved, never stored in bulk.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Consul's catalog register: upsert a node, optionally one service instance and checks on it.
    Register(RegisterRequest),
    /// Consul's catalog deregister: a whole node, one service instance or one check.
    Deregister(DeregisterRequest),
    /// An entry that changes nothing (used by a new leader and by tests); it still advances the index.
    Noop,
    /// A change to the KV store, which shares the catalog's Raft log and indexes.
    Kv(crate::kv::KvCommand),
    /// Create a session (its ID chosen by the proposer).
    SessionCreate(crate::kv::Session),
    /// Invalidate a session: destroyed by its owner or expired by the leader's TTL timer.
    SessionDestroy { id: String },
    /// A transaction: every operation applies, or none does.
    Txn(Vec<crate::kv::TxnOp>),
}

/// A command with the time its leader proposed it: the replicated clock the state machine measures lock
/// delays on. It is what a Raft log entry holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub proposed_at_ms: u64,
    pub command: Command,
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

/// What applying a command answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The command was applied (a deregistration of something absent is applied as a no-op, as in Consul).
    Applied,
    /// The command was refused by the state (nothing changed); the text is Consul's error message.
    Rejected(String),
    /// A conditional KV write: whether its condition held (and it was applied).
    Kv(bool),
    /// What a transaction did.
    Txn(crate::kv::TxnOutcome),
}
