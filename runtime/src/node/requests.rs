//! The two doors to the replicated catalog: `write` (propose through Raft, forwarding to the leader) and
//! `read_barrier` (read-index through the leader, then wait until this node has applied that far). Both
//! retry while there is no leader, up to the node's request timeout. A leader behind its fence
//! (`leader_fence`: handing over) serves neither; what waited on it is released with an unknown
//! outcome, and its own callers are sent on to another voter.

use std::io;
use std::time::Duration;

use conclave_core::acl::Authority;
use conclave_core::state::{Command, Proposal, Response};
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};

use super::Node;
use crate::env::Env;
use crate::raft::messages::{ForwardError, Reply, Request};
use crate::raft::NodeId;

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// No leader could be found in time; a write was not proposed.
    NoLeader,
    /// The write may or may not have been applied.
    Unknown(String),
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::NoLeader => write!(f, "No cluster leader"),
            RequestError::Unknown(why) => write!(f, "rpc error: {why}"),
        }
    }
}

/// Pause between attempts while the cluster has no leader.
const LEADER_RETRY_INTERVAL: Duration = Duration::from_millis(100);

fn parse_addr(addr: &str) -> Option<std::net::SocketAddr> {
    addr.parse().ok()
}

impl<E: Env> Node<E> {
    /// `client.rpc`: a client agent sends an RPC to a server.
    pub fn count_client_rpc(&self) {
        if !self.config.server {
            self.telemetry.counter("client.rpc", 1, &[]);
        }
    }

    /// The server a client agent forwards to: known servers in turn, so a dead one is skipped on retry.
    pub fn pick_server(&self) -> Option<String> {
        let servers = self.known_servers.lock().expect("known servers lock");
        if servers.is_empty() {
            return None;
        }
        let turn = self.next_server.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % servers.len();
        servers.values().nth(turn).map(|s| s.rpc_addr.clone())
    }

