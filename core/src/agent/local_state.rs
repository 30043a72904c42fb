//! Services and checks registered on one agent. The agent is their source of truth: it keeps them across
//! restarts (encoded with `codec`) and turns them into catalog registrations for its node
//! (`sync_commands`). Maintenance mode is a critical check of its own, as in Consul.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::{CheckSpec, CheckStatus, Command, DeregisterRequest, NodeSpec, RegisterRequest, ServiceSpec};

/// Most services one agent keeps (a limit, so a runaway registration loop cannot exhaust memory).
pub const AGENT_SERVICES_MAX: usize = 10_000;
/// Most bytes of a check's output kept, as Consul's `check_output_max_size` (4 KiB).
pub const CHECK_OUTPUT_BYTES_MAX: usize = 4096;

/// Cuts a check's output to `CHECK_OUTPUT_BYTES_MAX`, saying so as Consul does.
pub fn truncate_output(output: &str) -> String {
    if output.len() <= CHECK_OUTPUT_BYTES_MAX {
        return output.to_string();
    }
    let mut end = CHECK_OUTPUT_BYTES_MAX;
    while !output.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} ... (captured {end} of {} bytes)", &output[..end], output.len())
}

/// Consul's check ID of node maintenance.
pub const NODE_MAINTENANCE_CHECK_ID: &str = "_node_maintenance";
/// Consul's prefix of service maintenance check IDs (`_service_maintenance:<service id>`).
pub const SERVICE_MAINTENANCE_PREFIX: &str = "_service_maintenance:";

const DEFAULT_SERVICE_REASON: &str =
    "Maintenance mode is enabled for this service, but no reason was provided. This is a default message.";
