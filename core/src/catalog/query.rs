//! Read-only views of the catalog table, in the orders Consul answers them.

use std::collections::BTreeMap;

use super::table::CatalogTable;
use super::types::{CheckStatus, HealthCheck, Node, ServiceInstance};

/// One instance of a service with its node and every check that decides its health: the node's own
/// checks (such as `serfHealth`) and the instance's checks, ordered by check ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceHealth<'a> {
    pub node: &'a Node,
    pub service: &'a ServiceInstance,
    pub checks: Vec<&'a HealthCheck>,
}

impl CatalogTable {
    /// Every node, by name.
    pub fn nodes(&self) -> Vec<&Node> {
        self.nodes.values().collect()
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// Service name → the sorted union of its instances' tags.
    pub fn services(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for instance in self.services.values() {
            out.entry(instance.service.clone()).or_default().extend(instance.tags.iter().cloned());
        }
        for tags in out.values_mut() {
            tags.sort();
            tags.dedup();
        }
        out
    }

    /// Instances of a service with their nodes, ordered by (node, ID).
    pub fn service_instances(&self, name: &str) -> Vec<(&Node, &ServiceInstance)> {
        self.services
            .values()
            .filter(|s| s.service == name)
            .map(|s| (self.nodes.get(&s.node).expect("every service's node exists"), s))
            .collect()
    }

    pub fn instance(&self, node: &str, service_id: &str) -> Option<&ServiceInstance> {
        self.services.get(&(node.to_string(), service_id.to_string()))
    }

    /// A node's instances, by ID.
    pub fn node_services(&self, node: &str) -> Vec<&ServiceInstance> {
        let from = (node.to_string(), String::new());
        self.services.range(from..).take_while(|((n, _), _)| n == node).map(|(_, s)| s).collect()
    }

    pub fn check(&self, node: &str, check_id: &str) -> Option<&HealthCheck> {
        self.checks.get(&(node.to_string(), check_id.to_string()))
    }

    /// A node's checks, by check ID.
    pub fn node_checks(&self, node: &str) -> Vec<&HealthCheck> {
        let from = (node.to_string(), String::new());
        self.checks.range(from..).take_while(|((n, _), _)| n == node).map(|(_, c)| c).collect()
    }

    pub fn service_health(&self, name: &str) -> Vec<ServiceHealth<'_>> {
        self.service_instances(name)
            .into_iter()
            .map(|(node, service)| {
                let checks = self
                    .node_checks(&node.node)
                    .into_iter()
                    .filter(|c| c.service_id.is_empty() || c.service_id == service.id)
                    .collect();
                ServiceHealth { node, service, checks }
            })
            .collect()
    }

    /// Checks bound to instances of the service `name`, by (node, check ID).
    pub fn service_checks(&self, name: &str) -> Vec<&HealthCheck> {
        self.checks.values().filter(|c| !c.service_id.is_empty() && c.service_name == name).collect()
    }

    /// Checks in `state` (`None`: every check), by (node, check ID).
    pub fn checks_in_state(&self, state: Option<CheckStatus>) -> Vec<&HealthCheck> {
        self.checks.values().filter(|c| state.is_none_or(|s| c.status == s)).collect()
    }

    /// Checks that the table's invariants hold, every index at most `last_index`; tests and fuzzers call
    /// it (through `State::assert_invariants`) after every step.
    pub fn assert_invariants(&self, last_index: u64) {
        for ((node, id), service) in &self.services {
            assert!(self.nodes.contains_key(node), "service {id} on missing node {node}");
            assert_eq!((&service.node, &service.id), (node, id), "service key matches its fields");
            assert!(service.modify_index <= last_index && service.create_index <= service.modify_index);
        }
        for ((node, id), check) in &self.checks {
            assert!(self.nodes.contains_key(node), "check {id} on missing node {node}");
            if !check.service_id.is_empty() {
                assert!(
                    self.services.contains_key(&(node.clone(), check.service_id.clone())),
                    "check {id} of missing service"
                );
            }
            assert!(check.modify_index <= last_index);
        }
        for node in self.nodes.values() {
            assert!(node.create_index <= node.modify_index && node.modify_index <= last_index);
        }
    }
}
