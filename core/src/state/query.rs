//! Reads of the state under the names the drivers use: the catalog table's views, delegated, and the
//! invariants that span tables.

use std::collections::BTreeMap;

use super::machine::State;
use crate::catalog::{CheckStatus, HealthCheck, Node, ServiceHealth, ServiceInstance};

impl State {
    /// Every node, by name.
    pub fn nodes(&self) -> Vec<&Node> {
        self.catalog.nodes()
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.catalog.node(name)
    }

    /// Service name → the sorted union of its instances' tags.
    pub fn services(&self) -> BTreeMap<String, Vec<String>> {
        self.catalog.services()
    }

    /// Instances of a service with their nodes, ordered by (node, ID).
    pub fn service_instances(&self, name: &str) -> Vec<(&Node, &ServiceInstance)> {
        self.catalog.service_instances(name)
    }

    pub fn instance(&self, node: &str, service_id: &str) -> Option<&ServiceInstance> {
        self.catalog.instance(node, service_id)
    }

    /// A node's instances, by ID.
    pub fn node_services(&self, node: &str) -> Vec<&ServiceInstance> {
        self.catalog.node_services(node)
    }

    pub fn check(&self, node: &str, check_id: &str) -> Option<&HealthCheck> {
        self.catalog.check(node, check_id)
    }

    /// A node's checks, by check ID.
    pub fn node_checks(&self, node: &str) -> Vec<&HealthCheck> {
        self.catalog.node_checks(node)
    }

    pub fn service_health(&self, name: &str) -> Vec<ServiceHealth<'_>> {
        self.catalog.service_health(name)
    }

    /// Checks bound to instances of the service `name`, by (node, check ID).
    pub fn service_checks(&self, name: &str) -> Vec<&HealthCheck> {
        self.catalog.service_checks(name)
    }

    /// Checks in `state` (`None`: every check), by (node, check ID).
    pub fn checks_in_state(&self, state: Option<CheckStatus>) -> Vec<&HealthCheck> {
        self.catalog.checks_in_state(state)
    }

    /// Checks that invariants of the state hold, each table's and those across tables; tests and fuzzers
    /// call it after every step.
    pub fn assert_invariants(&self) {
        self.catalog.assert_invariants(self.last_index);
        for session in self.sessions.all() {
            assert!(self.catalog.node(&session.node).is_some(), "session {} on missing node", session.id);
        }
        for entry in self.kv.list("") {
            assert!(entry.modify_index <= self.last_index && entry.create_index <= entry.modify_index);
            assert!(
                entry.session.is_empty() || self.sessions.get(&entry.session).is_some(),
                "key {} held by dead session {}",
                entry.key,
                entry.session
            );
        }
    }
}
