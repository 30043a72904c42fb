//! Consul's KV store, sessions and transactions: two tables of the replicated `state::State`, applied
//! through Raft in the same log (and with the same indexes) as the catalog. `store` holds keys, values,
//! locks and lock delays; `session` the sessions that hold locks and `session_command` how they are
//! created and ended; `txn` the operations of all-or-nothing transactions and `txn_ops` the KV ones.
//! `State` ties the tables together (a session dies with its node or a critical check, and its locks
//! with it).

pub mod session;
mod session_command;
pub mod store;
pub mod txn;
mod txn_ops;

pub use session::{ServiceCheckRef, Session, SessionBehavior, Sessions};
pub use session_command::SessionCommand;
pub use store::{KvCommand, KvEntry, KvStore, Tombstone, KV_VALUE_BYTES_MAX};
pub use txn::{TxnError, TxnOp, TxnOutcome, TxnResult, TXN_OPS_MAX};
pub use txn_ops::kv_txn_command;
