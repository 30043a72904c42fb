//! The whole replicated Raft state: a composition of tables (`catalog`, `kv`, `sessions`, `acl`, `ca`, `autopilot`) with one log
//! index and one replicated clock. Each table owns its commands, its apply and its part of the snapshot;
//! `State` routes each command to its table and carries out the effects that cross tables (a node or
//! check lost ends the sessions bound to it; an ended session releases or deletes its keys). A new table
//! is a new field and one arm in `Command` and in `State::apply`.

mod apply;
mod authorize;
mod command;
mod machine;
mod query;
mod restore;
mod restore_space;
#[cfg(test)]
mod tests;
mod txn;
mod watch;

pub use authorize::{check, Permission};
pub use command::{Command, Proposal, Response};
pub use machine::State;
pub use restore::{RestoreCommand, RESTORE_CHUNK_BYTES_MAX};
pub use restore_space::{missing_chunk, ChunkReader, MemoryRestoreSpace, NoRestoreSpace, RestoreSpace};
pub use watch::WatchKey;
