//! Handing leadership to another voter, as openraft 0.9 has no leadership transfer of its own: the
//! leader picks a successor (the one named, or the most caught-up voter), and sends it `ElectNow`; the
//! successor starts an election at once (`Raft::trigger().elect()`) and, its log being as long as any,
//! wins it. Voters refuse a candidate while their leader lease lasts (openraft's `leader_lease`, the
//! maximum election timeout, renewed by every heartbeat), so a leader that transfers first raises the
//! leader fence and lets the lease run out. Used by the disk watchdog and by
//! `operator raft transfer-leader`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;

use super::Node;
use crate::env::Env;
use crate::raft::leader_fence::FenceReason;
use crate::raft::messages::{Reply, Request};
use crate::raft::NodeId;

/// How long `ElectNow` may take to be answered.
const ELECT_NOW_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a transfer waits for the successor to catch up before the fence goes up.
const CATCH_UP_WAIT_MAX: Duration = Duration::from_secs(2);
/// Margin past the leader lease before asking the successor, for heartbeats still in flight.
const LEASE_MARGIN: Duration = Duration::from_millis(100);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Why a transfer did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferError {
    /// This server does not lead (or is already handing over); nothing changed.
    NotLeader,
    /// The named server is not a voter of the cluster; nothing changed.
    UnknownServer(String),
    /// The named server already leads; nothing changed.
    AlreadyLeader,
    /// There is no other voter to hand over to; nothing changed.
    NoSuccessor,
    /// The successor was not elected in time; the fence is lowered and this server may lead on.
    Failed(String),
}

impl std::fmt::Display for TransferError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransferError::NotLeader => write!(f, "this server is not the leader"),
            TransferError::UnknownServer(id) => write!(f, "cannot find peer {id:?}: it is not a voter"),
            TransferError::AlreadyLeader => write!(f, "that server is already the leader"),
            TransferError::NoSuccessor => write!(f, "no other voter to transfer leadership to"),
            TransferError::Failed(why) => write!(f, "leadership transfer failed: {why}"),
        }
    }
}

/// The voter other than `leader` with the longest matched log (ties: the lowest ID); `matched` is the
/// leader's replication view, a voter missing from it counting as having matched nothing.
pub fn most_caught_up(voters: &[NodeId], matched: &[(NodeId, Option<u64>)], leader: NodeId) -> Option<NodeId> {
    let matched_of = |id: NodeId| matched.iter().find(|(m, _)| *m == id).and_then(|(_, index)| *index);
    // max_by_key keeps the last of equal keys: reverse the order so that ties go to the lowest ID.
    voters.iter().rev().copied().filter(|id| *id != leader).max_by_key(|id| matched_of(*id).map_or(0, |i| i + 1))
}

impl<E: Env> Node<E> {
    /// Where server `raft_id` answers RPC: learnt through discovery, else the Raft configuration's address.
    pub fn server_rpc_addr(&self, raft_id: NodeId) -> Option<SocketAddr> {
        if let Some(addr) = self.peer_addresses.get(raft_id) {
            return Some(addr);
        }
        let raft = self.raft.as_ref()?;
        let metrics = raft.metrics();
        let metrics = metrics.borrow();
        metrics.membership_config.membership().get_node(&raft_id).and_then(|n| n.addr.parse().ok())
    }

    /// The voters and, as the leader last saw it, each one's matched log index.
    fn replication_view(&self) -> (Vec<NodeId>, Vec<(NodeId, Option<u64>)>) {
        let Some(raft) = &self.raft else { return (Vec::new(), Vec::new()) };
        let metrics = raft.metrics();
        let metrics = metrics.borrow();
        let voters = metrics.membership_config.membership().voter_ids().collect();
        let matched = match &metrics.replication {
            Some(replication) => replication.iter().map(|(id, log)| (*id, log.map(|l| l.index))).collect(),
            None => Vec::new(),
        };
        (voters, matched)
    }

