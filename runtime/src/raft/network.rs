//! openraft's network over the RPC pool. A refused or timed-out connection is reported as `Unreachable`
//! so openraft backs off instead of retrying at once (under a turmoil partition, connect fails instantly
//! and an immediate retry would spin without simulated time passing). Peers are dialled at the address
//! the node last learnt for them (`PeerAddresses`, from discovery) before the one in the Raft
//! configuration: servers are known by Raft ID, so a cluster whose servers all came back on new
//! addresses still reaches a quorum. While the leader fence is up (`raft::leader_fence`: the node hands
//! its leadership over) nothing is sent, so the voters' leader lease runs out and they can elect another.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;

use super::leader_fence::LeaderFence;
use super::{NodeId, TypeConfig};
use crate::env::Env;
use crate::raft::messages::{Reply, Request};
use crate::rpc::pool::RpcPool;

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

/// The RPC address last learnt for each server, by Raft ID; it wins over the configuration's address.
/// It also keeps when each peer last answered an `AppendEntries` (heartbeats included): the leader's
/// "last contact" with a follower, which the autopilot's health check reads.
#[derive(Debug, Default)]
pub struct PeerAddresses {
    by_raft_id: RwLock<BTreeMap<NodeId, SocketAddr>>,
    answered_at: RwLock<BTreeMap<NodeId, tokio::time::Instant>>,
}

impl PeerAddresses {
    /// Remembers where `raft_id` now answers; true if that is news. Word from the server itself
    /// (`first_hand`) replaces what was known; word passed on by another server only fills a gap, since
    /// it may be older than what we heard ourselves.
    pub fn learn(&self, raft_id: NodeId, addr: SocketAddr, first_hand: bool) -> bool {
        let mut by_raft_id = self.by_raft_id.write().expect("peer addresses lock");
        match by_raft_id.get(&raft_id) {
            Some(known) if *known == addr => false,
            Some(_) if !first_hand => false,
            _ => {
                by_raft_id.insert(raft_id, addr);
                true
            }
        }
    }

    pub fn get(&self, raft_id: NodeId) -> Option<SocketAddr> {
        self.by_raft_id.read().expect("peer addresses lock").get(&raft_id).copied()
    }

    /// Notes that `raft_id` answered an `AppendEntries` now.
    pub fn note_answer(&self, raft_id: NodeId) {
        self.answered_at.write().expect("peer contacts lock").insert(raft_id, tokio::time::Instant::now());
    }

    /// How long ago `raft_id` last answered an `AppendEntries`; `None`: never (since this process started).
    pub fn since_last_answer(&self, raft_id: NodeId) -> Option<Duration> {
        self.answered_at.read().expect("peer contacts lock").get(&raft_id).map(|at| at.elapsed())
    }
}

pub struct Network<E: Env> {
    pool: Arc<RpcPool<E>>,
    addresses: Arc<PeerAddresses>,
    fence: Arc<LeaderFence>,
}

impl<E: Env> Network<E> {
    pub fn new(pool: Arc<RpcPool<E>>, addresses: Arc<PeerAddresses>, fence: Arc<LeaderFence>) -> Network<E> {
        Network { pool, addresses, fence }
    }
}

pub struct PeerClient<E: Env> {
    pool: Arc<RpcPool<E>>,
    addresses: Arc<PeerAddresses>,
    fence: Arc<LeaderFence>,
    target: NodeId,
    /// The address in the Raft configuration.
    configured: Result<SocketAddr, String>,
}

impl<E: Env> RaftNetworkFactory<TypeConfig> for Network<E> {
    type Network = PeerClient<E>;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient<E> {
        let configured = node.addr.parse::<SocketAddr>().map_err(|e| format!("bad peer address {:?}: {e}", node.addr));
        PeerClient {
            pool: self.pool.clone(),
            addresses: self.addresses.clone(),
            fence: self.fence.clone(),
            target,
            configured,
        }
    }
}

fn unreachable<E: std::error::Error>(err: impl ToString) -> RPCError<NodeId, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other(err.to_string())))
}

fn unexpected<E: std::error::Error>(reply: &Reply) -> RPCError<NodeId, BasicNode, E> {
    RPCError::Network(NetworkError::new(&std::io::Error::other(format!("unexpected reply {reply:?}"))))
}

impl<E: Env> PeerClient<E> {
    async fn call<Err: std::error::Error>(
        &self,
        request: Request,
        timeout: Duration,
    ) -> Result<Reply, RPCError<NodeId, BasicNode, Err>> {
        if let Some(reason) = self.fence.reason() {
            // Unreachable, so openraft backs off rather than spinning while the fence is up.
            return Err(unreachable(format!("leader fence raised: {}", reason.message())));
        }
        let addr = match self.addresses.get(self.target) {
            Some(learnt) => learnt,
            None => self.configured.clone().map_err(unreachable)?,
        };
        self.pool.call(addr, &request, timeout).await.map_err(|e| {
            tracing::trace!(target: "conclave::rpc", %addr, error = %e, "raft rpc failed");
            unreachable(e)
        })
    }
}

impl<E: Env> RaftNetwork<TypeConfig> for PeerClient<E> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        match self.call(Request::AppendEntries(rpc), option.hard_ttl()).await? {
            Reply::AppendEntries(Ok(response)) => {
                self.addresses.note_answer(self.target);
                Ok(response)
            }
            Reply::AppendEntries(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(unexpected(&other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        match self.call(Request::InstallSnapshot(rpc), option.hard_ttl()).await? {
            Reply::InstallSnapshot(Ok(response)) => Ok(response),
            Reply::InstallSnapshot(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(unexpected(&other)),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> Result<VoteResponse<NodeId>, RpcErr> {
        match self.call(Request::Vote(rpc), option.hard_ttl()).await? {
            Reply::Vote(Ok(response)) => Ok(response),
            Reply::Vote(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(unexpected(&other)),
        }
    }
}
