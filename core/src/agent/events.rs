//! User events on the receiving agent, as Consul's `agent/user_event.go` and `agent/event_endpoint.go`
//! have them: the checks made before an event is fired, the filters each agent applies to itself before
//! it records one, the buffer of the last [`EVENTS_MAX`] events that `/v1/event/list` reads, and the
//! blocking index Consul derives from the last event's ID.

use std::collections::VecDeque;

use regex_automata::meta::Regex;

use crate::gossip::UserEvent;

/// Events an agent keeps (Consul's `eventBuf` has 256 slots); the oldest is forgotten first.
pub const EVENTS_MAX: usize = 256;
/// Longest filter expression accepted; longer ones are refused before they are compiled.
pub const FILTER_BYTES_MAX: usize = 256;

/// Consul's checks of a new event's parameters, with Consul's messages.
pub fn validate_fire(event: &UserEvent) -> Result<(), String> {
    if event.name.is_empty() {
        return Err("User event missing name".to_string());
    }
    if !event.tag_filter.is_empty() && event.service_filter.is_empty() {
        return Err("Cannot provide tag filter without service filter".to_string());
    }
    let filters = [("node", &event.node_filter), ("service", &event.service_filter), ("tag", &event.tag_filter)];
    for (what, filter) in filters {
        compile(filter).map_err(|e| format!("Invalid {what} filter: {e}"))?;
    }
    Ok(())
}

/// `None` for an empty filter (matches everything).
fn compile(filter: &str) -> Result<Option<Regex>, String> {
    if filter.is_empty() {
        return Ok(None);
    }
    if filter.len() > FILTER_BYTES_MAX {
        return Err(format!("longer than {FILTER_BYTES_MAX} bytes"));
    }
    Regex::new(filter).map(Some).map_err(|e| e.to_string())
}

/// Whether an agent named `node_name` with these local services (name, tags) records `event`: the node
/// filter must match its name, and the service filter one of its services' names — with, when a tag
/// filter is given, one of that service's tags. A filter that does not compile matches nothing (Consul
/// logs and drops the event). Matching is a search, not a whole-string match, as Go's `MatchString`.
pub fn should_process<'a>(
    event: &UserEvent,
    node_name: &str,
    services: impl IntoIterator<Item = (&'a str, &'a [String])>,
) -> bool {
    let (Ok(node), Ok(service), Ok(tag)) =
        (compile(&event.node_filter), compile(&event.service_filter), compile(&event.tag_filter))
    else {
        return false;
    };
    if node.is_some_and(|node| !node.is_match(node_name)) {
        return false;
    }
    let Some(service) = service else { return true };
    services.into_iter().any(|(name, tags)| {
        service.is_match(name)
            && match &tag {
                None => true,
                Some(tag) => tags.iter().any(|t| tag.is_match(t.as_str())),
            }
    })
}

/// Consul's blocking index for events: the UUID's first 64 bits XOR its last 64 bits (`uuidToUint64`).
/// `None` for an ID that is not a UUID (Consul would panic; we treat it as no index).
pub fn index_of_id(id: &str) -> Option<u64> {
    let bytes = id.as_bytes();
    if bytes.len() != 36 || [8, 13, 18, 23].iter().any(|&i| bytes[i] != b'-') {
        return None;
    }
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let high = u64::from_str_radix(&hex[..16], 16).ok()?;
    let low = u64::from_str_radix(&hex[16..], 16).ok()?;
    Some(high ^ low)
}

/// The index `/v1/event/list` answers with: the last event's, or 1 when there is none (Consul answers 1
/// so that a watch with no matching events does not spin).
pub fn list_index(events: &[UserEvent]) -> u64 {
    events.last().and_then(|e| index_of_id(&e.id)).unwrap_or(1)
}

/// The events this agent recorded, oldest first, at most [`EVENTS_MAX`].
#[derive(Debug, Default, Clone)]
pub struct EventBuffer {
    events: VecDeque<UserEvent>,
    /// How many events were ever recorded; lets a waiter tell that something arrived.
    recorded: u64,
}

impl EventBuffer {
    /// Records `event`, forgetting the oldest beyond [`EVENTS_MAX`].
    pub fn record(&mut self, event: UserEvent) {
        if self.events.len() == EVENTS_MAX {
            self.events.pop_front();
        }
        self.events.push_back(event);
        self.recorded += 1;
        assert!(self.events.len() <= EVENTS_MAX, "event buffer beyond its bound");
    }

    /// The events, oldest first, named `name` when it is not empty.
    pub fn list(&self, name: &str) -> Vec<UserEvent> {
        self.events.iter().filter(|e| name.is_empty() || e.name == name).cloned().collect()
    }

    pub fn recorded(&self) -> u64 {
        self.recorded
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