    /// Proposes `command` on this node if it leads, else reports where the leader is.
    pub async fn propose_local(
        &self,
        command: Command,
        authority: Option<Authority>,
    ) -> Result<(u64, Response), ForwardError> {
        let Some(raft) = &self.raft else {
            return Err(ForwardError::NotLeader { leader_rpc_addr: self.pick_server() });
        };
        let command = Proposal { proposed_at_ms: self.env.unix_time_ms(), command, authority };
        if self.config.faults.ack_before_commit && self.is_leader() {
            // Planted bug (FaultSwitches::ack_before_commit): acknowledge before the entry commits.
            let raft = raft.clone();
            let index = raft.metrics().borrow().last_log_index.unwrap_or(0) + 1;
            tokio::spawn(async move {
                let _ = raft.client_write(command).await;
            });
            return Ok((index, Response::Applied));
        }
        if self.fence.is_raised() {
            return Err(ForwardError::NotLeader { leader_rpc_addr: None });
        }
        let endpoint = endpoint_metric(&command.command);
        let start = tokio::time::Instant::now();
        let written = tokio::select! {
            written = raft.client_write(command) => written,
            reason = self.fence.raised() => {
                let why = format!("{}; the write may or may not have been applied", reason.message());
                return Err(ForwardError::Failed(why));
            }
        };
        match written {
            Ok(written) => {
                self.telemetry.counter("raft.apply", 1, &[]);
                self.telemetry.since("raft.commitTime", start, &[]);
                if let Some(name) = endpoint {
                    self.telemetry.since(name, start, &[]);
                }
                Ok((written.log_id.index, written.data))
            }
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(to))) => {
                Err(ForwardError::NotLeader { leader_rpc_addr: to.leader_node.map(|n| n.addr) })
            }
            Err(e) => Err(ForwardError::Failed(e.to_string())),
        }
    }

    /// Applies `command` through Raft and returns the index it was written at and what applying answered.
    /// A server that is not the leader (or a client agent) forwards to the leader, following the
    /// leader hints of the servers it asks.
    pub async fn write(&self, command: Command) -> Result<(u64, Response), RequestError> {
        self.write_as(command, None).await
    }

    /// Like [`Node::write`], on behalf of `authority` (None: the cluster's own write): the state checks
    /// it when the entry applies and answers `Response::Denied` if the token may not.
    pub async fn write_as(
        &self,
        command: Command,
        authority: Option<Authority>,
    ) -> Result<(u64, Response), RequestError> {
        let authority = match authority {
            Some(authority) if self.config.faults.acl_check_locally => {
                // Planted bug (FaultSwitches::acl_check_locally): decide on this server's own copy of the
                // ACL table and send the write on as already authorized.
                if let Err(refused) = self.state.read().authorize(&authority, &command) {
                    return Ok((0, Response::Denied(refused.to_string())));
                }
                None
            }
            other => other,
        };
        let deadline = tokio::time::Instant::now() + self.config.request_timeout;
        let mut hint: Option<String> = None;
        loop {
            let outcome = match hint.take() {
                Some(addr) => self.forward_write(&addr, &command, &authority, deadline).await,
                None => {
                    let proposed =
                        tokio::time::timeout_at(deadline, self.propose_local(command.clone(), authority.clone())).await;
                    let timed_out =
                        || Err(ForwardError::Failed("timed out waiting for the write to commit".to_string()));
                    match proposed.unwrap_or_else(|_| timed_out()) {
                        Err(ForwardError::NotLeader { leader_rpc_addr: Some(addr) }) => {
                            self.forward_write(&addr, &command, &authority, deadline).await
                        }
                        other => other.map_err(RetryOr::from_forward_error),
                    }
                }
            };
            match outcome {
                Ok(written) => return Ok(written),
                Err(RetryOr::Fail(e)) => return Err(e),
                Err(RetryOr::Redirect(addr)) => hint = Some(addr),
                Err(RetryOr::Retry) => {}
            }
            if tokio::time::Instant::now() + LEADER_RETRY_INTERVAL >= deadline {
                return Err(RequestError::NoLeader);
            }
            let fenced = self.fence.is_raised();
            if hint.is_none() || fenced {
                tokio::time::sleep(LEADER_RETRY_INTERVAL).await;
            }
            if fenced && hint.is_none() {
                // This node's Raft may still believe it leads (its task stuck on the disk): ask a voter.
                hint = self.other_voter_addr();
            }
        }
    }

    /// Another voter's RPC address, a different one on each call, for a fenced leader's own requests.
    fn other_voter_addr(&self) -> Option<String> {
        let raft = self.raft.as_ref()?;
        let voters: Vec<NodeId> = {
            let metrics = raft.metrics();
            let metrics = metrics.borrow();
            metrics.membership_config.membership().voter_ids().filter(|id| *id != self.raft_id).collect()
        };
        if voters.is_empty() {
            return None;
        }
        let turn = self.next_server.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % voters.len();
        self.server_rpc_addr(voters[turn]).map(|addr| addr.to_string())
    }

    async fn forward_write(
        &self,
        addr: &str,
        command: &Command,
        authority: &Option<Authority>,
        deadline: tokio::time::Instant,
    ) -> Result<(u64, Response), RetryOr> {
        let Some(addr) = parse_addr(addr) else {
            return Err(RetryOr::Retry);
        };
        let timeout = deadline.saturating_duration_since(tokio::time::Instant::now());
        self.count_client_rpc();
        match self.pool.call(addr, &Request::Forward(command.clone(), authority.clone()), timeout).await {
            Ok(Reply::Forward(Err(ForwardError::NotLeader { leader_rpc_addr: Some(leader) })))
                if leader != addr.to_string() =>
            {
                Err(RetryOr::Redirect(leader))
            }
            Ok(Reply::Forward(result)) => result.map_err(RetryOr::from_forward_error),
            Ok(other) => Err(RetryOr::Fail(RequestError::Unknown(format!("unexpected reply {other:?}")))),
            // Refused: nothing was sent, so the write did not happen and may be retried.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Err(RetryOr::Retry),
            Err(e) => Err(RetryOr::Fail(RequestError::Unknown(e.to_string()))),
        }
    }

    /// The index a linearizable read must wait for, if this node leads.
    pub async fn read_index_local(&self) -> Result<u64, ForwardError> {
        let Some(raft) = &self.raft else {
            return Err(ForwardError::NotLeader { leader_rpc_addr: self.pick_server() });
        };
        if self.fence.is_raised() {
            return Err(ForwardError::NotLeader { leader_rpc_addr: None });
        }
        let read = tokio::select! {
            read = raft.get_read_log_id() => read,
            reason = self.fence.raised() => return Err(ForwardError::Failed(reason.message().to_string())),
        };
        match read {
            Ok((read_log_id, _applied)) => Ok(read_log_id.map(|l| l.index).unwrap_or(0)),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(to))) => {
                Err(ForwardError::NotLeader { leader_rpc_addr: to.leader_node.map(|n| n.addr) })
            }
            Err(e) => Err(ForwardError::Failed(e.to_string())),
        }
    }

    /// Waits until a read of local state is linearizable: the leader confirmed its leadership with a
    /// quorum after the read began, and this node has applied up to the leader's commit index.
    pub async fn read_barrier(&self) -> Result<(), RequestError> {
        if self.config.faults.local_reads {
            return Ok(()); // Planted bug (FaultSwitches::local_reads).
        }
        let deadline = tokio::time::Instant::now() + self.config.request_timeout;
        loop {
            let local = tokio::time::timeout_at(deadline, self.read_index_local()).await;
            let index = match local.unwrap_or_else(|_| Err(ForwardError::Failed("timed out".to_string()))) {
                Ok(index) => Some(index),
                Err(ForwardError::NotLeader { leader_rpc_addr: Some(addr) }) => {
                    self.forward_read_index(&addr, deadline).await
                }
                Err(_) if self.fence.is_raised() => match self.other_voter_addr() {
                    Some(addr) => self.forward_read_index(&addr, deadline).await,
                    None => None,
                },
                Err(_) => None,
            };
            if let Some(index) = index {
                return self.wait_applied(index, deadline).await;
            }
            if tokio::time::Instant::now() + LEADER_RETRY_INTERVAL >= deadline {
                return Err(RequestError::NoLeader);
            }
            tokio::time::sleep(LEADER_RETRY_INTERVAL).await;
        }
    }

    async fn forward_read_index(&self, addr: &str, deadline: tokio::time::Instant) -> Option<u64> {
        let addr = parse_addr(addr)?;
        let timeout = deadline.saturating_duration_since(tokio::time::Instant::now());
        match self.pool.call(addr, &Request::ReadIndex, timeout).await {
            Ok(Reply::ReadIndex(Ok(index))) => Some(index),
            // One hop more: a voter asked on a fenced leader's behalf names the leader it follows.
            Ok(Reply::ReadIndex(Err(ForwardError::NotLeader { leader_rpc_addr: Some(leader) })))
                if self.fence.is_raised() && leader != addr.to_string() =>
            {
                let leader = parse_addr(&leader)?;
                let timeout = deadline.saturating_duration_since(tokio::time::Instant::now());
                match self.pool.call(leader, &Request::ReadIndex, timeout).await {
                    Ok(Reply::ReadIndex(Ok(index))) => Some(index),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Waits until this node's catalog has applied `index`.
    pub async fn wait_applied(&self, index: u64, deadline: tokio::time::Instant) -> Result<(), RequestError> {
        let mut applied = self.state.subscribe();
        let reached = tokio::time::timeout_at(deadline, applied.wait_for(|applied| *applied >= index)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(RequestError::NoLeader),
        }
    }
}

/// Whether a failed attempt may be retried (nothing was applied) or must be reported.
enum RetryOr {
    Retry,
    /// Not proposed; ask this server next (the leader another server named).
    Redirect(String),
    Fail(RequestError),
}

impl RetryOr {
    fn from_forward_error(error: ForwardError) -> RetryOr {
        match error {
            ForwardError::NotLeader { .. } => RetryOr::Retry,
            ForwardError::Failed(why) => RetryOr::Fail(RequestError::Unknown(why)),
        }
    }
}

/// The endpoint timer Consul's server records for a write of this kind.
fn endpoint_metric(command: &Command) -> Option<&'static str> {
    match command {
        Command::Kv(_) => Some("kvs.apply"),
        Command::Txn(_) => Some("txn.apply"),
        Command::Session(_) => Some("session.apply"),
        Command::Catalog(conclave_core::catalog::CatalogCommand::Register(_)) => Some("catalog.register"),
        Command::Catalog(conclave_core::catalog::CatalogCommand::Deregister(_)) => Some("catalog.deregister"),
        Command::Acl(_) => Some("acl.apply"),
        _ => None,
    }
}
