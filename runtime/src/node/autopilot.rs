//! Autopilot, run by the leader (Consul's autopilot, open-source part): every `TICK` it stores the
//! configuration file's `autopilot {}` values if the cluster has none yet, observes each server of the
//! Raft configuration (gossip status, when it last answered the leader's `AppendEntries`, how far its log
//! trails), judges its health with `conclave_core::autopilot::is_healthy`, promotes learners that stayed
//! healthy for `server_stabilization_time` to voters, and removes dead servers within the quorum rules of
//! `conclave_core::autopilot::plan`. The last observation is kept for `/v1/operator/autopilot/health`
//! and `/state`, which are answered by the leader.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conclave_core::autopilot::{
    failure_tolerance, is_healthy, plan, quorum_of, AutopilotCommand, AutopilotConfig, Plan, SerfStatus, ServerHealth,
    ServerObservation,
};
use conclave_core::gossip::MemberStatus;
use conclave_core::state::{Command, Response};
use openraft::ChangeMembers;

use super::Node;
use crate::env::Env;

/// How often the leader's autopilot observes the servers and acts. Short next to Consul's defaults
/// (`last_contact_threshold` 200ms is measured at each tick, `server_stabilization_time` 10s).
const TICK: Duration = Duration::from_millis(500);

/// One server as the autopilot last saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerReport {
    pub id: u64,
    pub name: String,
    pub address: String,
    pub serf: SerfStatus,
    pub version: String,
    pub leader: bool,
    pub voter: bool,
    /// Since the leader last heard from it; `None`: never.
    pub last_contact: Option<Duration>,
    pub last_term: u64,
    pub last_index: u64,
    pub healthy: bool,
    /// When it last became healthy or unhealthy (ms since the Unix epoch, the Env's clock).
    pub stable_since_unix_ms: u64,
}

/// The leader's last observation of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// In Raft ID order.
    pub servers: Vec<ServerReport>,
    pub leader: u64,
    /// Every server healthy.
    pub healthy: bool,
    pub failure_tolerance: usize,
    /// The failure tolerance if every healthy learner were a voter.
    pub optimistic_failure_tolerance: usize,
}

/// Since when each server has been healthy or unhealthy.
#[derive(Clone, Copy, Debug)]
struct Stability {
    healthy: bool,
    since: tokio::time::Instant,
    since_unix_ms: u64,
}

/// The autopilot's memory on this node: empty unless this node leads.
#[derive(Debug, Default)]
pub struct AutopilotView {
    report: Mutex<Option<Report>>,
    stability: Mutex<BTreeMap<u64, Stability>>,
}

impl AutopilotView {
    /// The last observation, if this node is the leader and has made one.
    pub fn report(&self) -> Option<Report> {
        self.report.lock().expect("autopilot lock").clone()
    }

    fn forget(&self) {
        *self.report.lock().expect("autopilot lock") = None;
        self.stability.lock().expect("autopilot lock").clear();
    }
}

impl<E: Env> Node<E> {
    /// The autopilot configuration in force: the replicated one, or the configuration file's until the
    /// first leader stored it.
    pub fn autopilot_config(&self) -> AutopilotConfig {
        self.state.read().autopilot().config().cloned().unwrap_or_else(|| self.config.autopilot.clone())
    }
}

/// The leader's autopilot loop (servers only).
pub async fn run<E: Env>(node: Arc<Node<E>>) {
    if !node.config.server {
        return;
    }
    let epoch = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(TICK).await;
        if !node.is_leader() {
            node.autopilot.forget();
            continue;
        }
        let stored = node.state.read().autopilot().config().cloned();
        let Some(config) = stored else {
            store_file_config(&node).await;
            continue;
        };
        let report = observe(&node, &config);
        let healths: Vec<ServerHealth> = {
            let stability = node.autopilot.stability.lock().expect("autopilot lock");
            report.servers.iter().map(|s| health_of(s, &stability, epoch)).collect()
        };
        *node.autopilot.report.lock().expect("autopilot lock") = Some(report.clone());
        let now_ms = epoch.elapsed().as_millis() as u64;
        carry_out(&node, &plan(&healths, &config, now_ms), &report).await;
    }
}

fn health_of(server: &ServerReport, stability: &BTreeMap<u64, Stability>, epoch: tokio::time::Instant) -> ServerHealth {
    let since = stability.get(&server.id).map_or(epoch, |s| s.since);
    ServerHealth {
        id: server.id,
        voter: server.voter,
        leader: server.leader,
        serf: server.serf,
        healthy: server.healthy,
        stable_since_ms: since.saturating_duration_since(epoch).as_millis() as u64,
    }
}

/// The first leader stores the configuration file's values (later leaders find them stored).
async fn store_file_config<E: Env>(node: &Node<E>) {
    let command = Command::Autopilot(AutopilotCommand::Initialize(node.config.autopilot.clone()));
    match node.write(command).await {
        Ok((index, Response::Kv(true))) => {
            tracing::info!(target: "conclave::event", index, "autopilot: configuration stored from the agent's config")
        }
        Ok(_) => {}
        Err(e) => tracing::debug!(target: "conclave::event", error = %e, "autopilot: configuration not stored yet"),
    }
}

fn serf_status(status: MemberStatus) -> SerfStatus {
    match status {
        MemberStatus::Alive => SerfStatus::Alive,
        MemberStatus::Leaving => SerfStatus::Leaving,
        MemberStatus::Left => SerfStatus::Left,
        MemberStatus::Failed => SerfStatus::Failed,
    }
}

