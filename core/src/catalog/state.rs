//! The catalog state machine: nodes, service instances and checks keyed as Consul keys them, changed only
//! by `apply` in Raft log order. Every entry carries the Raft index that created it and the one that last
//! changed it; an identical re-registration changes nothing, so it wakes no blocking query.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::command::{CheckSpec, Command, DeregisterRequest, RegisterRequest, Response, ServiceSpec};
use super::index::{bump, Indexes, WatchKey};
use super::types::{HealthCheck, Node, ServiceInstance};

/// The replicated catalog. `BTreeMap`s only: iteration order is part of the snapshot bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub(super) nodes: BTreeMap<String, Node>,
    /// Keyed by (node, service ID).
    pub(super) services: BTreeMap<(String, String), ServiceInstance>,
    /// Keyed by (node, check ID).
    pub(super) checks: BTreeMap<(String, String), HealthCheck>,
    pub(super) indexes: Indexes,
    pub(super) last_index: u64,
    /// The KV store lives in the same replicated state: one log, one index sequence.
    pub(super) kv: crate::kv::KvStore,
    pub(super) sessions: crate::kv::Sessions,
    /// The replicated clock: the latest proposal time (ms) applied, never going back. Lock delays are
    /// measured on it, so every server decides the same.
    pub(super) clock_ms: u64,
}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// Index of the last applied command (0 before the first).
    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    /// The modify index a blocking query on `key` compares with the client's index.
    pub fn index_of(&self, key: &WatchKey) -> u64 {
        match key {
            WatchKey::KvPrefix(prefix) => self.kv.prefix_index(prefix),
            WatchKey::KvKey(key) => self.kv.key_index(key),
            WatchKey::Kv => self.kv.table_index(),
            WatchKey::Sessions => self.sessions.table_index(),
            other => self.indexes.get(other),
        }
    }

    /// Applies the command of the Raft entry at `index`, proposed at `proposed_at_ms` on the leader's
    /// clock. Indexes must be applied in increasing order.
    pub fn apply_at(&mut self, index: u64, proposed_at_ms: u64, command: &Command) -> Response {
        self.clock_ms = self.clock_ms.max(proposed_at_ms);
        self.kv.expire_lock_delays(self.clock_ms);
        self.apply(index, command)
    }

    /// Applies the command of the Raft entry at `index` without moving the replicated clock.
    pub fn apply(&mut self, index: u64, command: &Command) -> Response {
        assert!(index > self.last_index, "apply out of order: index {index} after {}", self.last_index);
        self.last_index = index;
        match command {
            Command::Register(request) => self.register(index, request),
            Command::Deregister(request) => self.deregister(index, request),
            Command::Noop => Response::Applied,
            Command::Kv(command) => self.apply_kv(index, command),
            Command::SessionCreate(session) => self.create_session(index, session),
            Command::SessionDestroy { id } => {
                self.invalidate_session(index, id);
                Response::Applied
            }
            Command::Txn(ops) => self.apply_txn(index, ops),
        }
    }

    pub(super) fn apply_kv(&mut self, index: u64, command: &crate::kv::KvCommand) -> Response {
        if let crate::kv::KvCommand::Lock { session, .. } = command {
            if self.sessions.get(session).is_none() {
                return Response::Rejected(format!("invalid session {session:?}"));
            }
        }
        Response::Kv(self.kv.apply(index, self.clock_ms, command))
    }

    /// The KV store.
    pub fn kv(&self) -> &crate::kv::KvStore {
        &self.kv
    }

    /// The sessions table.
    pub fn sessions(&self) -> &crate::kv::Sessions {
        &self.sessions
    }

    /// The replicated clock (ms): the latest proposal time applied.
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    pub(super) fn register(&mut self, index: u64, request: &RegisterRequest) -> Response {
        if let Err(why) = self.validate_register(request) {
            return Response::Rejected(why);
        }
        let node_name = request.node.node.clone();
        self.upsert_node(index, request);
        if let Some(service) = &request.service {
            self.upsert_service(index, &node_name, service);
        }
        for check in &request.checks {
            self.upsert_check(index, &node_name, check);
        }
        Response::Applied
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
        let id = service_id_of(spec);
        let key = (node.to_string(), id.clone());
        let existing = self.services.get(&key).cloned();
        let mut instance = ServiceInstance {
            node: node.to_string(),
            id,
            service: spec.service.clone(),
            kind: spec.kind.clone(),
            tags: spec.tags.clone(),
            address: spec.address.clone(),
            tagged_addresses: spec.tagged_addresses.clone(),
            meta: spec.meta.clone(),
            port: spec.port,
            weights: spec.weights,
            enable_tag_override: spec.enable_tag_override,
            create_index: index,
            modify_index: index,
        };
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

    fn upsert_check(&mut self, index: u64, node: &str, spec: &CheckSpec) {
        let key = (node.to_string(), spec.check_id.clone());
        let (service_name, service_tags) = match self.services.get(&(node.to_string(), spec.service_id.clone())) {
            Some(instance) => (instance.service.clone(), instance.tags.clone()),
            None => (String::new(), Vec::new()),
        };
        let mut check = HealthCheck {
            node: node.to_string(),
            check_id: spec.check_id.clone(),
            name: spec.name.clone(),
            status: spec.status,
            notes: spec.notes.clone(),
            output: spec.output.clone(),
            service_id: spec.service_id.clone(),
            service_name,
            service_tags,
            check_type: spec.check_type.clone(),
            definition: spec.definition.clone(),
            create_index: index,
            modify_index: index,
        };
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
        let critical = check.status == super::types::CheckStatus::Critical;
        self.checks.insert(key, check);
        if critical {
            self.invalidate_sessions_of(index, node, Some(&spec.check_id));
        }
    }

    /// A check change moves the checks table, its node, and every service whose health it is part of.
    fn touch_for_check(&mut self, index: u64, check: &HealthCheck) {
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

    fn touch_node_and_its_services(&mut self, node: &str, index: u64) {
        self.indexes.touch_node(node, index);
        let names: Vec<String> = self.node_services(node).into_iter().map(|s| s.service.clone()).collect();
        for name in names {
            self.indexes.touch_service(&name, index);
        }
    }

    pub(super) fn deregister(&mut self, index: u64, request: &DeregisterRequest) -> Response {
        let node = request.node.as_str();
        match (&request.service_id, &request.check_id) {
            (Some(service_id), _) => self.remove_service(index, node, service_id),
            (None, Some(check_id)) => self.remove_check(index, node, check_id),
            (None, None) => self.remove_node(index, node),
        }
        Response::Applied
    }

    fn remove_check(&mut self, index: u64, node: &str, check_id: &str) {
        if let Some(check) = self.checks.remove(&(node.to_string(), check_id.to_string())) {
            self.touch_for_check(index, &check);
            self.invalidate_sessions_of(index, node, Some(check_id));
        }
    }

    fn remove_service(&mut self, index: u64, node: &str, service_id: &str) {
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
                self.invalidate_sessions_of(index, node, Some(&key.1));
            }
            bump(&mut self.indexes.checks, index);
        }
        bump(&mut self.indexes.services, index);
        self.indexes.touch_service(&instance.service, index);
        self.indexes.touch_node(node, index);
    }

    pub(super) fn remove_node(&mut self, index: u64, node: &str) {
        if !self.nodes.contains_key(node) {
            return;
        }
        self.touch_node_and_its_services(node, index);
        let services: Vec<String> = self.node_services(node).into_iter().map(|s| s.id.clone()).collect();
        for service_id in services {
            self.remove_service(index, node, &service_id);
        }
        let checks: Vec<String> = self.node_checks(node).into_iter().map(|c| c.check_id.clone()).collect();
        for check_id in checks {
            self.remove_check(index, node, &check_id);
        }
        self.invalidate_sessions_of(index, node, None);
        self.nodes.remove(node);
        bump(&mut self.indexes.nodes, index);
    }
}

/// A registration's service ID, which defaults to the service name (Consul's rule).
pub fn service_id_of(spec: &ServiceSpec) -> String {
    if spec.id.is_empty() {
        spec.service.clone()
    } else {
        spec.id.clone()
    }
}
