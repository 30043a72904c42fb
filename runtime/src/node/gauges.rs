//! The metrics a node reports on its own schedule: every second the Raft figures (`raft.applied_index`,
//! `raft.last_index`, and on the leader `raft.leader.lastContact` and, from the autopilot's last
//! report, `autopilot.healthy` / `autopilot.failure_tolerance`), the process figures that have a meaning outside Go
//! (`runtime.num_goroutines` as the tokio tasks alive, `runtime.sys_bytes` as the resident set, where
//! the OS tells it) and the sessions with a TTL; and, as Raft state changes, the `raft.state.*` counters.

use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;

use super::Node;
use crate::env::Env;

const PERIOD: Duration = Duration::from_secs(1);

pub async fn run<E: Env>(node: Arc<Node<E>>) {
    loop {
        tokio::time::sleep(PERIOD).await;
        emit(&node);
        node.telemetry.upkeep();
    }
}

/// `raft.state.leader`, `raft.state.candidate`, `raft.state.follower`: counted on each entry to a state.
pub fn count_state_change<E: Env>(node: &Node<E>, state: ServerState) {
    let name = match state {
        ServerState::Leader => "raft.state.leader",
        ServerState::Candidate => "raft.state.candidate",
        ServerState::Follower => "raft.state.follower",
        ServerState::Learner | ServerState::Shutdown => return,
    };
    node.telemetry.counter(name, 1, &[]);
}

fn emit<E: Env>(node: &Node<E>) {
    let telemetry = &node.telemetry;
    telemetry.gauge(
        "runtime.num_goroutines",
        tokio::runtime::Handle::current().metrics().num_alive_tasks() as f64,
        &[],
    );
    if let Some(bytes) = resident_bytes() {
        telemetry.gauge("runtime.sys_bytes", bytes as f64, &[]);
    }
    if node.config.server {
        let with_ttl = node.state.read().sessions().all().filter(|s| s.ttl_ms > 0).count();
        telemetry.gauge("session_ttl.active", with_ttl as f64, &[]);
    }
    let Some(raft) = &node.raft else { return };
    let metrics = raft.metrics().borrow().clone();
    let last_index = metrics.last_log_index.unwrap_or(0);
    telemetry.gauge("raft.applied_index", metrics.last_applied.map(|l| l.index).unwrap_or(0) as f64, &[]);
    telemetry.gauge("raft.last_index", last_index as f64, &[]);
    if metrics.state != ServerState::Leader {
        return;
    }
    if let Some(ms) = metrics.millis_since_quorum_ack {
        telemetry.sample_ms("raft.leader.lastContact", ms as f64, &[]);
    }
    if let Some(report) = node.autopilot.report() {
        telemetry.gauge("autopilot.healthy", if report.healthy { 1.0 } else { 0.0 }, &[]);
        telemetry.gauge("autopilot.failure_tolerance", report.failure_tolerance as f64, &[]);
    }
}

/// The resident set of this process in bytes (Linux), `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
