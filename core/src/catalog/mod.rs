//! The catalog: Consul's nodes, services and checks tables as a deterministic Raft state machine.

pub mod command;
mod index;
mod query;
mod sessions;
mod state;
#[cfg(test)]
mod tests;
mod txn;
pub mod types;

pub use command::{CheckSpec, Command, DeregisterRequest, NodeSpec, Proposal, RegisterRequest, Response, ServiceSpec};
pub use index::WatchKey;
pub use query::ServiceHealth;
pub use state::{service_id_of, Catalog};
pub use types::{CheckDefinition, CheckStatus, HealthCheck, Node, ServiceAddress, ServiceInstance, Weights};
