//! Services and checks registered on one agent. The agent is their source of truth: it keeps them across
//! restarts (encoded with `codec`) and turns them into catalog registrations for its node
//! (`sync_commands`). Maintenance mode is a critical check of its own, as in Consul.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::check_run::{truncate_output, CheckRun};
use crate::catalog::{
    CatalogCommand, CheckSpec, CheckStatus, DeregisterRequest, NodeSpec, RegisterRequest, ServiceSpec,
};
use crate::state::Command;

/// Most services one agent keeps (a limit, so a runaway registration loop cannot exhaust memory).
pub const AGENT_SERVICES_MAX: usize = 10_000;
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
    /// How each check is run, by check ID; its keys are always keys of `checks`.
    runs: BTreeMap<String, CheckRun>,
}

/// The shape `LocalState` had before checks carried run parameters, still read from older data dirs.
#[derive(Deserialize)]
struct LocalStateV1 {
    services: BTreeMap<String, LocalService>,
    checks: BTreeMap<String, CheckSpec>,
}

/// A check as registered on the agent: what the catalog stores and how the agent runs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalCheck {
    pub spec: CheckSpec,
    pub run: CheckRun,
}

impl From<CheckSpec> for LocalCheck {
    fn from(spec: CheckSpec) -> LocalCheck {
        LocalCheck { spec, run: CheckRun::default() }
    }
}

impl LocalState {
    pub fn new() -> LocalState {
        LocalState::default()
    }

    /// Decodes a persisted local state, in the current shape or the one before run parameters.
    pub fn decode(bytes: &[u8]) -> Result<LocalState, crate::codec::CodecError> {
        crate::codec::decode::<LocalState>(bytes).or_else(|error| {
            let old: LocalStateV1 = crate::codec::decode(bytes).map_err(|_| error)?;
            Ok(LocalState { services: old.services, checks: old.checks, runs: BTreeMap::new() })
        })
    }

    /// How check `id` is run (defaults for a check registered without run parameters).
    pub fn check_run(&self, id: &str) -> CheckRun {
        self.runs.get(id).cloned().unwrap_or_default()
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
        checks: Vec<LocalCheck>,
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
            let checks = &self.checks;
            self.runs.retain(|check_id, _| checks.contains_key(check_id));
        }
        for check in checks {
            self.insert_check(check);
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
        let checks = &self.checks;
        self.runs.retain(|check_id, _| checks.contains_key(check_id));
        true
    }

    fn insert_check(&mut self, check: LocalCheck) {
        let id = check.spec.check_id.clone();
        self.checks.insert(id.clone(), check.spec);
        self.runs.insert(id, check.run);
    }

    /// Adds or replaces a check; its service, if any, must be registered here.
    pub fn register_check(&mut self, check: LocalCheck) -> Result<(), String> {
        if !check.spec.service_id.is_empty() && !self.services.contains_key(&check.spec.service_id) {
            return Err(format!("ServiceID \"{}\" does not exist", check.spec.service_id));
        }
        self.insert_check(check);
        Ok(())
    }

    pub fn deregister_check(&mut self, id: &str) -> bool {
        self.runs.remove(id);
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
            self.deregister_check(&check_id);
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
            self.deregister_check(NODE_MAINTENANCE_CHECK_ID);
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
        self.sync_commands_for(node, None)
    }

    /// `sync_commands` for the services in `only` (`""` stands for the node-level checks), or all.
    pub fn sync_commands_for(
        &self,
        node: &NodeSpec,
        only: Option<&std::collections::BTreeSet<String>>,
    ) -> Vec<Command> {
        let wanted = |service_id: &str| only.is_none_or(|only| only.contains(service_id));
        let mut checks_by_service: BTreeMap<&str, Vec<CheckSpec>> = BTreeMap::new();
        for check in self.checks.values().filter(|c| wanted(&c.service_id)) {
            checks_by_service.entry(check.service_id.as_str()).or_default().push(check.clone());
        }
        let mut commands = Vec::new();
        let services: Box<dyn Iterator<Item = &LocalService>> = match only {
            Some(only) => Box::new(only.iter().filter_map(|id| self.services.get(id))),
            None => Box::new(self.services.values()),
        };
        for local in services {
            commands.push(Command::Catalog(CatalogCommand::Register(RegisterRequest {
                node: node.clone(),
                skip_node_update: false,
                service: Some(local.spec.clone()),
                checks: checks_by_service.remove(local.spec.id.as_str()).unwrap_or_default(),
            })));
        }
        let node_checks: Vec<CheckSpec> = checks_by_service.remove("").unwrap_or_default();
        // The node itself is registered by the agent's own registration (with `serfHealth`); a bare node
        // registration here would show it without its health for a moment.
        if !node_checks.is_empty() && wanted("") {
            commands.push(Command::Catalog(CatalogCommand::Register(RegisterRequest {
                node: node.clone(),
                skip_node_update: false,
                service: None,
                checks: node_checks,
            })));
        }
        commands
    }

    /// The deregistration of one of this agent's services (or checks) from the catalog.
    pub fn deregister_command(node: &str, service_id: Option<&str>, check_id: Option<&str>) -> Command {
        Command::Catalog(CatalogCommand::Deregister(DeregisterRequest {
            node: node.to_string(),
            service_id: service_id.map(str::to_string),
            check_id: check_id.map(str::to_string),
        }))
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

    fn check(id: &str, service_id: &str) -> LocalCheck {
        LocalCheck::from(CheckSpec { check_id: id.into(), service_id: service_id.into(), ..CheckSpec::default() })
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
        assert_eq!(state.runs.keys().collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn state_persisted_before_run_parameters_still_loads() {
        let mut checks = BTreeMap::new();
        checks.insert("c".to_string(), check("c", "").spec);
        #[derive(Serialize)]
        struct Old<'a> {
            services: BTreeMap<String, LocalService>,
            checks: &'a BTreeMap<String, CheckSpec>,
        }
        let bytes = crate::codec::encode(&Old { services: BTreeMap::new(), checks: &checks });
        let state = LocalState::decode(&bytes).unwrap();
        assert_eq!(state.check("c").unwrap().check_id, "c");
        assert_eq!(state.check_run("c"), CheckRun::default());
        let current = LocalState::decode(&crate::codec::encode(&state)).unwrap();
        assert_eq!(current, state);
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
