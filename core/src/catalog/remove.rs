//! The catalog table's deregister path: a node goes with its services and checks, a service with its
//! checks; each removal moves the indexes of everything whose answer it changes and reports its health
//! losses (a removed node or check ends the sessions bound to it).

use super::command::{DeregisterRequest, HealthLoss};
use super::index::bump;
use super::table::CatalogTable;

impl CatalogTable {
    /// Consul's catalog deregister. Removing something absent is a no-op, as in Consul; the result lists
    /// the health losses in the order they happened.
    pub fn deregister(&mut self, index: u64, request: &DeregisterRequest) -> Vec<HealthLoss> {
        let node = request.node.as_str();
        let mut losses = Vec::new();
        match (&request.service_id, &request.check_id) {
            (Some(service_id), _) => self.remove_service(index, node, service_id, &mut losses),
            (None, Some(check_id)) => self.remove_check(index, node, check_id, &mut losses),
            (None, None) => self.remove_node(index, node, &mut losses),
        }
        losses
    }

    fn remove_check(&mut self, index: u64, node: &str, check_id: &str, losses: &mut Vec<HealthLoss>) {
        if let Some(check) = self.checks.remove(&(node.to_string(), check_id.to_string())) {
            self.touch_for_check(index, &check);
            losses.push(HealthLoss::Check { node: node.to_string(), check_id: check_id.to_string() });
        }
    }

    fn remove_service(&mut self, index: u64, node: &str, service_id: &str, losses: &mut Vec<HealthLoss>) {
        let Some(instance) = self.services.remove(&(node.to_string(), service_id.to_string())) else {
            return;
        };
        let doomed: Vec<(String, String)> = self
            .checks
            .iter()
            .filter(|(_, c)| c.node == node && c.service_id == service_id)
            .map(|(k, _)| k.clone())
            .collect();
        if !doomed.is_empty() {
            for key in &doomed {
                self.checks.remove(key);
                losses.push(HealthLoss::Check { node: node.to_string(), check_id: key.1.clone() });
            }
            bump(&mut self.indexes.checks, index);
        }
        bump(&mut self.indexes.services, index);
        self.indexes.touch_service(&instance.service, index);
        self.indexes.touch_node(node, index);
    }

    pub(super) fn remove_node(&mut self, index: u64, node: &str, losses: &mut Vec<HealthLoss>) {
        if !self.nodes.contains_key(node) {
            return;
        }
        self.touch_node_and_its_services(node, index);
        let services: Vec<String> = self.node_services(node).into_iter().map(|s| s.id.clone()).collect();
        for service_id in services {
            self.remove_service(index, node, &service_id, losses);
        }
        let checks: Vec<String> = self.node_checks(node).into_iter().map(|c| c.check_id.clone()).collect();
        for check_id in checks {
            self.remove_check(index, node, &check_id, losses);
        }
        losses.push(HealthLoss::Node(node.to_string()));
        self.nodes.remove(node);
        bump(&mut self.indexes.nodes, index);
    }
}
