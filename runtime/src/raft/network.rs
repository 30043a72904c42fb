//! openraft's network over the RPC pool. A refused or timed-out connection is reported as `Unreachable`
//! so openraft backs off instead of retrying at once (under a turmoil partition, connect fails instantly
//! and an immediate retry would spin without simulated time passing).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;

use super::{NodeId, TypeConfig};
use crate::env::Env;
use crate::raft::messages::{Reply, Request};
use crate::rpc::pool::RpcPool;

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

pub struct Network<E: Env> {
    pool: Arc<RpcPool<E>>,
}

impl<E: Env> Network<E> {
    pub fn new(pool: Arc<RpcPool<E>>) -> Network<E> {
        Network { pool }
    }
}

pub struct PeerClient<E: Env> {
    pool: Arc<RpcPool<E>>,
    target: NodeId,
    addr: Result<SocketAddr, String>,
}

impl<E: Env> RaftNetworkFactory<TypeConfig> for Network<E> {
    type Network = PeerClient<E>;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient<E> {
        let addr = node.addr.parse::<SocketAddr>().map_err(|e| format!("bad peer address {:?}: {e}", node.addr));
        PeerClient { pool: self.pool.clone(), target, addr }
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
        let addr = self.addr.clone().map_err(unreachable)?;
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
            Reply::AppendEntries(Ok(response)) => Ok(response),
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
