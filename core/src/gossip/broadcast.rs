//! Custom broadcasts that ride on foca's gossip: user events (serf's `user` events, the unit the simulator
//! times for dissemination) and leave intents (so members tell a graceful `left` from `failed`, which foca's
//! own "declare myself down" does not).
//!
//! foca owns the handler, so what the handler learns goes to an inbox shared with `Membership`, which drains
//! it after each call into foca. Duplicates (replays, re-gossip) are recognised by key and not re-delivered.

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::config::PACKET_BYTES_MAX;
use super::identity::NodeId;
use super::user_event::{UserEvent, USER_EVENT_BYTES_MAX};

/// Keys remembered to recognise a broadcast already delivered; older keys are forgotten first. A replay
/// older than this many broadcasts is delivered again (serf's event buffer has the same property).
pub const SEEN_BROADCASTS_MAX: usize = 4096;
/// Items waiting in the inbox for `Membership` to drain; it drains after every call, so this only bounds a bug.
pub const INBOX_ITEMS_MAX: usize = 1024;

/// One custom broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BroadcastItem {
    /// A user event, with its sender (`origin`) and the sender's number for it (`ltime`).
    UserEvent(UserEvent),
    /// The node at `addr`, in life `generation`, is leaving on purpose.
    LeaveIntent { addr: SocketAddr, generation: u32 },
}

impl BroadcastItem {
    pub(crate) fn encode(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self, bincode::config::standard()).expect("our items always encode")
    }

    fn decode(bytes: &[u8]) -> Result<BroadcastItem, BroadcastError> {
        let config = bincode::config::standard().with_limit::<PACKET_BYTES_MAX>();
        let (item, used): (BroadcastItem, usize) =
            bincode::serde::decode_from_slice(bytes, config).map_err(|e| BroadcastError(e.to_string()))?;
        if used != bytes.len() {
            return Err(BroadcastError(format!("{} trailing bytes", bytes.len() - used)));
        }
        Ok(item)
    }

    fn key(&self) -> BroadcastKey {
        match self {
            BroadcastItem::UserEvent(event) => BroadcastKey::UserEvent(event.origin.clone(), event.ltime),
            BroadcastItem::LeaveIntent { addr, generation } => BroadcastKey::LeaveIntent(*addr, *generation),
        }
    }
}

/// What makes two broadcasts the same one (foca replaces a queued broadcast by an equal key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum BroadcastKey {
    UserEvent(String, u64),
    LeaveIntent(SocketAddr, u32),
}

impl foca::Invalidates for BroadcastKey {
    fn invalidates(&self, other: &Self) -> bool {
        self == other
    }
}

#[derive(Debug, thiserror::Error)]
#[error("bad custom broadcast: {0}")]
pub struct BroadcastError(String);

/// Broadcasts received and not yet drained, and the keys already seen.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    pub(crate) items: VecDeque<BroadcastItem>,
    seen: BTreeSet<BroadcastKey>,
    seen_order: VecDeque<BroadcastKey>,
}

impl Inbox {
    /// Records `key`; false when it was already seen.
    fn first_sight(&mut self, key: &BroadcastKey) -> bool {
        if !self.seen.insert(key.clone()) {
            return false;
        }
        self.seen_order.push_back(key.clone());
        if self.seen_order.len() > SEEN_BROADCASTS_MAX {
            let oldest = self.seen_order.pop_front().expect("non-empty");
            self.seen.remove(&oldest);
        }
        assert_eq!(self.seen.len(), self.seen_order.len(), "seen set and order disagree");
        true
    }
}

/// foca's `BroadcastHandler`: decodes, deduplicates, and hands new items to the inbox.
pub(crate) struct Handler {
    pub(crate) inbox: Arc<Mutex<Inbox>>,
}

impl foca::BroadcastHandler<NodeId> for Handler {
    type Key = BroadcastKey;
    type Error = BroadcastError;

    fn receive_item(&mut self, data: &[u8], _sender: Option<&NodeId>) -> Result<Option<BroadcastKey>, BroadcastError> {
        let item = BroadcastItem::decode(data)?;
        if let BroadcastItem::UserEvent(event) = &item {
            if event.size_bytes() > USER_EVENT_BYTES_MAX {
                return Err(BroadcastError("user event beyond its byte limit".to_string()));
            }
        }
        let key = item.key();
        let mut inbox = self.inbox.lock().expect("inbox lock");
        if !inbox.first_sight(&key) {
            return Ok(None);
        }
        if inbox.items.len() >= INBOX_ITEMS_MAX {
            return Err(BroadcastError("inbox full".to_string()));
        }
        inbox.items.push_back(item);
        Ok(Some(key))
    }
}
