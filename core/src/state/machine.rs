//! The `State` value: its tables, its log index and its replicated clock, with the accessors a driver
//! reads them through. Its serde form is the snapshot: each table serializes its own part, in field order.

use serde::{Deserialize, Serialize};

use super::restore::RestoreStaging;
use super::watch::WatchKey;
use crate::acl::AclTable;
use crate::autopilot::AutopilotTable;
use crate::ca::CaTable;
use crate::catalog::CatalogTable;
use crate::kv::{KvStore, Sessions};

/// The replicated state: one log, one index sequence, every table. `BTreeMap`s only inside the tables:
/// iteration order is part of the snapshot bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub(super) catalog: CatalogTable,
    pub(super) kv: KvStore,
    pub(super) sessions: Sessions,
    pub(super) acl: AclTable,
    pub(super) ca: CaTable,
    /// The autopilot configuration.
    pub(super) autopilot: AutopilotTable,
    /// Index of the last applied command (0 before the first).
    pub(super) last_index: u64,
    /// The replicated clock: the latest proposal time (ms) applied, never going back. Lock delays are
    /// measured on it, so every server decides the same.
    pub(super) clock_ms: u64,
    /// Index of the last snapshot restore (0 if none), the floor of every blocking-query index.
    pub(super) restored_index: u64,
    /// A restore whose chunks are arriving (`restore.rs`).
    pub(super) restore_staging: Option<RestoreStaging>,
}

impl State {
    pub fn new() -> State {
        State::default()
    }

    /// Index of the last applied command (0 before the first).
    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    /// The replicated clock (ms): the latest proposal time applied.
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    /// The catalog table.
    pub fn catalog(&self) -> &CatalogTable {
        &self.catalog
    }

    /// The KV store.
    pub fn kv(&self) -> &KvStore {
        &self.kv
    }

    /// The sessions table.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The cluster CA table (auto-encrypt).
    pub fn ca(&self) -> &CaTable {
        &self.ca
    }

    /// The autopilot configuration table.
    pub fn autopilot(&self) -> &AutopilotTable {
        &self.autopilot
    }

    /// The ACL table.
    pub fn acl(&self) -> &AclTable {
        &self.acl
    }

    /// The modify index a blocking query on `key` compares with the client's index.
    pub fn index_of(&self, key: &WatchKey) -> u64 {
        let catalog = self.catalog.indexes();
        let index = match key {
            WatchKey::Nodes => catalog.nodes,
            WatchKey::Services => catalog.services,
            WatchKey::Checks => catalog.checks,
            WatchKey::Service(name) => catalog.of_service(name),
            WatchKey::Node(name) => catalog.of_node(name),
            WatchKey::KvPrefix(prefix) => self.kv.prefix_index(prefix),
            WatchKey::KvKey(key) => self.kv.key_index(key),
            WatchKey::Kv => self.kv.table_index(),
            WatchKey::Sessions => self.sessions.table_index(),
            WatchKey::AclTokens => self.acl.indexes().tokens,
            WatchKey::AclPolicies => self.acl.indexes().policies,
            WatchKey::AclRoles => self.acl.indexes().roles,
            WatchKey::AclAuthMethods => self.acl.indexes().auth_methods,
            WatchKey::AclBindingRules => self.acl.indexes().binding_rules,
        };
        index.max(self.restored_index)
    }
}
