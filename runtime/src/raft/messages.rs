//! What agents say to each other over RPC: Raft's own messages and, beside them, the node's requests
//! (forwarded writes, read indexes, server discovery, session renewals, forwarded HTTP requests).
//! They ride the generic framed transport of `rpc/`.

use conclave_core::state::{Command, Response};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::{Deserialize, Serialize};

use super::{NodeId, TypeConfig};
use crate::rpc::RpcRequest;

/// What a server tells another about itself when they discover each other.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServerInfo {
    pub raft_id: NodeId,
    pub node_name: String,
    /// The server RPC address peers reach it on (advertise address and server port).
    pub rpc_addr: String,
    pub datacenter: String,
    pub bootstrap_expect: u32,
    /// Client agents say hello too (to learn the servers) but are never counted as servers.
    pub server: bool,
}

/// One RPC; built once per call and moved into the frame, so its largest variant's size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A write a follower forwards to the leader, with the authority it is made under (None: the
    /// cluster's own write, or ACLs off).
    Forward(Command, Option<conclave_core::acl::Authority>),
    /// A client agent asks a server what a token may do.
    ResolveToken {
        secret_id: String,
    },
    /// A follower asks the leader for a read index (leadership confirmed by a quorum).
    ReadIndex,
    /// Server discovery on the LAN port: "here I am, whom do you know?"
    Hello(ServerInfo),
    /// A follower passes a session renewal to the leader, which keeps the TTL timers.
    RenewSession {
        id: String,
    },
    /// An HTTP API request a client agent forwards to a server, answered as the server would answer it.
    Http {
        method: String,
        path_and_query: String,
        body: Vec<u8>,
        /// The request's ACL token (the client agent's default token when it carried none).
        token: String,
    },
    /// A keyring operation on the receiver's keyring of one gossip pool (the LAN pool's arrives on the
    /// LAN port sealed under the gossip key; the WAN pool's on a server's RPC port).
    Keyring {
        pool: crate::security::keyring::KeyPool,
        op: crate::security::keyring::KeyringOp,
    },
    /// auto_encrypt: a client agent that holds only the CA asks a server to sign its certificate.
    SignClientCertificate(SignRequest),
    /// Is this connection still alive? Answered with `Reply::Pong`, changes nothing.
    Ping,
    /// A leader handing over (`node::step_down`) asks a voter that follows it to stand for election now.
    ElectNow {
        from: NodeId,
    },
    /// A client agent's anti-entropy asks a server what the catalog holds under its node (with ACLs on,
    /// `token` needs `node:read` on it).
    NodeEntries {
        node: String,
        token: String,
    },
}

/// What a client agent asks a server to sign through auto_encrypt.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignRequest {
    /// PEM of a certificate signing request; only its key is used.
    pub csr_pem: String,
    pub node: String,
    /// The agent's token (with ACLs on, it needs `node:write` on `node`).
    pub token: String,
    /// `auto_encrypt.dns_san` / `ip_san`: extra names the client wants in its certificate.
    pub dns_sans: Vec<String>,
    pub ip_sans: Vec<std::net::IpAddr>,
}

impl RpcRequest for Request {
    type Reply = Reply;

    /// Raft RPCs, read indexes, discovery, renewals and HTTP GETs are idempotent; a forwarded write (a
    /// CAS, a session create, a transaction) or a forwarded HTTP write is not, so it must never be resent
    /// once it may have been delivered.
    fn is_idempotent(&self) -> bool {
        match self {
            Request::Forward(..) => false,
            Request::Http { method, .. } => method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD"),
            _ => true,
        }
    }

    fn liveness_probe() -> Option<Request> {
        Some(Request::Ping)
    }
}

/// Why a forwarded write or read-index request was not served.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardError {
    /// The receiver is not the leader (it may name the one it knows). The write was not proposed.
    NotLeader { leader_rpc_addr: Option<String> },
    /// The outcome is unknown (e.g. leadership lost while the entry was in flight).
    Failed(String),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    Forward(Result<(u64, Response), ForwardError>),
    ReadIndex(Result<u64, ForwardError>),
    /// The renewed session, or None when it does not exist.
    RenewSession(Result<Option<conclave_core::kv::Session>, ForwardError>),
    /// Every server the receiver knows, itself included, and whether it already belongs to a formed cluster.
    Hello {
        known: Vec<ServerInfo>,
        cluster_formed: bool,
    },
    Http {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// What a token may do, or why it resolves to nothing.
    Resolved(Result<conclave_core::acl::ResolvedIdentity, conclave_core::acl::AclError>),
    /// The receiver's keys after a keyring operation, or why it failed.
    Keyring(Result<crate::security::keyring::KeyringAnswer, String>),
    /// auto_encrypt: the signed certificate and the CA roots to trust, in PEM.
    ClientCertificate(Result<(String, Vec<String>), String>),
    /// The receiver cannot serve this request at all.
    Refused(String),
    /// The answer to `Ping`.
    Pong,
    /// The election was started, or why not.
    ElectNow(Result<(), String>),
    /// The catalog's entries under the asked node, or why the server cannot tell.
    NodeEntries(Result<conclave_core::catalog::NodeEntries, String>),
}