    /// Asks `target` to stand for election now.
    async fn send_elect_now(&self, target: NodeId) -> Result<(), String> {
        let addr = self.server_rpc_addr(target).ok_or_else(|| format!("no address for server {target}"))?;
        match self.pool.call(addr, &Request::ElectNow { from: self.raft_id }, ELECT_NOW_TIMEOUT).await {
            Ok(Reply::ElectNow(result)) => result,
            Ok(other) => Err(format!("unexpected reply {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Waits until Raft names a leader other than this server, up to `wait_max`; the leader it names.
    async fn wait_for_other_leader(&self, wait_max: Duration) -> Option<NodeId> {
        let raft = self.raft.as_ref()?;
        let mut metrics = raft.metrics();
        let until = tokio::time::timeout(wait_max, async {
            loop {
                let leader = metrics.borrow_and_update().current_leader;
                if let Some(leader) = leader.filter(|l| *l != self.raft_id) {
                    return leader;
                }
                if metrics.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        });
        until.await.ok()
    }
}

/// The receiver's side of `ElectNow`: a voter that follows `from` (or no one) starts an election at once.
pub async fn handle_elect_now<E: Env>(node: &Node<E>, from: NodeId) -> Result<(), String> {
    let Some(raft) = &node.raft else { return Err("client agents take no part in Raft".to_string()) };
    let (state, leader, is_voter) = {
        let metrics = raft.metrics();
        let metrics = metrics.borrow();
        let is_voter = metrics.membership_config.membership().voter_ids().any(|id| id == node.raft_id);
        (metrics.state, metrics.current_leader, is_voter)
    };
    if !is_voter || state == ServerState::Leader {
        return Err(format!("server {} is not a follower that could stand for election ({state:?})", node.raft_id));
    }
    if leader.is_some_and(|leader| leader != from) {
        return Err(format!("server {} follows another leader ({leader:?})", node.raft_id));
    }
    tracing::info!(target: "conclave::event", node = %node.config.node_name, from, "election requested");
    raft.trigger().elect().await.map_err(|e| e.to_string())
}

/// A leader whose disk stalled (the fence is up already) asks its most caught-up voter to stand now.
/// The election may still wait for the voters' leases to run out; the fence keeps heartbeats from
/// renewing them.
pub async fn elect_successor<E: Env>(node: Arc<Node<E>>, target: Option<NodeId>) {
    let (voters, matched) = node.replication_view();
    let Some(target) = target.or_else(|| most_caught_up(&voters, &matched, node.raft_id)) else { return };
    if let Err(why) = node.send_elect_now(target).await {
        tracing::info!(target: "conclave::event", node = %node.config.node_name, target, %why, "election request refused");
    }
}

/// `operator raft transfer-leader`: hands leadership to `requested` (a Raft ID or a node ID, as the
/// voters are listed by `operator raft list-peers`), or to the most caught-up voter; the new leader.
pub async fn transfer_leadership<E: Env>(
    node: &Arc<Node<E>>,
    requested: Option<&str>,
) -> Result<NodeId, TransferError> {
    let Some(raft) = &node.raft else { return Err(TransferError::NotLeader) };
    if raft.metrics().borrow().state != ServerState::Leader || node.fence.is_raised() {
        return Err(TransferError::NotLeader);
    }
    let (voters, matched) = node.replication_view();
    let target = match requested {
        Some(id) => {
            let target = voters
                .iter()
                .copied()
                .find(|voter| node.server_id_matches(*voter, id))
                .ok_or_else(|| TransferError::UnknownServer(id.to_string()))?;
            if target == node.raft_id {
                return Err(TransferError::AlreadyLeader);
            }
            target
        }
        None => most_caught_up(&voters, &matched, node.raft_id).ok_or(TransferError::NoSuccessor)?,
    };
    wait_caught_up(node, target).await;
    node.fence.raise(FenceReason::Transfer);
    tracing::info!(target: "conclave::event", node = %node.config.node_name, target, "leadership transfer");
    let lease = node.config.raft.election_timeout_max;
    tokio::time::sleep(lease + LEASE_MARGIN).await;
    let outcome = match node.send_elect_now(target).await {
        Err(why) => Err(TransferError::Failed(why)),
        Ok(()) => match node.wait_for_other_leader(lease * 3).await {
            Some(leader) => Ok(leader),
            None => Err(TransferError::Failed("no new leader was elected in time".to_string())),
        },
    };
    node.fence.lower(FenceReason::Transfer);
    outcome
}

/// Waits (a bounded time) until `target` has matched this leader's last log entry, so it can win.
async fn wait_caught_up<E: Env>(node: &Node<E>, target: NodeId) {
    let Some(raft) = &node.raft else { return };
    let deadline = tokio::time::Instant::now() + CATCH_UP_WAIT_MAX;
    while tokio::time::Instant::now() < deadline {
        let (last, matched) = {
            let metrics = raft.metrics();
            let metrics = metrics.borrow();
            let matched = metrics.replication.as_ref().and_then(|r| r.get(&target).copied().flatten());
            (metrics.last_log_index, matched.map(|l| l.index))
        };
        if matched >= last {
            return;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (voters, matched, leader) → successor.
    type Case = (&'static [NodeId], &'static [(NodeId, Option<u64>)], NodeId, Option<NodeId>);

    #[test]
    fn successor_is_the_voter_with_the_longest_matched_log() {
        let table: [Case; 5] = [
            (&[1, 2, 3], &[(2, Some(10)), (3, Some(12))], 1, Some(3)),
            (&[1, 2, 3], &[(2, Some(12)), (3, Some(12))], 1, Some(2)),
            (&[1, 2, 3], &[(2, None), (3, Some(0))], 1, Some(3)),
            (&[1, 2, 3], &[], 2, Some(1)),
            (&[1], &[], 1, None),
        ];
        for (voters, matched, leader, expected) in table {
            assert_eq!(most_caught_up(voters, matched, leader), expected, "{voters:?} {matched:?} leader {leader}");
        }
    }
}
