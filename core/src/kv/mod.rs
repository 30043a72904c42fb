//! Consul's KV store, sessions and transactions, applied through Raft in the same log (and with the same
//! indexes) as the catalog. `store` holds keys, values, locks and lock delays; `session` the sessions
//! that hold locks; `txn` the all-or-nothing transactions over both. The catalog's apply ties them
//! together (a session dies with its node or a critical check).

pub mod session;
pub mod store;
pub mod txn;

pub use session::{ServiceCheckRef, Session, SessionBehavior, Sessions};
pub use store::{KvCommand, KvEntry, KvStore, KV_VALUE_BYTES_MAX};
pub use txn::{TxnError, TxnOp, TxnOutcome, TxnResult, TXN_OPS_MAX};
