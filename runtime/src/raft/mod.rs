//! openraft glue: the type config, a seeded async runtime, log and state-machine storage over the Env's
//! store, the messages agents exchange, and the network over the RPC transport. The state machine
//! applied is core's replicated state.

// openraft's `StorageError` is large and its traits fix the signatures that return it.
#![allow(clippy::result_large_err)]

pub mod archive;
pub mod disk_syncs;
pub mod leader_fence;
pub mod log_store;
pub mod messages;
pub mod network;
pub mod pieces;
pub mod restore_space;
pub mod seeded_runtime;
pub mod snapshot_store;
pub mod state_machine;

use std::io::Cursor;

use conclave_core::state::{Proposal, Response};
use openraft::BasicNode;

pub type NodeId = u64;

openraft::declare_raft_types!(
    /// Conclave's Raft types: catalog commands (with their proposal time) in, catalog responses out, nodes addressed by RPC address.
    pub TypeConfig:
        D = Proposal,
        R = Response,
        NodeId = NodeId,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = seeded_runtime::SeededRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;

/// Maps a store I/O failure into openraft's error type. openraft treats storage errors as fatal and stops
/// the node, which is what we want: a node that cannot persist must not vote or acknowledge.
pub(crate) fn storage_error(
    subject: openraft::ErrorSubject<NodeId>,
    verb: openraft::ErrorVerb,
    err: impl std::fmt::Display,
) -> StorageError {
    StorageError::from_io_error(subject, verb, std::io::Error::other(err.to_string()))
}
