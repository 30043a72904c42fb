//! What clients record: one `Op` per request, with simulated invoke and complete times in microseconds.

pub type ClientId = u32;
pub type ServerId = u32;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReadMode {
    Default,
    Consistent,
    Stale,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// Register instance `key` with `value` (unique per write in a run).
    Register { value: String },
    /// Deregister instance `key`.
    Deregister,
    /// Read instance `key`.
    Read { mode: ReadMode },
    /// Write `value` only if the key holds `expected` (`None`: only if absent), as a KV `?cas=` with the
    /// modify index of the read that saw `expected` (values are unique, so index and value name each other).
    Cas { expected: Option<String>, value: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The write was acknowledged.
    WriteOk,
    /// The read was answered: the value seen (`None`: absent) and the response's `X-Consul-Index`.
    ReadOk { value: Option<String>, index: u64 },
    /// Certainly did not take effect (refused before it was sent, or rejected as invalid).
    Failed,
    /// A CAS answered `false`: its condition did not hold when it was applied, and nothing changed.
    CasRefused,
    /// May or may not have taken effect, at any time after it was invoked.
    Unknown,
}

#[derive(Clone, Debug)]
pub struct Op {
    pub client: ClientId,
    pub server: ServerId,
    pub key: String,
    pub kind: OpKind,
    pub invoke_us: u64,
    pub complete_us: u64,
    pub outcome: Outcome,
}

impl Op {
    /// Whether the operation may have changed its key (a refused or failed write did not).
    pub fn is_write(&self) -> bool {
        matches!(self.kind, OpKind::Register { .. } | OpKind::Deregister | OpKind::Cas { .. })
            && !matches!(self.outcome, Outcome::Failed | Outcome::CasRefused)
    }

    /// The value a write sets, if it sets one.
    pub fn written_value(&self) -> Option<&str> {
        match &self.kind {
            OpKind::Register { value } | OpKind::Cas { value, .. } => Some(value),
            _ => None,
        }
    }

    pub fn is_linearizable_read(&self) -> bool {
        matches!(self.kind, OpKind::Read { mode: ReadMode::Default | ReadMode::Consistent })
            && matches!(self.outcome, Outcome::ReadOk { .. })
    }

    /// The value a read saw, if it is a successful read.
    pub fn read_value(&self) -> Option<&Option<String>> {
        match &self.outcome {
            Outcome::ReadOk { value, .. } => Some(value),
            _ => None,
        }
    }
}

/// A time a client believed it held a lock: from its acquire's answer until it began to release it, or
/// until its session could have expired (one TTL after the last renewal it began), whichever came first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockHold {
    pub client: ClientId,
    pub key: String,
    pub session: String,
    pub from_us: u64,
    pub until_us: u64,
}

/// A session as its client saw it: when it was created and renewed (invoke times of answered calls),
/// and when the cluster first said it was gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionLife {
    pub client: ClientId,
    pub session: String,
    pub ttl_us: u64,
    /// Invoke times of the create and of every renewal that succeeded.
    pub alive_at_us: Vec<u64>,
    /// Completion time of the first answer saying the session no longer exists.
    pub gone_at_us: Option<u64>,
}

/// A period in which a check target answered up (or down).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetSpan {
    pub target: usize,
    pub up: bool,
    pub from_us: u64,
    pub until_us: u64,
}

/// An answer to `/v1/health/service/...?passing`: the instance IDs it listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthObservation {
    pub server: ServerId,
    pub invoke_us: u64,
    pub complete_us: u64,
    pub passing: Vec<String>,
}

/// One node's answer to `/v1/agent/members`: each member's name and serf status code (1 alive, 2 leaving,
/// 3 left, 4 failed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembersObservation {
    pub node: String,
    pub invoke_us: u64,
    pub complete_us: u64,
    pub members: Vec<(String, u8)>,
}

/// A server's answer about one node: its `serfHealth` status (`/v1/health/node/<name>`) and whether its
/// service was listed by `/v1/health/service/<service>?passing`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeHealthObservation {
    pub server: ServerId,
    pub invoke_us: u64,
    pub complete_us: u64,
    /// `None` when the catalog has no `serfHealth` check for the node.
    pub serf_health: Option<String>,
    pub service_passing: bool,
}

/// A server's answers to `/v1/status/leader` and `/v1/status/peers` (asked one after the other).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusObservation {
    pub node: String,
    pub invoke_us: u64,
    pub complete_us: u64,
    /// `""` when the server knows no leader.
    pub leader: String,
    pub peers: Vec<String>,
}

/// A server's Raft state as the run loop read it from the node (sampled whenever it changed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftSample {
    pub node: String,
    pub at_us: u64,
    pub term: u64,
    /// Whether the node itself was leader of `term`.
    pub is_leader: bool,
    /// The voters of the node's membership config (empty before bootstrap).
    pub voters: Vec<u64>,
}

#[derive(Default, Clone, Debug)]
pub struct History {
    pub ops: Vec<Op>,
    /// When each server started a new incarnation (restart after a crash), in simulated microseconds.
    pub restarts: Vec<(ServerId, u64)>,
    pub holds: Vec<LockHold>,
    pub sessions: Vec<SessionLife>,
    /// The check targets' schedule and the health answers (`check-flaps`).
    pub targets: Vec<TargetSpan>,
    pub health: Vec<HealthObservation>,
    /// Periods `[from, until)` with a partition or a crashed server.
    pub disturbed: Vec<(u64, u64)>,
    /// The gossip scenarios' observations (`checker::membership`).
    pub members: Vec<MembersObservation>,
    pub node_health: Vec<NodeHealthObservation>,
    pub status: Vec<StatusObservation>,
    pub raft: Vec<RaftSample>,
    /// When each fault was injected (simulated microseconds).
    pub faults: Vec<(u64, crate::faults::Fault)>,
    /// When each scripted step of a gossip scenario's client completed (`"leave"`, ...).
    pub marks: Vec<(u64, String)>,
    /// `acl-revocation`: each token's delete, by token, with when it was acknowledged.
    pub revocations: Vec<(usize, u64)>,
    /// `acl-revocation`: every write made with a token.
    pub token_writes: Vec<crate::acl_client::TokenWrite>,
    /// `gossip-key-rotation`: the operator's keyring steps and listings.
    pub keyring: Vec<super::keyring::KeyringObservation>,
    /// `client-agent-churn`: each agent's own services and checks beside the catalog's under its node.
    pub agent_views: Vec<AgentView>,
}

/// One look at a client agent: what it holds (`/v1/agent/services`, `/v1/agent/checks`) and what a server
/// answered for its node (`/v1/catalog/node/:node`, `/v1/health/node/:node`, without `serfHealth`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentView {
    pub agent: String,
    /// When the catalog's answer came (simulated microseconds).
    pub at_us: u64,
    pub local_services: std::collections::BTreeSet<String>,
    pub catalog_services: std::collections::BTreeSet<String>,
    pub local_checks: std::collections::BTreeSet<String>,
    pub catalog_checks: std::collections::BTreeSet<String>,
}

impl History {
    pub fn push(&mut self, op: Op) {
        assert!(op.invoke_us <= op.complete_us, "an operation completes after it is invoked");
        self.ops.push(op);
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}
