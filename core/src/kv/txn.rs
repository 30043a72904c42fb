//! Transactions: Consul's `/v1/txn` operations. A transaction is one Raft entry; its operations run in
//! order against the state as the previous ones left it, and either all apply or none does (the
//! state's apply undoes a failed transaction). Read-only transactions need no Raft entry.

use serde::{Deserialize, Serialize};

use super::store::KvEntry;
pub use crate::catalog::CatalogVerb;
use crate::catalog::{
    CatalogEntry, CatalogTxnOp, CheckSpec, HealthCheck, Node, NodeSpec, ServiceInstance, ServiceSpec,
};

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

/// One operation; `index` is the modify index a `cas`/`check-index`/`delete-cas` compares with.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    Kv {
        verb: KvVerb,
        key: String,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        flags: u64,
        index: u64,
        session: String,
    },
    Node {
        verb: CatalogVerb,
        node: NodeSpec,
        index: u64,
    },
    Service {
        verb: CatalogVerb,
        node: String,
        service: ServiceSpec,
        index: u64,
    },
    Check {
        verb: CatalogVerb,
        node: String,
        check: CheckSpec,
        index: u64,
    },
}

impl TxnOp {
    /// The operation as the catalog table takes it; None for a KV operation.
    pub fn as_catalog(&self) -> Option<CatalogTxnOp<'_>> {
        Some(match self {
            TxnOp::Kv { .. } => return None,
            TxnOp::Node { verb, node, index } => CatalogTxnOp::Node { verb: *verb, node, index: *index },
            TxnOp::Service { verb, node, service, index } => {
                CatalogTxnOp::Service { verb: *verb, node, service, index: *index }
            }
            TxnOp::Check { verb, node, check, index } => {
                CatalogTxnOp::Check { verb: *verb, node, check, index: *index }
            }
        })
    }

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

impl From<CatalogEntry> for TxnResult {
    fn from(entry: CatalogEntry) -> TxnResult {
        match entry {
            CatalogEntry::Node(node) => TxnResult::Node(node),
            CatalogEntry::Service(instance) => TxnResult::Service(instance),
            CatalogEntry::Check(check) => TxnResult::Check(check),
        }
    }
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