const DEFAULT_NODE_REASON: &str =
    "Maintenance mode is enabled for this node, but no reason was provided. This is a default message.";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalService {
    pub spec: ServiceSpec,
    /// Where the service came from: empty for the API, else the config file that defines it.
    pub source: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalState {
    services: BTreeMap<String, LocalService>,
    /// By check ID; a check's `service_id` names one of `services` or is empty (node check).
    checks: BTreeMap<String, CheckSpec>,
}

impl LocalState {
    pub fn new() -> LocalState {
        LocalState::default()
    }

    pub fn services(&self) -> impl Iterator<Item = &LocalService> {
        self.services.values()
    }

    pub fn service(&self, id: &str) -> Option<&LocalService> {
        self.services.get(id)
    }

    pub fn checks(&self) -> impl Iterator<Item = &CheckSpec> {
        self.checks.values()
    }

    pub fn check(&self, id: &str) -> Option<&CheckSpec> {
        self.checks.get(id)
    }

    /// Adds or replaces a service and its checks. Checks of the service not in `checks` are kept unless
    /// `replace_existing_checks` (Consul's `?replace-existing-checks`). A new service beyond
    /// `AGENT_SERVICES_MAX` is refused.
    pub fn register_service(
        &mut self,
        spec: ServiceSpec,
        checks: Vec<CheckSpec>,
        source: &str,
        replace_existing_checks: bool,
    ) -> Result<(), String> {
        assert!(!spec.id.is_empty(), "service IDs are defaulted before registration");
        if !self.services.contains_key(&spec.id) && self.services.len() >= AGENT_SERVICES_MAX {
            return Err(format!("Too many services on this agent: the limit is {AGENT_SERVICES_MAX}"));
        }
        if replace_existing_checks {
            let id = spec.id.clone();
            self.checks.retain(|check_id, c| c.service_id != id || check_id.starts_with(SERVICE_MAINTENANCE_PREFIX));
        }
        for check in checks {
            self.checks.insert(check.check_id.clone(), check);
        }
        self.services.insert(spec.id.clone(), LocalService { spec, source: source.to_string() });
        Ok(())
    }

    /// Removes a service and its checks; false if there was no such service.
    pub fn deregister_service(&mut self, id: &str) -> bool {
        if self.services.remove(id).is_none() {
            return false;
        }
        self.checks.retain(|_, c| c.service_id != id);
        true
    }

    /// Adds or replaces a check; its service, if any, must be registered here.
    pub fn register_check(&mut self, check: CheckSpec) -> Result<(), String> {
        if !check.service_id.is_empty() && !self.services.contains_key(&check.service_id) {
            return Err(format!("ServiceID \"{}\" does not exist", check.service_id));
        }
        self.checks.insert(check.check_id.clone(), check);
        Ok(())
    }

    pub fn deregister_check(&mut self, id: &str) -> bool {
        self.checks.remove(id).is_some()
    }

    /// Sets a check's status and output (TTL updates, `/v1/agent/check/pass|warn|fail|update`).
    pub fn update_check(&mut self, id: &str, status: CheckStatus, output: &str) -> Result<(), String> {
        let check = self.checks.get_mut(id).ok_or_else(|| {
            format!("Unknown check ID \"{id}\". Ensure that the check ID is passed, not the check name.")
        })?;
        check.status = status;
        check.output = truncate_output(output);
        Ok(())
    }

    /// Turns maintenance of a service on or off; `Err` if the service is unknown.
    pub fn set_service_maintenance(&mut self, id: &str, enable: bool, reason: &str) -> Result<(), String> {
        if !self.services.contains_key(id) {
            return Err(format!("Unknown service ID \"{id}\""));
        }
        let check_id = format!("{SERVICE_MAINTENANCE_PREFIX}{id}");
        if enable {
            let notes = if reason.is_empty() { DEFAULT_SERVICE_REASON } else { reason };
            self.checks.insert(check_id.clone(), maintenance_check(&check_id, "Service Maintenance Mode", notes, id));
        } else {
            self.checks.remove(&check_id);
        }
        Ok(())
    }

    pub fn set_node_maintenance(&mut self, enable: bool, reason: &str) {
        if enable {
            let notes = if reason.is_empty() { DEFAULT_NODE_REASON } else { reason };
            self.checks.insert(
                NODE_MAINTENANCE_CHECK_ID.to_string(),
                maintenance_check(NODE_MAINTENANCE_CHECK_ID, "Node Maintenance Mode", notes, ""),
            );
        } else {
            self.checks.remove(NODE_MAINTENANCE_CHECK_ID);
        }
    }

    /// Removes the services (and their checks) that came from config files, before a reload adds the
    /// current ones again.
    pub fn forget_config_services(&mut self) -> Vec<String> {
        let doomed: Vec<String> =
            self.services.values().filter(|s| !s.source.is_empty()).map(|s| s.spec.id.clone()).collect();
        for id in &doomed {
            self.deregister_service(id);
        }
        doomed
    }

    /// The registrations that put this state into the catalog under `node`: one per service with its
    /// checks, and one for the node-level checks. Applying them again changes nothing.
    pub fn sync_commands(&self, node: &NodeSpec) -> Vec<Command> {
        let mut commands = Vec::new();
        for local in self.services.values() {
            let checks = self.checks.values().filter(|c| c.service_id == local.spec.id).cloned().collect();
            commands.push(Command::Register(RegisterRequest {
                node: node.clone(),
                skip_node_update: false,
                service: Some(local.spec.clone()),
                checks,
            }));
        }
        let node_checks: Vec<CheckSpec> = self.checks.values().filter(|c| c.service_id.is_empty()).cloned().collect();
        // The node itself is registered by the agent's own registration (with `serfHealth`); a bare node
        // registration here would show it without its health for a moment.
        if !node_checks.is_empty() {
            commands.push(Command::Register(RegisterRequest {
                node: node.clone(),
                skip_node_update: false,
                service: None,
                checks: node_checks,
            }));
        }
        commands
    }

    /// The deregistration of one of this agent's services (or checks) from the catalog.
    pub fn deregister_command(node: &str, service_id: Option<&str>, check_id: Option<&str>) -> Command {
        Command::Deregister(DeregisterRequest {
            node: node.to_string(),
            service_id: service_id.map(str::to_string),
            check_id: check_id.map(str::to_string),
        })
    }
}

fn maintenance_check(check_id: &str, name: &str, notes: &str, service_id: &str) -> CheckSpec {
    CheckSpec {
        check_id: check_id.to_string(),
        name: name.to_string(),
        status: CheckStatus::Critical,
        notes: notes.to_string(),
        service_id: service_id.to_string(),
        check_type: "maintenance".to_string(),
        ..CheckSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(id: &str) -> ServiceSpec {
        ServiceSpec { id: id.into(), service: "web".into(), ..ServiceSpec::default() }
    }

    fn check(id: &str, service_id: &str) -> CheckSpec {
        CheckSpec { check_id: id.into(), service_id: service_id.into(), ..CheckSpec::default() }
    }

    #[test]
    fn deregistering_a_service_removes_its_checks() {
        let mut state = LocalState::new();
        state.register_service(service("w1"), vec![check("c1", "w1")], "", false).unwrap();
        state.register_check(check("node", "")).unwrap();
        assert!(state.deregister_service("w1"));
        assert_eq!(state.checks().map(|c| c.check_id.as_str()).collect::<Vec<_>>(), ["node"]);
    }

    #[test]
    fn check_of_unknown_service_is_refused() {
        let mut state = LocalState::new();
        assert!(state.register_check(check("c", "nope")).is_err());
    }

    #[test]
    fn maintenance_adds_a_critical_check_and_removes_it() {
        let mut state = LocalState::new();
        state.register_service(service("w1"), vec![], "", false).unwrap();
        state.set_service_maintenance("w1", true, "").unwrap();
        let check = state.check("_service_maintenance:w1").unwrap();
        assert_eq!((check.status, check.service_id.as_str()), (CheckStatus::Critical, "w1"));
        state.set_service_maintenance("w1", false, "").unwrap();
        assert!(state.check("_service_maintenance:w1").is_none());
        assert!(state.set_service_maintenance("nope", true, "").is_err());
        state.set_node_maintenance(true, "upgrading");
        assert_eq!(state.check(NODE_MAINTENANCE_CHECK_ID).unwrap().notes, "upgrading");
    }

    #[test]
    fn replace_existing_checks_drops_checks_not_given() {
        let mut state = LocalState::new();
        state.register_service(service("w1"), vec![check("a", "w1"), check("b", "w1")], "", false).unwrap();
        state.register_service(service("w1"), vec![check("b", "w1")], "", true).unwrap();
        assert_eq!(state.checks().count(), 1);
    }

    #[test]
    fn sync_commands_register_every_service_with_its_checks() {
        let mut state = LocalState::new();
        state.register_service(service("w1"), vec![check("a", "w1")], "", false).unwrap();
        state.register_check(check("n", "")).unwrap();
        let commands =
            state.sync_commands(&NodeSpec { node: "n1".into(), address: "1.2.3.4".into(), ..NodeSpec::default() });
        assert_eq!(commands.len(), 2);
    }
}
