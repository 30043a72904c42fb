//! The catalog table: Consul's nodes, services and checks, one table of the replicated `state::State`.
//! It applies its own commands (`CatalogCommand`) and its transaction operations, answers its queries, and
//! reports the health losses (a node or check removed, a check critical) that end sessions.

pub mod command;
mod index;
pub mod node_entries;
mod query;
mod remove;
mod table;
#[cfg(test)]
mod tests;
mod txn_ops;
pub mod types;

pub use command::{
    service_id_of, CatalogCommand, CheckSpec, DeregisterRequest, HealthLoss, NodeSpec, RegisterRequest, ServiceSpec,
};
pub use index::Indexes;
pub use node_entries::{NodeCatalog, NodeEntries, OfNode};
pub use query::ServiceHealth;
pub use table::CatalogTable;
pub use txn_ops::{CatalogEntry, CatalogTxnOp, CatalogVerb, TxnWritten};
pub use types::{CheckDefinition, CheckStatus, HealthCheck, Node, ServiceAddress, ServiceInstance, Weights};
