//! The autopilot's decisions as pure functions of what the leader observes: a server's health, which
//! learners to promote, which dead servers to remove. Time is the caller's (`now_ms`, `stable_since_ms`
//! on one monotonic clock), so the rules are table-tested here and the leader's task only observes and acts.
//!
//! The removal rule is stricter than Consul's (whose autopilot, from 1.0 to 1.7, removed failed servers
//! as long as fewer than half of the peers had failed, and so could shrink a cluster step by step while
//! unhealthy-but-alive servers made the remaining quorum hollow): dead voters are removed only while a
//! majority of the *current* voters is healthy, never more than the current voters' failure tolerance
//! at once, and never below `min_quorum` voters.

use super::AutopilotConfig;

/// A server's status in the LAN gossip pool, as Consul's `SerfStatus` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SerfStatus {
    Alive,
    Leaving,
    Left,
    Failed,
    /// Not in the member list at all (never met, or reaped).
    None,
}

impl SerfStatus {
    /// Consul's word: `alive`, `leaving`, `left`, `failed`, `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            SerfStatus::Alive => "alive",
            SerfStatus::Leaving => "leaving",
            SerfStatus::Left => "left",
            SerfStatus::Failed => "failed",
            SerfStatus::None => "none",
        }
    }

    /// Failed or left: a server the autopilot may clean up.
    pub fn is_dead(self) -> bool {
        matches!(self, SerfStatus::Left | SerfStatus::Failed)
    }
}

/// What the leader sees of one server of the Raft configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerObservation {
    pub id: u64,
    pub voter: bool,
    pub leader: bool,
    pub serf: SerfStatus,
    /// Milliseconds since the leader last heard from it (0 for the leader); `None`: never.
    pub last_contact_ms: Option<u64>,
    /// The last log index it is known to hold.
    pub last_index: u64,
}

/// Consul's server health: alive in gossip, heard from within `last_contact_threshold`, and no more
/// than `max_trailing_logs` entries behind the leader's log (`leader_last_index`).
pub fn is_healthy(server: &ServerObservation, leader_last_index: u64, config: &AutopilotConfig) -> bool {
    let alive = server.serf == SerfStatus::Alive;
    let in_contact = server.leader || server.last_contact_ms.is_some_and(|ms| ms <= config.last_contact_threshold_ms);
    let caught_up = leader_last_index.saturating_sub(server.last_index) <= config.max_trailing_logs;
    alive && in_contact && caught_up
}

/// A server's health as the autopilot tracks it: healthy or not, and since when (the time of the last
/// change between the two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerHealth {
    pub id: u64,
    pub voter: bool,
    pub leader: bool,
    pub serf: SerfStatus,
    pub healthy: bool,
    pub stable_since_ms: u64,
}

/// What the autopilot does this round, in Raft ID order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Learners healthy for `server_stabilization_time`: made voters.
    pub promote: Vec<u64>,
    /// Dead servers taken out of the configuration.
    pub remove: Vec<u64>,
    /// Dead voters kept, and why (the quorum rules).
    pub kept: Vec<(u64, String)>,
}

/// Raft's quorum: a majority of `voters`.
pub fn quorum_of(voters: usize) -> usize {
    voters / 2 + 1
}

/// Consul's `FailureTolerance`: how many healthy voters may fail before quorum is lost.
pub fn failure_tolerance(servers: &[ServerHealth]) -> usize {
    let voters = servers.iter().filter(|s| s.voter).count();
    let healthy = servers.iter().filter(|s| s.voter && s.healthy).count();
    if voters == 0 {
        return 0;
    }
    healthy.saturating_sub(quorum_of(voters))
}

