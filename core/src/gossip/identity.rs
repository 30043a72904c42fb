//! Who a gossip member is: its name, its gossip address, a generation that a restarted node bumps to rejoin,
//! and Consul's tags (role, dc, server RPC port, build, bootstrap-expect, protocol versions).
//!
//! The whole identity travels in every gossip header and membership update (foca's design: metadata lives
//! in the identity), so it is kept small: bincode varints, short strings with byte limits checked on decode.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Longest node name accepted from a peer (Consul allows 63-byte DNS labels; names may be FQDNs).
pub const NODE_NAME_BYTES_MAX: usize = 128;
/// Longest tag string (dc, build) accepted from a peer.
pub const TAG_BYTES_MAX: usize = 64;

/// Consul's `role` tag: `consul` for servers, `node` for clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    Server,
    Client,
}

impl Role {
    /// The tag value Consul shows (`role=consul` / `role=node`).
    pub fn as_tag(self) -> &'static str {
        match self {
            Role::Server => "consul",
            Role::Client => "node",
        }
    }
}

/// Consul's serf tags, typed. `members` shows them as strings through [`Tags::to_consul`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tags {
    pub role: Role,
    /// Datacenter (`dc`).
    pub dc: String,
    /// Server RPC port (`port`, 8300 by default); 0 on clients.
    pub rpc_port: u16,
    /// Build version (`build`), e.g. `0.1.0`.
    pub build: String,
    /// `-bootstrap-expect` (`expect`); 0 when not set.
    pub bootstrap_expect: u8,
    /// Protocol versions: lowest, highest and current spoken (`vsn_min`, `vsn_max`, `vsn`).
    pub protocol_min: u8,
    pub protocol_max: u8,
    pub protocol_cur: u8,
}

impl Tags {
    /// Tags of a server in `dc`, listening for RPC on `rpc_port`.
    pub fn server(dc: &str, rpc_port: u16, bootstrap_expect: u8) -> Tags {
        Tags { role: Role::Server, rpc_port, bootstrap_expect, ..Tags::client(dc) }
    }

    /// Tags of a client agent in `dc`.
    pub fn client(dc: &str) -> Tags {
        Tags {
            role: Role::Client,
            dc: dc.to_string(),
            rpc_port: 0,
            build: env!("CARGO_PKG_VERSION").to_string(),
            bootstrap_expect: 0,
            protocol_min: 1,
            protocol_max: 1,
            protocol_cur: 1,
        }
    }

    /// The tags as Consul's `/v1/agent/members` shows them (string map, sorted).
    pub fn to_consul(&self) -> std::collections::BTreeMap<String, String> {
        let mut tags = std::collections::BTreeMap::new();
        tags.insert("role".to_string(), self.role.as_tag().to_string());
        tags.insert("dc".to_string(), self.dc.clone());
        tags.insert("build".to_string(), self.build.clone());
        tags.insert("vsn".to_string(), self.protocol_cur.to_string());
        tags.insert("vsn_min".to_string(), self.protocol_min.to_string());
        tags.insert("vsn_max".to_string(), self.protocol_max.to_string());
        if self.role == Role::Server {
            tags.insert("port".to_string(), self.rpc_port.to_string());
            if self.bootstrap_expect > 0 {
                tags.insert("expect".to_string(), self.bootstrap_expect.to_string());
            }
        }
        tags
    }

    /// Whether a peer's tags respect the byte limits (checked on every decode).
    pub(crate) fn is_within_limits(&self) -> bool {
        self.dc.len() <= TAG_BYTES_MAX && self.build.len() <= TAG_BYTES_MAX
    }
}

/// Name and tags: what a node says about itself. Shared (`Arc`) because every header clones the identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeMeta {
    pub name: String,
    pub tags: Tags,
}

/// A gossip member's identity (foca's `Identity`). Two identities with one address are the same node in
/// different lives: the higher `generation` wins (a node restarting, or declared failed while alive, bumps it
/// and rejoins; see [`foca::Identity::renew`]).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeId {
    addr: SocketAddr,
    generation: u32,
    meta: Arc<NodeMeta>,
}

impl NodeId {
    pub fn new(name: &str, addr: SocketAddr, generation: u32, tags: Tags) -> NodeId {
        assert!(name.len() <= NODE_NAME_BYTES_MAX, "node name longer than {NODE_NAME_BYTES_MAX} bytes");
        assert!(tags.is_within_limits(), "tag longer than {TAG_BYTES_MAX} bytes");
        NodeId { addr, generation, meta: Arc::new(NodeMeta { name: name.to_string(), tags }) }
    }

    /// Stand-in for a peer we know only by address (`join`): foca accepts an announce addressed to any
    /// identity with the receiver's address. Named after the address: names on the wire are never empty.
    pub(crate) fn placeholder(addr: SocketAddr) -> NodeId {
        NodeId::new(&addr.to_string(), addr, 0, Tags::client(""))
    }

    pub fn name(&self) -> &str {
        &self.meta.name
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn generation(&self) -> u32 {
        self.generation
    }
    pub fn tags(&self) -> &Tags {
        &self.meta.tags
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}#{}", self.meta.name, self.addr, self.generation)
    }
}

impl foca::Identity for NodeId {
    type Addr = SocketAddr;

    /// A node that the cluster declared down rejoins under the next generation (foca's auto-rejoin).
    fn renew(&self) -> Option<Self> {
        let generation = self.generation.checked_add(1)?;
        Some(NodeId { generation, ..self.clone() })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Between two lives of one address, the later generation is the real one. Two claims with one generation
    /// (a misconfigured or forged peer) are ordered by their metadata, so every member picks the same winner
    /// whatever order the claims arrive in, and a replay cannot flip it back.
    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        (self.generation, &*self.meta) > (adversary.generation, &*adversary.meta)
    }
}

/// The identity as it travels: plain fields in a fixed order (bincode), checked against the limits on decode.
#[derive(Serialize)]
struct WireNodeIdRef<'a> {
    addr: SocketAddr,
    generation: u32,
    meta: &'a NodeMeta,
}

#[derive(Deserialize)]
struct WireNodeId {
    addr: SocketAddr,
    generation: u32,
    meta: NodeMeta,
}

impl Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireNodeIdRef { addr: self.addr, generation: self.generation, meta: &self.meta }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireNodeId::deserialize(deserializer)?;
        if wire.meta.name.is_empty() || wire.meta.name.len() > NODE_NAME_BYTES_MAX || !wire.meta.tags.is_within_limits()
        {
            return Err(serde::de::Error::custom("node name empty, or a name or tag beyond its byte limit"));
        }
        if wire.addr.ip().is_unspecified() || wire.addr.port() == 0 {
            return Err(serde::de::Error::custom("member address is unspecified"));
        }
        Ok(NodeId { addr: wire.addr, generation: wire.generation, meta: Arc::new(wire.meta) })
    }
}
