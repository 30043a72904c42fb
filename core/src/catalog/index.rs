//! Modify indexes for blocking queries: one per table, per service name and per node name. A blocking
//! query on one service compares `index_of(Service(name))` with the client's index, so a change to
//! another service never wakes it. Removed names keep their last index (a tombstone) so a query can see
//! the removal.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a blocking query depends on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WatchKey {
    /// The nodes table (`/v1/catalog/nodes`).
    Nodes,
    /// The services table (`/v1/catalog/services`).
    Services,
    /// Everything about one service name: its instances, their checks, and the nodes they run on.
    Service(String),
    /// Everything about one node: the node, its services and its checks.
    Node(String),
    /// The checks table.
    Checks,
    /// Every KV entry under a prefix (a single key is a prefix of itself and its children).
    KvPrefix(String),
    /// One KV key exactly: its modify index, or the index that deleted it.
    KvKey(String),
    /// The whole KV store.
    Kv,
    /// The sessions table.
    Sessions,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indexes {
    pub nodes: u64,
    pub services: u64,
    pub checks: u64,
    pub by_service: BTreeMap<String, u64>,
    pub by_node: BTreeMap<String, u64>,
}

impl Indexes {
    pub fn get(&self, key: &WatchKey) -> u64 {
        match key {
            WatchKey::Nodes => self.nodes,
            WatchKey::Services => self.services,
            WatchKey::Checks => self.checks,
            WatchKey::Service(name) => self.by_service.get(name).copied().unwrap_or(0),
            WatchKey::Node(name) => self.by_node.get(name).copied().unwrap_or(0),
            WatchKey::KvPrefix(_) | WatchKey::KvKey(_) | WatchKey::Kv | WatchKey::Sessions => {
                unreachable!("KV and session indexes are kept by their tables")
            }
        }
    }

    pub fn touch_service(&mut self, name: &str, index: u64) {
        bump(self.by_service.entry(name.to_string()).or_default(), index);
    }

    pub fn touch_node(&mut self, name: &str, index: u64) {
        bump(self.by_node.entry(name.to_string()).or_default(), index);
    }
}

/// Moves an index forward to `index`; indexes never go back.
pub fn bump(slot: &mut u64, index: u64) {
    assert!(index >= *slot, "modify index would go back from {} to {index}", *slot);
    *slot = index;
}
