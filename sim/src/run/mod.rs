//! One simulation run: `(scenario, seed)` → servers running the production node driver on turmoil,
//! clients recording a history through the HTTP API, the scenario's faults, a heal, a liveness check, and
//! the checker's verdict. Everything random comes from the seed.

mod cluster;
mod gossip_clients;
mod inject;
mod simulate;
pub mod stall_verdict;
mod verdict;
mod workloads;

use std::time::{Duration, Instant};

use conclave::config::FaultSwitches;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

use crate::checker::{self, CheckReport};
use crate::scenarios::{agents, Scenario, WorkloadKind, HEAL_AT};
use crate::{acl_client, cas_client, health_client, trace};

/// How long after the heal the cluster has to answer a consistent read (the liveness bound).
pub const LIVENESS_BOUND: Duration = Duration::from_secs(45);
/// When clients start (the cluster has to bootstrap first).
const CLIENTS_START: Duration = Duration::from_secs(3);

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub seed: u64,
    pub faults: FaultSwitches,
    pub clients: u32,
    pub ops_per_client: usize,
    pub keep_trace: bool,
}

impl RunOptions {
    pub fn new(seed: u64) -> RunOptions {
        RunOptions { seed, faults: FaultSwitches::default(), clients: 4, ops_per_client: 120, keep_trace: false }
    }
}

#[derive(Debug)]
pub struct RunReport {
    pub scenario: &'static str,
    pub seed: u64,
    pub trace_hash: u64,
    pub trace_events: u64,
    pub trace_lines: Vec<String>,
    pub sim_secs: f64,
    pub wall_secs: f64,
    pub history_ops: usize,
    /// Lock holds and sessions the lock workloads recorded (0 for the others).
    pub lock_holds: usize,
    pub sessions: usize,
    pub sessions_expired: usize,
    /// What the health check judged (`check-flaps`; zero for the others).
    pub health: checker::health::HealthReport,
    /// What the membership check measured (the gossip scenarios; empty for the others).
    pub membership: checker::membership::MembershipReport,
    /// What the revocation check saw (`acl-revocation`; zero for the others).
    pub revocation: acl_client::RevocationReport,
    /// What the keyring check saw (`gossip-key-rotation`; zero for the others).
    pub rotation: checker::keyring::RotationReport,
    /// What the disk-stall check measured (`leader-disk-stall`; None for the others).
    pub stall: Option<stall_verdict::StallReport>,
    /// What the agent check measured (`client-agent-churn`; zero for the others).
    pub agents: checker::agents::AgentsReport,
    /// The checker's report, or the violation found.
    pub verdict: Result<CheckReport, String>,
}

impl RunReport {
    pub fn replay_line(&self) -> String {
        format!(
            "SIM_SEED={} cargo run -p sim --release -- --scenario {} --seed {}",
            self.seed, self.scenario, self.seed
        )
    }
}

/// Sub-seeds: one stream per purpose, all derived from the run seed.
fn derive_seed(seed: u64, purpose: u64, index: u64) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ purpose.rotate_left(32) ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    rng.next_u64()
}

/// The gossip keys of a run: the `encrypt` key every host starts with, and the one the operator rotates to.
fn gossip_keys(seed: u64) -> (String, String) {
    let key = |index| crate::keyring_client::gossip_key(derive_seed(seed, 8, index));
    (key(0), key(1))
}

/// The hosts of a run: servers `s1..`, then client agents `a1..`.
pub fn node_names(scenario: &Scenario) -> Vec<String> {
    let servers = (1..=scenario.servers).map(|i| format!("s{i}"));
    servers.chain((1..=scenario.agents).map(|i| format!("a{i}"))).collect()
}

/// Runs one seed of `scenario` and checks its history.
pub fn run(scenario: &'static Scenario, options: &RunOptions) -> RunReport {
    trace::reset(options.keep_trace);
    let targets =
        Targets::new().with_target("conclave::event", tracing::Level::DEBUG).with_target("sim", tracing::Level::DEBUG);
    let subscriber = tracing_subscriber::registry().with(targets).with(trace::TraceLayer);
    let started = Instant::now();
    let (sim_elapsed, history, verdict) =
        tracing::subscriber::with_default(subscriber, || simulate::run_in_sim(scenario, options));
    let (trace_hash, trace_events, trace_lines) = trace::finish();
    let history_ops = history.len();
    let (lock_holds, sessions) = (history.holds.len(), history.sessions.len());
    let sessions_expired = history.sessions.iter().filter(|s| s.gone_at_us.is_some()).count();
    let mut health = checker::health::HealthReport::default();
    let mut membership = checker::membership::MembershipReport::default();
    let mut revocation = acl_client::RevocationReport::default();
    let mut rotation = checker::keyring::RotationReport::default();
    let mut stall = None;
    let mut agents = checker::agents::AgentsReport::default();
    let verdict = verdict.and_then(|()| {
        let report = checker::check(&history).map_err(|v| v.to_string())?;
        if scenario.workload == WorkloadKind::KeyRotation {
            rotation = verdict::keyring_verdict(scenario, options.seed, &history).map_err(|v| v.to_string())?;
        } else if scenario.workload.is_gossip() {
            membership = verdict::gossip_verdict(scenario, &history).map_err(|v| v.to_string())?;
        }
        if scenario.workload == WorkloadKind::AclRevocation {
            revocation = acl_client::check_revocations(&history).map_err(|v| v.to_string())?;
        }
        if scenario.workload == WorkloadKind::DiskStall {
            stall = Some(stall_verdict::check(&history).map_err(|v| v.to_string())?);
        }
        if scenario.workload == WorkloadKind::AgentChurn {
            let names = &node_names(scenario)[scenario.servers..];
            let (heal_us, bound_us) = (HEAL_AT.as_micros() as u64, agents::CONVERGE_BOUND.as_micros() as u64);
            agents = checker::agents::check(&history, names, heal_us, bound_us).map_err(|v| v.to_string())?;
        }
        if scenario.workload == WorkloadKind::KvCas {
            cas_client::check_counters(&history).map_err(|v| v.to_string())?;
        }
        if scenario.workload == WorkloadKind::CheckFlaps {
            let bound_us = health_client::SETTLE_BOUND.as_micros() as u64;
            health =
                checker::health::check(&history, health_client::instance_id, bound_us).map_err(|v| v.to_string())?;
            if health.settled_pairs == 0 {
                return Err("health: no answer came after a settled period; the run proves nothing".to_string());
            }
        }
        Ok(report)
    });
    RunReport {
        scenario: scenario.name,
        seed: options.seed,
        trace_hash,
        trace_events,
        trace_lines,
        sim_secs: sim_elapsed.as_secs_f64(),
        wall_secs: started.elapsed().as_secs_f64(),
        history_ops,
        lock_holds,
        sessions,
        sessions_expired,
        health,
        membership,
        revocation,
        rotation,
        stall,
        agents,
        verdict,
    }
}
