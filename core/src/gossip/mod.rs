//! Gossip: SWIM membership with Consul's tags, on foca 2.0 (sans-IO). One [`Membership`] per node and pool
//! (LAN or WAN); the driver feeds it datagrams and due timers and carries out the [`GossipAction`]s it
//! returns. Nothing here reads a clock or a socket: `now_ms` and the rng seed come from the caller.
//!
//! Modules: [`identity`] (who a member is, its tags), [`config`] (LAN/WAN timings, and what foca lacks),
//! [`wire`] (packet codec and limits), [`broadcast`] (user events and leave intents), [`user_event`] (what a user event carries), [`members`] (Consul's
//! member list and events), [`membership`] (the state machine), [`rng`] (the seeded rng foca draws from).

pub mod broadcast;
pub mod config;
pub mod identity;
pub mod members;
pub mod membership;
pub mod rng;
pub mod user_event;
pub mod wire;

#[cfg(test)]
mod tests;

pub use config::GossipConfig;
pub use identity::{NodeId, Role, Tags};
pub use members::{Member, MemberEvent, MemberStatus};
pub use membership::{GossipAction, GossipError, GossipTimer, Membership};
pub use user_event::{UserEvent, USER_EVENT_BYTES_MAX};
