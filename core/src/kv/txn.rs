//! Transactions: Consul's `/v1/txn` operations. A transaction is one Raft entry; its operations run in
//! order against the state as the previous ones left it, and either all apply or none does (the
//! state's apply undoes a failed transaction). Read-only transactions need no Raft entry.

use serde::{Deserialize, Serialize};

use super::store::KvEntry;
use crate::catalog::{CheckSpec, HealthCheck, Node, NodeSpec, ServiceInstance, ServiceSpec};

/// Most operations in one transaction (Consul's `maxTxnOps` before 1.14).
pub const TXN_OPS_MAX: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvVerb {
    Set,
    Cas,
    Lock,
    Unlock,
    Get,
    GetOrEmpty,
    GetTree,
    CheckIndex,
    CheckSession,
    CheckNotExists,
    Delete,
    DeleteTree,
    DeleteCas,
}

impl KvVerb {
    pub fn parse(verb: &str) -> Option<KvVerb> {
        Some(match verb {
            "set" => KvVerb::Set,
            "cas" => KvVerb::Cas,
            "lock" => KvVerb::Lock,
            "unlock" => KvVerb::Unlock,
            "get" => KvVerb::Get,
            "get-or-empty" => KvVerb::GetOrEmpty,
            "get-tree" => KvVerb::GetTree,
            "check-index" => KvVerb::CheckIndex,
            "check-session" => KvVerb::CheckSession,
            "check-not-exists" => KvVerb::CheckNotExists,
            "delete" => KvVerb::Delete,
            "delete-tree" => KvVerb::DeleteTree,
            "delete-cas" => KvVerb::DeleteCas,
            _ => return None,
        })
    }

    pub fn is_read(self) -> bool {
        matches!(
            self,
            KvVerb::Get
                | KvVerb::GetOrEmpty
                | KvVerb::GetTree
                | KvVerb::CheckIndex
                | KvVerb::CheckSession
                | KvVerb::CheckNotExists
        )
    }
}

/// The verbs of node, service and check operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogVerb {
    Get,
    Set,
    Cas,
    Delete,
    DeleteCas,
}

impl CatalogVerb {
    pub fn parse(verb: &str) -> Option<CatalogVerb> {
        Some(match verb {
            "get" => CatalogVerb::Get,
            "set" => CatalogVerb::Set,
            "cas" => CatalogVerb::Cas,
            "delete" => CatalogVerb::Delete,
            "delete-cas" => CatalogVerb::DeleteCas,
            _ => return None,
        })
    }
}

/// One operation; `index` is the modify index a `cas`/`check-index`/`delete-cas` compares with.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    Kv { verb: KvVerb, key: String, value: Vec<u8>, flags: u64, index: u64, session: String },
    Node { verb: CatalogVerb, node: NodeSpec, index: u64 },
    Service { verb: CatalogVerb, node: String, service: ServiceSpec, index: u64 },
    Check { verb: CatalogVerb, node: String, check: CheckSpec, index: u64 },
}

impl TxnOp {
    pub fn is_read(&self) -> bool {
        match self {
            TxnOp::Kv { verb, .. } => verb.is_read(),
            TxnOp::Node { verb, .. } | TxnOp::Service { verb, .. } | TxnOp::Check { verb, .. } => {
                *verb == CatalogVerb::Get
            }
        }
    }
}

/// What one operation answered (deletes and existence checks answer nothing).
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnResult {
    /// A KV entry; its value is left empty for writes, as Consul does.
    Kv(KvEntry),
    Node(Node),
    Service(ServiceInstance),
    Check(HealthCheck),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnError {
    pub op_index: usize,
    pub what: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOutcome {
    Committed(Vec<TxnResult>),
    RolledBack(Vec<TxnError>),
}
