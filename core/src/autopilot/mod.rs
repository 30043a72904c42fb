//! Autopilot: the replicated autopilot configuration (Consul's `/v1/operator/autopilot/configuration`,
//! kept in the Raft state with a `ModifyIndex` for check-and-set) and the pure rules the leader's
//! autopilot follows — which server is healthy, which learner has been healthy long enough to become a
//! voter, which dead servers may leave the configuration without taking away quorum (`plan`).

mod plan;

pub use plan::{failure_tolerance, is_healthy, plan, quorum_of, Plan, SerfStatus, ServerHealth, ServerObservation};

use serde::{Deserialize, Serialize};

/// Consul's autopilot settings (the open-source ones; the enterprise ones are refused by config and API).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutopilotConfig {
    /// Remove failed or left servers from the Raft configuration (within the quorum rules).
    pub cleanup_dead_servers: bool,
    /// A server that has not heard from the leader for longer is unhealthy.
    pub last_contact_threshold_ms: u64,
    /// A server whose log trails the leader's by more entries is unhealthy.
    pub max_trailing_logs: u64,
    /// Dead servers are never removed if fewer voters than this would remain.
    pub min_quorum: u32,
    /// How long a new server must stay healthy before it is promoted to voter.
    pub server_stabilization_time_ms: u64,
    /// Log index of the entry that first stored a configuration (0 before one is stored).
    pub create_index: u64,
    /// Log index of the entry that last changed it.
    pub modify_index: u64,
}

impl Default for AutopilotConfig {
    /// Consul's defaults.
    fn default() -> Self {
        AutopilotConfig {
            cleanup_dead_servers: true,
            last_contact_threshold_ms: 200,
            max_trailing_logs: 250,
            min_quorum: 0,
            server_stabilization_time_ms: 10_000,
            create_index: 0,
            modify_index: 0,
        }
    }
}

/// A change to the autopilot table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AutopilotCommand {
    /// Stores `config` if none is stored yet (the leader writes the configuration file's values); applied
    /// as `false` when one is stored already, so a second leader never overwrites an operator's change.
    Initialize(AutopilotConfig),
    /// Stores `config`; with `cas`, only if the stored `ModifyIndex` is `cas` (0: only if none is stored).
    Set { config: AutopilotConfig, cas: Option<u64> },
}

/// The table: at most one configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutopilotTable {
    config: Option<AutopilotConfig>,
}

impl AutopilotTable {
    /// The stored configuration, with its indexes; `None` until the first leader stored one.
    pub fn config(&self) -> Option<&AutopilotConfig> {
        self.config.as_ref()
    }

    /// Applies `command` at `index`: whether it was stored (a failed CAS or a repeated `Initialize` is
    /// `false` and changes nothing).
    pub fn apply(&mut self, index: u64, command: &AutopilotCommand) -> bool {
        let (config, cas) = match command {
            AutopilotCommand::Initialize(config) => (config, Some(0)),
            AutopilotCommand::Set { config, cas } => (config, *cas),
        };
        let stored_index = self.config.as_ref().map_or(0, |c| c.modify_index);
        if cas.is_some_and(|cas| cas != stored_index) {
            return false;
        }
        let create_index = self.config.as_ref().map_or(index, |c| c.create_index);
        self.config = Some(AutopilotConfig { create_index, modify_index: index, ..config.clone() });
        assert!(self.config.as_ref().is_some_and(|c| c.create_index <= c.modify_index), "indexes only grow");
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_min_quorum(min_quorum: u32) -> AutopilotConfig {
        AutopilotConfig { min_quorum, ..AutopilotConfig::default() }
    }

    #[test]
    fn initialize_stores_once_and_never_overwrites() {
        let mut table = AutopilotTable::default();
        assert!(table.apply(3, &AutopilotCommand::Initialize(with_min_quorum(3))));
        assert!(!table.apply(5, &AutopilotCommand::Initialize(with_min_quorum(5))));
        let stored = table.config().unwrap();
        assert_eq!((stored.min_quorum, stored.create_index, stored.modify_index), (3, 3, 3));
    }

    #[test]
    fn set_with_stale_cas_changes_nothing_and_current_cas_applies() {
        let mut table = AutopilotTable::default();
        table.apply(3, &AutopilotCommand::Initialize(AutopilotConfig::default()));
        assert!(!table.apply(4, &AutopilotCommand::Set { config: with_min_quorum(5), cas: Some(2) }));
        assert_eq!(table.config().unwrap().min_quorum, 0);
        assert!(table.apply(5, &AutopilotCommand::Set { config: with_min_quorum(5), cas: Some(3) }));
        let stored = table.config().unwrap();
        assert_eq!((stored.min_quorum, stored.create_index, stored.modify_index), (5, 3, 5));
    }

    #[test]
    fn set_without_cas_always_applies() {
        let mut table = AutopilotTable::default();
        assert!(table.apply(2, &AutopilotCommand::Set { config: with_min_quorum(1), cas: None }));
        assert!(table.apply(4, &AutopilotCommand::Set { config: with_min_quorum(2), cas: None }));
        assert_eq!(table.config().unwrap().modify_index, 4);
    }
}
