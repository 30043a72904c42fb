//! The catalog's modify indexes for blocking queries: one per table, per service name and per node name.
//! A blocking query on one service compares its service's index with the client's index, so a change to
//! another service never wakes it. Removed names keep their last index (a tombstone) so a query can see
//! the removal.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indexes {
    /// The nodes table (`/v1/catalog/nodes`).
    pub nodes: u64,
    /// The services table (`/v1/catalog/services`).
    pub services: u64,
    /// The checks table.
    pub checks: u64,
    /// Everything about one service name: its instances, their checks, and the nodes they run on.
    pub by_service: BTreeMap<String, u64>,
    /// Everything about one node: the node, its services and its checks.
    pub by_node: BTreeMap<String, u64>,
}

impl Indexes {
    pub fn of_service(&self, name: &str) -> u64 {
        self.by_service.get(name).copied().unwrap_or(0)
    }

    pub fn of_node(&self, name: &str) -> u64 {
        self.by_node.get(name).copied().unwrap_or(0)
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