/// What the leader sees of every server of the Raft configuration now.
fn observe<E: Env>(node: &Node<E>, config: &AutopilotConfig) -> Report {
    let raft = node.raft.as_ref().expect("the leader runs raft");
    let metrics = raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
    let leader_last_index = metrics.last_log_index.unwrap_or(0);
    let known = node.known_servers.lock().expect("known servers lock").clone();
    let members = node.gossip.members();
    let now_unix_ms = node.env.unix_time_ms();
    let mut stability = node.autopilot.stability.lock().expect("autopilot lock");
    stability.retain(|id, _| membership.get_node(id).is_some());
    let mut servers = Vec::new();
    for (id, member) in membership.nodes() {
        let me = *id == node.raft_id;
        let name = match me {
            true => node.config.node_name.clone(),
            false => known.get(id).map(|info| info.node_name.clone()).unwrap_or_default(),
        };
        let gossip =
            members.iter().find(|m| m.tags.rpc_port != 0 && !name.is_empty() && m.name == name).or_else(|| {
                members
                    .iter()
                    .find(|m| m.tags.rpc_port != 0 && format!("{}:{}", m.addr.ip(), m.tags.rpc_port) == member.addr)
            });
        let serf = gossip.map_or(SerfStatus::None, |m| serf_status(m.status));
        let matched = metrics.replication.as_ref().and_then(|r| r.get(id).cloned().flatten());
        let (last_term, last_index, last_contact) = match me {
            true => (metrics.current_term, leader_last_index, Some(Duration::ZERO)),
            false => (
                matched.map_or(0, |l| l.leader_id.term),
                matched.map_or(0, |l| l.index),
                node.peer_addresses.since_last_answer(*id),
            ),
        };
        let observation = ServerObservation {
            id: *id,
            voter: voters.contains(id),
            leader: me,
            serf,
            last_contact_ms: last_contact.map(|d| d.as_millis() as u64),
            last_index,
        };
        let healthy = is_healthy(&observation, leader_last_index, config);
        let entry = stability.entry(*id).or_insert(Stability {
            healthy,
            since: tokio::time::Instant::now(),
            since_unix_ms: now_unix_ms,
        });
        if entry.healthy != healthy {
            *entry = Stability { healthy, since: tokio::time::Instant::now(), since_unix_ms: now_unix_ms };
        }
        servers.push(ServerReport {
            id: *id,
            name: gossip.map(|m| m.name.clone()).unwrap_or(name),
            address: member.addr.clone(),
            serf,
            version: gossip.map(|m| m.tags.build.clone()).unwrap_or_default(),
            leader: me,
            voter: observation.voter,
            last_contact,
            last_term,
            last_index,
            healthy,
            stable_since_unix_ms: entry.since_unix_ms,
        });
    }
    let healthy_voters = servers.iter().filter(|s| s.voter && s.healthy).count();
    let healthy_servers = servers.iter().filter(|s| s.healthy).count();
    let as_health = |s: &ServerReport| ServerHealth {
        id: s.id,
        voter: s.voter,
        leader: s.leader,
        serf: s.serf,
        healthy: s.healthy,
        stable_since_ms: 0,
    };
    let tolerance = failure_tolerance(&servers.iter().map(as_health).collect::<Vec<_>>());
    assert!(tolerance <= healthy_voters, "failure tolerance counts healthy voters only");
    Report {
        leader: node.raft_id,
        healthy: servers.iter().all(|s| s.healthy),
        failure_tolerance: tolerance,
        optimistic_failure_tolerance: healthy_servers.saturating_sub(quorum_of(voters.len().max(1))),
        servers,
    }
}

fn name_of(report: &Report, id: u64) -> String {
    report.servers.iter().find(|s| s.id == id).map(|s| s.name.clone()).unwrap_or_default()
}

/// Promotes and removes as planned, logging each change (a refused change is retried next tick).
async fn carry_out<E: Env>(node: &Node<E>, plan: &Plan, report: &Report) {
    let Some(raft) = &node.raft else { return };
    for id in &plan.promote {
        let server = name_of(report, *id);
        match raft.change_membership(ChangeMembers::AddVoterIds([*id].into()), false).await {
            Ok(_) => {
                tracing::info!(target: "conclave::event", %server, raft_id = id, "autopilot: promoted server to voter")
            }
            Err(e) => tracing::debug!(target: "conclave::event", %server, error = %e, "autopilot: promotion deferred"),
        }
    }
    let (voters, learners): (Vec<u64>, Vec<u64>) =
        plan.remove.iter().partition(|id| report.servers.iter().any(|s| s.id == **id && s.voter));
    if !voters.is_empty() {
        let names: Vec<String> = voters.iter().map(|id| name_of(report, *id)).collect();
        match raft.change_membership(ChangeMembers::RemoveVoters(voters.iter().copied().collect()), false).await {
            Ok(_) => tracing::info!(target: "conclave::event", servers = ?names, "autopilot: removed dead servers"),
            Err(e) => {
                tracing::debug!(target: "conclave::event", servers = ?names, error = %e, "autopilot: removal deferred")
            }
        }
    }
    if !learners.is_empty() {
        let names: Vec<String> = learners.iter().map(|id| name_of(report, *id)).collect();
        match raft.change_membership(ChangeMembers::RemoveNodes(learners.iter().copied().collect()), false).await {
            Ok(_) => tracing::info!(target: "conclave::event", servers = ?names, "autopilot: removed dead non-voters"),
            Err(e) => {
                tracing::debug!(target: "conclave::event", servers = ?names, error = %e, "autopilot: removal deferred")
            }
        }
    }
    for (id, why) in &plan.kept {
        tracing::debug!(target: "conclave::event", server = %name_of(report, *id), why = %why, "autopilot: dead server kept");
    }
}
