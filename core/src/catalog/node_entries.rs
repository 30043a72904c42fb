//! What the catalog holds under one node, as anti-entropy compares it with an agent's local state: read
//! in place from the state on a server (`OfNode`), or copied out (`NodeEntries`) for a client agent,
//! which holds no catalog and asks a server for its node's entries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::table::CatalogTable;
use super::types::{HealthCheck, Node, ServiceInstance};

/// The catalog's entries under one node.
pub trait NodeCatalog {
    /// The node's registration, None when the catalog does not hold the node.
    fn node(&self) -> Option<&Node>;
    fn instance(&self, service_id: &str) -> Option<&ServiceInstance>;
    fn check(&self, check_id: &str) -> Option<&HealthCheck>;
    /// The node's instances, by ID.
    fn instances(&self) -> Vec<&ServiceInstance>;
    /// The node's checks, by check ID.
    fn checks(&self) -> Vec<&HealthCheck>;
}

/// A copy of one node's entries (what a server answers a client agent's anti-entropy).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntries {
    pub node: Option<Node>,
    /// By service ID.
    pub services: BTreeMap<String, ServiceInstance>,
    /// By check ID.
    pub checks: BTreeMap<String, HealthCheck>,
}

impl NodeCatalog for NodeEntries {
    fn node(&self) -> Option<&Node> {
        self.node.as_ref()
    }
    fn instance(&self, service_id: &str) -> Option<&ServiceInstance> {
        self.services.get(service_id)
    }
    fn check(&self, check_id: &str) -> Option<&HealthCheck> {
        self.checks.get(check_id)
    }
    fn instances(&self) -> Vec<&ServiceInstance> {
        self.services.values().collect()
    }
    fn checks(&self) -> Vec<&HealthCheck> {
        self.checks.values().collect()
    }
}

/// One node's entries read in place from a catalog table.
pub struct OfNode<'a> {
    pub table: &'a CatalogTable,
    pub node: &'a str,
}

impl NodeCatalog for OfNode<'_> {
    fn node(&self) -> Option<&Node> {
        self.table.node(self.node)
    }
    fn instance(&self, service_id: &str) -> Option<&ServiceInstance> {
        self.table.instance(self.node, service_id)
    }
    fn check(&self, check_id: &str) -> Option<&HealthCheck> {
        self.table.check(self.node, check_id)
    }
    fn instances(&self) -> Vec<&ServiceInstance> {
        self.table.node_services(self.node)
    }
    fn checks(&self) -> Vec<&HealthCheck> {
        self.table.node_checks(self.node)
    }
}

impl CatalogTable {
    /// One node's entries, read in place.
    pub fn of_node<'a>(&'a self, node: &'a str) -> OfNode<'a> {
        OfNode { table: self, node }
    }

    /// A copy of one node's entries (empty when the catalog does not hold the node).
    pub fn node_entries(&self, node: &str) -> NodeEntries {
        let view = self.of_node(node);
        NodeEntries {
            node: view.node().cloned(),
            services: view.instances().into_iter().map(|s| (s.id.clone(), s.clone())).collect(),
            checks: view.checks().into_iter().map(|c| (c.check_id.clone(), c.clone())).collect(),
        }
    }
}
