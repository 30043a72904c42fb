//! Sessions: Consul's handle for holding KV locks. A session belongs to a node and is bound to health
//! checks (the node's `serfHealth` by default); it is invalidated when destroyed, when its TTL runs out
//! (decided by the leader's timers in the driver), or when its node or one of its checks goes away or goes
//! critical. Invalidation releases or deletes the keys it holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Consul's default lock delay, 15 s, in nanoseconds (the unit of the API's `LockDelay`).
pub const LOCK_DELAY_DEFAULT_NS: u64 = 15_000_000_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionBehavior {
    /// Locks held are released when the session is invalidated.
    #[default]
    Release,
    /// Keys held are deleted when the session is invalidated.
    Delete,
}

impl SessionBehavior {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionBehavior::Release => "release",
            SessionBehavior::Delete => "delete",
        }
    }
}

/// A service check a session is bound to (Consul's `ServiceChecks` entry).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceCheckRef {
    pub id: String,
    pub namespace: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub name: String,
    pub node: String,
    pub lock_delay_ns: u64,
    pub behavior: SessionBehavior,
    /// The TTL as the user gave it (Consul echoes the string), "" for none.
    pub ttl: String,
    /// The TTL in milliseconds, 0 for none.
    pub ttl_ms: u64,
    pub node_checks: Vec<String>,
    pub service_checks: Vec<ServiceCheckRef>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Session {
    /// Whether the session depends on the check `check_id` of its node.
    pub fn is_bound_to(&self, check_id: &str) -> bool {
        self.node_checks.iter().any(|c| c == check_id) || self.service_checks.iter().any(|c| c.id == check_id)
    }
}

/// The sessions table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sessions {
    by_id: BTreeMap<String, Session>,
    table_index: u64,
}

impl Sessions {
    pub fn get(&self, id: &str) -> Option<&Session> {
        self.by_id.get(id)
    }

    pub fn all(&self) -> impl Iterator<Item = &Session> {
        self.by_id.values()
    }

    pub fn of_node<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Session> + 'a {
        self.by_id.values().filter(move |s| s.node == node)
    }

    pub fn insert(&mut self, index: u64, mut session: Session) {
        assert!(!self.by_id.contains_key(&session.id), "session {} created twice", session.id);
        session.create_index = index;
        session.modify_index = index;
        self.by_id.insert(session.id.clone(), session);
        self.table_index = index;
    }

    pub fn remove(&mut self, index: u64, id: &str) -> Option<Session> {
        let removed = self.by_id.remove(id);
        if removed.is_some() {
            self.table_index = index;
        }
        removed
    }

    pub fn table_index(&self) -> u64 {
        self.table_index
    }
}
