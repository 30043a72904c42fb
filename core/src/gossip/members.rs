//! The member list in Consul's model (what `/v1/agent/members` and `consul members` show) and the events a
//! driver receives when it changes.

use std::net::SocketAddr;

use super::identity::{NodeId, Tags};

/// serf's `MemberStatus` (the numbers are what `/v1/agent/members` puts in `Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MemberStatus {
    Alive = 1,
    /// Announced its leave; not yet gone.
    Leaving = 2,
    /// Left on purpose.
    Left = 3,
    /// Declared down by the failure detector.
    Failed = 4,
}

impl MemberStatus {
    /// serf's numeric status.
    pub fn serf_code(self) -> u8 {
        self as u8
    }

    /// The word `consul members` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Alive => "alive",
            MemberStatus::Leaving => "leaving",
            MemberStatus::Left => "left",
            MemberStatus::Failed => "failed",
        }
    }
}

/// One member as Consul shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// Gossip address (Consul's `Addr` and `Port`).
    pub addr: SocketAddr,
    pub status: MemberStatus,
    pub tags: Tags,
    /// The member's life number (bumped on every rejoin).
    pub generation: u32,
}

impl Member {
    pub(crate) fn from_id(id: &NodeId, status: MemberStatus) -> Member {
        Member {
            name: id.name().to_string(),
            addr: id.addr(),
            status,
            tags: id.tags().clone(),
            generation: id.generation(),
        }
    }

    /// Whether this entry describes the life `id`.
    pub(crate) fn is_life_of(&self, id: &NodeId) -> bool {
        self.addr == id.addr() && self.generation == id.generation()
    }
}

/// What happened to the membership (serf's event types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    /// A member became alive (joined, or rejoined in a new life).
    MemberJoin(Member),
    /// A member announced that it is leaving.
    MemberLeaving(Member),
    /// A member left on purpose.
    MemberLeave(Member),
    /// The failure detector declared a member down.
    MemberFailed(Member),
    /// A user event reached this node (including one it sent itself).
    User(super::user_event::UserEvent),
    /// The cluster declared this node down while it was alive; it rejoined as `generation`.
    SelfRejoined { generation: u32 },
}
