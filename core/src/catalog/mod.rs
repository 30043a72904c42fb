//! The catalog: Consul's nodes, services and checks tables as a deterministic Raft state machine.

pub mod command;
pub mod types;

pub use command::{CheckSpec, Command, DeregisterRequest, NodeSpec, RegisterRequest, Response, ServiceSpec};
pub use types::{CheckDefinition, CheckStatus, HealthCheck, Node, ServiceAddress, ServiceInstance, Weights};
