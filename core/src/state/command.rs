//! Commands applied to the state through Raft, one arm per table plus transactions across tables, and
//! what applying one answers.
//!
//! A command carries no index: the index is the Raft log index of the entry that holds it, passed to
//! `State::apply`.

use serde::{Deserialize, Serialize};

use super::restore::RestoreCommand;
use crate::acl::{AclCommand, Authority};
use crate::autopilot::AutopilotCommand;
use crate::ca::CaCommand;
use crate::catalog::CatalogCommand;
use crate::kv::{KvCommand, SessionCommand, TxnOp, TxnOutcome};

/// A change to the state, the payload of one Raft log entry. Registrations are large next to `Noop`,
/// but a command is built once per request and moved, never stored in bulk.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A change to the catalog table (register, deregister).
    Catalog(CatalogCommand),
    /// A change to the KV store.
    Kv(KvCommand),
    /// A change to the sessions table (create, destroy).
    Session(SessionCommand),
    /// A transaction over the KV and catalog tables: every operation applies, or none does.
    Txn(Vec<TxnOp>),
    /// A change to the ACL table (tokens, policies, roles, auth methods, binding rules).
    Acl(AclCommand),
    /// A change to the cluster CA table (auto-encrypt).
    Ca(CaCommand),
    /// A change to the autopilot configuration (Consul's `/v1/operator/autopilot/configuration`).
    Autopilot(AutopilotCommand),
    /// A step of restoring a snapshot archive (`PUT /v1/snapshot`).
    Restore(RestoreCommand),
    /// An entry that changes nothing (used by a new leader and by tests); it still advances the index.
    Noop,
    /// The leader's tombstone GC: forget the KV tombstones of deletes applied before this time (ms, the
    /// replicated clock).
    ReapTombstones { deleted_before_ms: u64 },
}

/// A command with the time its leader proposed it (the replicated clock the state machine measures lock
/// delays and token expiry on) and, when ACLs are on, on whose behalf: the state checks that authority
/// when the entry applies. It is what a Raft log entry holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub proposed_at_ms: u64,
    pub command: Command,
    /// None: ACLs are off, or the write is the cluster's own (leader reconcile, session expiry).
    pub authority: Option<Authority>,
}

/// What applying a command answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The command was applied (a deregistration of something absent is applied as a no-op, as in Consul).
    Applied,
    /// The command was refused by the state (nothing changed); the text is Consul's error message.
    Rejected(String),
    /// The ACL system refused the command (nothing changed): Consul's permission-denied or not-found text.
    Denied(String),
    /// A conditional write (KV, the autopilot configuration): whether its condition held (and it was
    /// applied).
    Kv(bool),
    /// What a transaction did.
    Txn(TxnOutcome),
}

impl Response {
    /// `Applied` for `Ok`, `Rejected` with Consul's text for `Err`.
    pub fn of(result: Result<(), String>) -> Response {
        match result {
            Ok(()) => Response::Applied,
            Err(why) => Response::Rejected(why),
        }
    }
}
