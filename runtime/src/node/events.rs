//! User events on the node: firing one over LAN gossip (with a fresh UUID from the node's rng), and
//! recording each one gossip delivers once it passes this agent's filters (its node name, its local
//! services and their tags), as Consul's agent does. `/v1/event/list` reads what was recorded and waits
//! on [`UserEvents::subscribe`] for what comes next.

use std::sync::Mutex;

use conclave_core::agent::events::{should_process, validate_fire, EventBuffer};
use conclave_core::gossip::UserEvent;
use rand::RngCore;
use tokio::sync::watch;

use super::gossip::GossipCommand;
use super::Node;
use crate::env::Env;

/// Why an event was not fired, in the user's terms.
#[derive(Debug, thiserror::Error)]
pub enum FireError {
    /// Bad parameters (Consul's messages): a 400.
    #[error("{0}")]
    Invalid(String),
    /// Gossip is not running or refused it: a 500.
    #[error("{0}")]
    Gossip(String),
}

/// The events this agent recorded, and a counter that moves when one is recorded.
pub struct UserEvents {
    buffer: Mutex<EventBuffer>,
    recorded: watch::Sender<u64>,
}

impl Default for UserEvents {
    fn default() -> UserEvents {
        UserEvents { buffer: Mutex::new(EventBuffer::default()), recorded: watch::channel(0).0 }
    }
}

impl UserEvents {
    /// The recorded events named `name` (all when empty), oldest first.
    pub fn list(&self, name: &str) -> Vec<UserEvent> {
        self.buffer.lock().expect("events lock").list(name)
    }

    /// Changes each time an event is recorded.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.recorded.subscribe()
    }

    fn record(&self, event: UserEvent) {
        let recorded = {
            let mut buffer = self.buffer.lock().expect("events lock");
            buffer.record(event);
            buffer.recorded()
        };
        self.recorded.send_replace(recorded);
    }
}

/// Fires `event` (name, payload and filters set by the caller) into the LAN pool and returns it with its
/// new ID, as `/v1/event/fire` answers it.
pub async fn fire<E: Env>(node: &Node<E>, mut event: UserEvent) -> Result<UserEvent, FireError> {
    validate_fire(&event).map_err(FireError::Invalid)?;
    let mut id_bytes = [0u8; 16];
    node.rng.lock().expect("rng lock").fill_bytes(&mut id_bytes);
    event.id = uuid::Builder::from_random_bytes(id_bytes).into_uuid().to_string();
    let (reply, answer) = tokio::sync::oneshot::channel();
    if !node.gossip.send(GossipCommand::UserEvent(event.clone(), reply)).await {
        return Err(FireError::Gossip("gossip is not running".to_string()));
    }
    match answer.await {
        Ok(Ok(())) => Ok(event),
        Ok(Err(why)) if why.contains("exceeds") => Err(FireError::Invalid(why)),
        Ok(Err(why)) => Err(FireError::Gossip(why)),
        Err(_) => Err(FireError::Gossip("gossip stopped".to_string())),
    }
}

/// Gossip delivered `event`: it is recorded when it passes this agent's filters.
pub fn receive<E: Env>(node: &Node<E>, event: UserEvent) {
    let passes = {
        let local = node.local.lock().expect("local state lock");
        let services = local.services().map(|s| (s.spec.service.as_str(), s.spec.tags.as_slice()));
        should_process(&event, &node.config.node_name, services)
    };
    if !passes {
        tracing::debug!(name = %event.name, id = %event.id, "user event filtered out");
        return;
    }
    tracing::debug!(name = %event.name, id = %event.id, "new user event");
    node.events.record(event);
}