/// The promotions and removals for `servers` at `now_ms` under `config`.
pub fn plan(servers: &[ServerHealth], config: &AutopilotConfig, now_ms: u64) -> Plan {
    let mut sorted: Vec<&ServerHealth> = servers.iter().collect();
    sorted.sort_by_key(|s| s.id);
    let mut out = Plan::default();
    for server in sorted.iter().filter(|s| !s.voter && s.healthy) {
        if now_ms.saturating_sub(server.stable_since_ms) >= config.server_stabilization_time_ms {
            out.promote.push(server.id);
        }
    }
    if !config.cleanup_dead_servers {
        return out;
    }
    let dead = |s: &&&ServerHealth| s.serf.is_dead() && !s.leader;
    // A dead learner holds no vote: removing it never touches quorum.
    out.remove.extend(sorted.iter().filter(|s| !s.voter).filter(dead).map(|s| s.id));
    let voters = sorted.iter().filter(|s| s.voter).count();
    let healthy_voters = sorted.iter().filter(|s| s.voter && s.healthy).count();
    let mut removable = voters.saturating_sub(quorum_of(voters)).min(voters.saturating_sub(config.min_quorum as usize));
    let why_not = if healthy_voters < quorum_of(voters) {
        removable = 0;
        format!("only {healthy_voters} of {voters} voters are healthy, fewer than a quorum")
    } else {
        format!("removing more would leave fewer than min_quorum {} voters or take away quorum", config.min_quorum)
    };
    for server in sorted.iter().filter(|s| s.voter).filter(dead) {
        if removable > 0 {
            removable -= 1;
            out.remove.push(server.id);
        } else {
            out.kept.push((server.id, why_not.clone()));
        }
    }
    out.remove.sort_unstable();
    assert!(out.remove.iter().all(|id| !out.promote.contains(id)), "a server is promoted or removed, not both");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(min_quorum: u32) -> AutopilotConfig {
        AutopilotConfig { min_quorum, server_stabilization_time_ms: 1_000, ..AutopilotConfig::default() }
    }

    /// `spec`: one letter per server, `V` healthy voter, `v` alive unhealthy voter, `D` dead voter,
    /// `L` healthy learner, `d` dead learner. Server 1 is the leader.
    fn servers(spec: &str) -> Vec<ServerHealth> {
        spec.chars()
            .enumerate()
            .map(|(i, c)| ServerHealth {
                id: i as u64 + 1,
                voter: matches!(c, 'V' | 'v' | 'D'),
                leader: i == 0,
                serf: if matches!(c, 'D' | 'd') { SerfStatus::Failed } else { SerfStatus::Alive },
                healthy: matches!(c, 'V' | 'L'),
                stable_since_ms: 0,
            })
            .collect()
    }

    #[test]
    fn dead_voters_are_removed_only_while_quorum_and_min_quorum_hold() {
        // (servers, min_quorum, removed)
        let table: &[(&str, u32, &[u64])] = &[
            ("VVVDD", 3, &[4, 5]),
            ("VVD", 3, &[]),
            ("VVD", 0, &[3]),
            ("VVVDD", 4, &[4]),
            ("VVDDD", 0, &[]),
            ("VVvDD", 0, &[]),
            ("VVVVDDD", 0, &[5, 6, 7]),
            ("VVVd", 5, &[4]),
            ("VD", 0, &[]),
        ];
        for (spec, min_quorum, removed) in table {
            let plan = plan(&servers(spec), &config(*min_quorum), 0);
            assert_eq!(plan.remove, *removed, "{spec} with min_quorum {min_quorum}");
        }
    }

    #[test]
    fn nothing_is_removed_when_cleanup_dead_servers_is_off() {
        let off = AutopilotConfig { cleanup_dead_servers: false, ..config(0) };
        assert!(plan(&servers("VVVDD"), &off, 0).remove.is_empty());
    }

    #[test]
    fn learner_is_promoted_only_after_the_stabilization_time() {
        let mut list = servers("VVVL");
        list[3].stable_since_ms = 500;
        assert!(plan(&list, &config(0), 1_400).promote.is_empty());
        assert_eq!(plan(&list, &config(0), 1_500).promote, [4]);
        list[3].healthy = false;
        assert!(plan(&list, &config(0), 9_000).promote.is_empty());
    }

    #[test]
    fn health_needs_serf_alive_recent_contact_and_few_trailing_logs() {
        let config = config(0);
        let server = ServerObservation {
            id: 2,
            voter: true,
            leader: false,
            serf: SerfStatus::Alive,
            last_contact_ms: Some(100),
            last_index: 900,
        };
        assert!(is_healthy(&server, 1_000, &config));
        assert!(!is_healthy(&server, 1_151, &config), "251 entries behind");
        assert!(!is_healthy(&ServerObservation { last_contact_ms: Some(201), ..server.clone() }, 1_000, &config));
        assert!(!is_healthy(&ServerObservation { last_contact_ms: None, ..server.clone() }, 1_000, &config));
        assert!(!is_healthy(&ServerObservation { serf: SerfStatus::Failed, ..server }, 1_000, &config));
    }

    #[test]
    fn failure_tolerance_is_healthy_voters_beyond_quorum() {
        assert_eq!(failure_tolerance(&servers("VVVVV")), 2);
        assert_eq!(failure_tolerance(&servers("VVVDD")), 0);
        assert_eq!(failure_tolerance(&servers("VVVL")), 1);
        assert_eq!(failure_tolerance(&servers("VDD")), 0);
    }
}
