//! The catalog table: nodes, service instances and checks keyed as Consul keys them, with their watch
//! indexes, changed only by `apply` in Raft log order. Every entry carries the Raft index that created it
//! and the one that last changed it; an identical re-registration changes nothing, so it wakes no blocking
//! query. This file holds the table and its register path; `remove` its deregister path.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::command::{service_id_of, CatalogCommand, CheckSpec, HealthLoss, RegisterRequest, ServiceSpec};
use super::index::{bump, Indexes};
use super::types::{CheckStatus, HealthCheck, Node, ServiceInstance};

/// The catalog's part of the replicated state. `BTreeMap`s only: iteration order is part of the snapshot
/// bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogTable {
    pub(super) nodes: BTreeMap<String, Node>,
    /// Keyed by (node, service ID).
    pub(super) services: BTreeMap<(String, String), ServiceInstance>,
    /// Keyed by (node, check ID).
    pub(super) checks: BTreeMap<(String, String), HealthCheck>,
    pub(super) indexes: Indexes,
}

impl CatalogTable {
    pub fn new() -> CatalogTable {
        CatalogTable::default()
    }

    /// The table's watch indexes.
    pub fn indexes(&self) -> &Indexes {
        &self.indexes
    }

    /// Applies `command` as the Raft entry at `index`. `Err` carries Consul's error text and means nothing
    /// changed; `Ok` lists, in the order they happened, the health losses the other tables must act on.
    pub fn apply(&mut self, index: u64, command: &CatalogCommand) -> Result<Vec<HealthLoss>, String> {
        match command {
            CatalogCommand::Register(request) => self.register(index, request),
            CatalogCommand::Deregister(request) => Ok(self.deregister(index, request)),
        }
    }

    /// Consul's catalog register; `Err` (nothing changed) when the request is refused.
    pub fn register(&mut self, index: u64, request: &RegisterRequest) -> Result<Vec<HealthLoss>, String> {
        self.validate_register(request)?;
        let node_name = request.node.node.clone();
        self.upsert_node(index, request);
        if let Some(service) = &request.service {
            self.upsert_service(index, &node_name, service);
        }
        let mut losses = Vec::new();
        for check in &request.checks {
            self.upsert_check(index, &node_name, check, &mut losses);
        }
        Ok(losses)
    }

    /// Everything that can refuse a registration is checked before anything changes.
    fn validate_register(&self, request: &RegisterRequest) -> Result<(), String> {
        if request.node.node.is_empty() {
            return Err("Must provide node".to_string());
        }
        if request.node.address.is_empty() && !(request.skip_node_update && self.nodes.contains_key(&request.node.node))
        {
            return Err("Must provide address".to_string());
        }
        let new_service_id = request.service.as_ref().map(service_id_of);
        if let Some(service) = &request.service {
            if service.service.is_empty() {
                return Err("Must provide service name".to_string());
            }
        }
        for check in &request.checks {
            if check.check_id.is_empty() {
                return Err("Must provide check ID".to_string());
            }
            let service_id = &check.service_id;
            let known = service_id.is_empty()
                || new_service_id.as_deref() == Some(service_id.as_str())
                || self.services.contains_key(&(request.node.node.clone(), service_id.clone()));
            if !known {
                return Err(format!("Unknown service ID '{service_id}' for check ID '{}'", check.check_id));
            }
        }
        Ok(())
    }

    fn upsert_node(&mut self, index: u64, request: &RegisterRequest) {
        let spec = &request.node;
        if request.skip_node_update && self.nodes.contains_key(&spec.node) {
            return;
        }
        let existing = self.nodes.get(&spec.node);
        let mut node = Node {
            id: spec.id.clone(),
            node: spec.node.clone(),
            address: spec.address.clone(),
            datacenter: spec.datacenter.clone(),
            tagged_addresses: spec.tagged_addresses.clone(),
            meta: spec.meta.clone(),
            create_index: index,
            modify_index: index,
        };
        if let Some(existing) = existing {
            node.create_index = existing.create_index;
            node.modify_index = existing.modify_index;
            if &node == existing {
                return;
            }
            node.modify_index = index;
        }
        self.nodes.insert(spec.node.clone(), node);
        bump(&mut self.indexes.nodes, index);
        self.touch_node_and_its_services(&spec.node, index);
    }

    fn upsert_service(&mut self, index: u64, node: &str, spec: &ServiceSpec) {
        let key = (node.to_string(), service_id_of(spec));
        let existing = self.services.get(&key).cloned();
        let mut instance = ServiceInstance::from_spec(node, spec, index, index);
        if let Some(existing) = &existing {
            instance.create_index = existing.create_index;
            instance.modify_index = existing.modify_index;
            if &instance == existing {
                return;
            }
            instance.modify_index = index;
            if existing.service != instance.service {
                self.indexes.touch_service(&existing.service, index);
            }
        }
        let tags_changed = existing.as_ref().is_some_and(|e| e.tags != instance.tags || e.service != instance.service);
        self.indexes.touch_service(&instance.service, index);
        self.indexes.touch_node(node, index);
        bump(&mut self.indexes.services, index);
        if tags_changed {
            self.refresh_service_fields_of_checks(index, &instance);
        }
        self.services.insert(key, instance);
    }

    /// A check carries its service's name and tags; keep them in step when the service changes.
    fn refresh_service_fields_of_checks(&mut self, index: u64, instance: &ServiceInstance) {
        let mut changed = false;
        for check in self.checks.values_mut().filter(|c| c.node == instance.node && c.service_id == instance.id) {
            check.service_name = instance.service.clone();
            check.service_tags = instance.tags.clone();
            check.modify_index = index;
            changed = true;
        }
        if changed {
            bump(&mut self.indexes.checks, index);
        }
    }

    fn upsert_check(&mut self, index: u64, node: &str, spec: &CheckSpec, losses: &mut Vec<HealthLoss>) {
        let key = (node.to_string(), spec.check_id.clone());
        let service = self.services.get(&(node.to_string(), spec.service_id.clone()));
        let mut check =
            HealthCheck::from_spec(node, spec, service.map(|s| (s.service.as_str(), s.tags.as_slice())), index);
        let previous_service = self.checks.get(&key).map(|existing| existing.service_name.clone());
        if let Some(existing) = self.checks.get(&key) {
            check.create_index = existing.create_index;
            check.modify_index = existing.modify_index;
            if &check == existing {
                return;
            }
            check.modify_index = index;
        }
        if let Some(previous) = previous_service.filter(|p| !p.is_empty()) {
            self.indexes.touch_service(&previous, index);
        }
        self.touch_for_check(index, &check);
        let critical = check.status == CheckStatus::Critical;
        self.checks.insert(key, check);
        if critical {
            losses.push(HealthLoss::Check { node: node.to_string(), check_id: spec.check_id.clone() });
        }
    }

    /// A check change moves the checks table, its node, and every service whose health it is part of.
    pub(super) fn touch_for_check(&mut self, index: u64, check: &HealthCheck) {
        bump(&mut self.indexes.checks, index);
        if check.service_id.is_empty() {
            self.touch_node_and_its_services(&check.node, index);
        } else {
            self.indexes.touch_node(&check.node, index);
            if !check.service_name.is_empty() {
                self.indexes.touch_service(&check.service_name, index);
            }
        }
    }

    pub(super) fn touch_node_and_its_services(&mut self, node: &str, index: u64) {
        self.indexes.touch_node(node, index);
        let names: Vec<String> = self.node_services(node).into_iter().map(|s| s.service.clone()).collect();
        for name in names {
            self.indexes.touch_service(&name, index);
        }
    }
}
