//! The user event that rides on gossip (serf's `user` event carrying Consul's `UserEvent`): its name,
//! payload and the filters each receiver applies to itself, plus the ID and the sender's number.

use serde::{Deserialize, Serialize};

/// Longest user event: every field counted together (serf's `UserEventSizeLimit` is 512 bytes, and Consul
/// puts the ID, the name and the filters inside serf's payload, so they count against it too).
pub const USER_EVENT_BYTES_MAX: usize = 512;

/// One user event, as Consul's `agent.UserEvent` has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct UserEvent {
    /// The node that fired it (set by the sender's `Membership`).
    pub origin: String,
    /// The sender's number for it (serf's lamport time); set by the sender's `Membership`.
    pub ltime: u64,
    /// A UUID chosen by the agent that fired it.
    pub id: String,
    pub name: String,
    /// `None` when the event was fired without a body (Consul answers `"Payload": null`).
    #[serde(with = "serde_bytes")]
    pub payload: Option<Vec<u8>>,
    /// Regular expressions a receiver matches against its node name, its services' names and their tags;
    /// empty means "no filter".
    pub node_filter: String,
    pub service_filter: String,
    pub tag_filter: String,
}

impl UserEvent {
    /// An unfiltered event named `name`, with `payload` (none when empty) and no ID.
    pub fn named(name: &str, payload: &[u8]) -> UserEvent {
        let payload = (!payload.is_empty()).then(|| payload.to_vec());
        UserEvent { name: name.to_string(), payload, ..UserEvent::default() }
    }

    /// The bytes the size limit applies to.
    pub fn size_bytes(&self) -> usize {
        let payload = self.payload.as_ref().map_or(0, Vec::len);
        [&self.origin, &self.id, &self.name, &self.node_filter, &self.service_filter, &self.tag_filter]
            .iter()
            .map(|s| s.len())
            .sum::<usize>()
            + payload
    }
}
