//! Applying a command: the replicated clock moves, the command goes to its table, and the effects that
//! cross tables are carried out here, in the order they happened — a catalog health loss ends the
//! sessions bound to it, and an ended session releases or deletes its keys with its lock delay.

use super::command::{Command, Proposal, Response};
use super::machine::State;
use super::restore_space::{NoRestoreSpace, RestoreSpace};
use crate::acl::Authority;
use crate::catalog::{CatalogCommand, HealthLoss};
use crate::kv::{KvCommand, SessionBehavior, SessionCommand};

impl State {
    /// Applies the command of the Raft entry at `index`, proposed at `proposed_at_ms` on the leader's
    /// clock. Indexes must be applied in increasing order.
    /// Restore commands need a place for their bytes and are refused here (see [`State::apply_at_in`]).
    pub fn apply_at(&mut self, index: u64, proposed_at_ms: u64, command: &Command) -> Response {
        self.apply_at_in(index, proposed_at_ms, command, &mut NoRestoreSpace)
            .unwrap_or_else(|e| Response::Rejected(e.to_string()))
    }

    /// [`State::apply_at`] with `space` holding a restore's bytes. An error is the space's (a disk that
    /// fails): the entry is not applied and the node must stop, as for any storage error.
    pub fn apply_at_in(
        &mut self,
        index: u64,
        proposed_at_ms: u64,
        command: &Command,
        space: &mut dyn RestoreSpace,
    ) -> std::io::Result<Response> {
        self.apply_authorized(index, proposed_at_ms, command, None, space)
    }

    /// Applies a Raft entry: the clock moves, then the proposal's authority (if any) is checked against
    /// the ACL table as it stands at this index; a refused command changes nothing but the index. An
    /// error is `space`'s, as in [`State::apply_at_in`].
    pub fn apply_proposal(
        &mut self,
        index: u64,
        proposal: &Proposal,
        space: &mut dyn RestoreSpace,
    ) -> std::io::Result<Response> {
        self.apply_authorized(index, proposal.proposed_at_ms, &proposal.command, proposal.authority.as_ref(), space)
    }

    fn apply_authorized(
        &mut self,
        index: u64,
        proposed_at_ms: u64,
        command: &Command,
        authority: Option<&Authority>,
        space: &mut dyn RestoreSpace,
    ) -> std::io::Result<Response> {
        self.clock_ms = self.clock_ms.max(proposed_at_ms);
        self.kv.expire_lock_delays(self.clock_ms);
        if let Some(authority) = authority {
            if let Err(refused) = self.authorize(authority, command) {
                assert!(index > self.last_index, "apply out of order: index {index} after {}", self.last_index);
                self.last_index = index;
                return Ok(Response::Denied(refused.to_string()));
            }
        }
        if let Command::Restore(restore) = command {
            assert!(index > self.last_index, "apply out of order: index {index} after {}", self.last_index);
            self.last_index = index;
            return self.apply_restore(index, restore, space);
        }
        Ok(self.apply(index, command))
    }

    /// Applies the command of the Raft entry at `index` without moving the replicated clock.
    pub fn apply(&mut self, index: u64, command: &Command) -> Response {
        assert!(index > self.last_index, "apply out of order: index {index} after {}", self.last_index);
        self.last_index = index;
        match command {
            Command::Catalog(command) => self.apply_catalog(index, command),
            Command::Kv(command) => self.apply_kv(index, command),
            Command::Session(command) => self.apply_session(index, command),
            Command::Txn(ops) => self.apply_txn(index, ops),
            Command::Acl(command) => Response::of(self.acl.apply(index, self.clock_ms, command)),
            Command::Ca(command) => Response::of(self.ca.apply(index, command)),
            Command::Autopilot(command) => Response::Kv(self.autopilot.apply(index, command)),
            Command::Restore(_) => Response::Rejected("a restore is applied with a restore space".into()),
            Command::ReapTombstones { deleted_before_ms } => {
                self.kv.reap_tombstones(*deleted_before_ms);
                Response::Applied
            }
            Command::Noop => Response::Applied,
        }
    }

    fn apply_catalog(&mut self, index: u64, command: &CatalogCommand) -> Response {
        let losses = self.catalog.apply(index, command);
        Response::of(losses.map(|losses| self.on_health_lost(index, &losses)))
    }

    /// A `Lock` needs a live session, which the KV store cannot see; the rest is the store's.
    pub(super) fn apply_kv(&mut self, index: u64, command: &KvCommand) -> Response {
        if let KvCommand::Lock { session, .. } = command {
            if self.sessions.get(session).is_none() {
                return Response::Rejected(format!("invalid session {session:?}"));
            }
        }
        Response::Kv(self.kv.apply(index, self.clock_ms, command))
    }

    fn apply_session(&mut self, index: u64, command: &SessionCommand) -> Response {
        match command {
            SessionCommand::Create(session) => Response::of(self.sessions.create(index, session, &self.catalog)),
            SessionCommand::Destroy { id } => {
                self.end_session(index, id);
                Response::Applied
            }
        }
    }

    /// Ends the sessions each loss is fatal to, loss by loss in the order the catalog reported them.
    pub(super) fn on_health_lost(&mut self, index: u64, losses: &[HealthLoss]) {
        for loss in losses {
            for id in self.sessions.ended_by(loss) {
                self.end_session(index, &id);
            }
        }
    }

    /// Invalidates the session `id` (nothing if it does not exist) and releases or deletes its keys.
    fn end_session(&mut self, index: u64, id: &str) {
        let Some(session) = self.sessions.remove(index, id) else { return };
        let delete = session.behavior == SessionBehavior::Delete;
        self.kv.drop_session_locks(index, self.clock_ms, id, delete, session.lock_delay_until_ms(self.clock_ms));
    }
}
