//! Sessions in the catalog's apply: creating one checks its node and checks; invalidating one (destroy,
//! node or check removed, check critical) drops it and releases or deletes the keys it holds, with its
//! lock delay measured on the replicated clock.

use super::command::Response;
use super::state::Catalog;
use super::types::CheckStatus;
use crate::kv::{Session, SessionBehavior};

impl Catalog {
    pub(super) fn create_session(&mut self, index: u64, session: &Session) -> Response {
        if let Err(why) = self.validate_session(session) {
            return Response::Rejected(why);
        }
        self.sessions.insert(index, session.clone());
        Response::Applied
    }

    fn validate_session(&self, session: &Session) -> Result<(), String> {
        if session.id.is_empty() {
            return Err("Missing session ID".to_string());
        }
        if self.sessions.get(&session.id).is_some() {
            return Err(format!("Session {:?} already exists", session.id));
        }
        if !self.nodes.contains_key(&session.node) {
            return Err(format!("Missing node registration for {:?}", session.node));
        }
        let check_ids = session.node_checks.iter().chain(session.service_checks.iter().map(|c| &c.id));
        for check_id in check_ids {
            let Some(check) = self.checks.get(&(session.node.clone(), check_id.clone())) else {
                return Err(format!("Missing check '{check_id}' registration"));
            };
            if check.status == CheckStatus::Critical {
                return Err(format!("Check '{check_id}' is in critical state"));
            }
        }
        Ok(())
    }

    /// Invalidates the session `id` (nothing if it does not exist).
    pub(super) fn invalidate_session(&mut self, index: u64, id: &str) {
        let Some(session) = self.sessions.remove(index, id) else { return };
        let lock_delay_until_ms = match session.lock_delay_ns / 1_000_000 {
            0 => 0,
            delay_ms => self.clock_ms + delay_ms,
        };
        let delete = session.behavior == SessionBehavior::Delete;
        self.kv.drop_session_locks(index, id, delete, lock_delay_until_ms);
    }

    /// Invalidates the sessions of `node` bound to `check_id` (every session of the node if None).
    pub(super) fn invalidate_sessions_of(&mut self, index: u64, node: &str, check_id: Option<&str>) {
        let doomed: Vec<String> = self
            .sessions
            .of_node(node)
            .filter(|s| check_id.is_none_or(|check| s.is_bound_to(check)))
            .map(|s| s.id.clone())
            .collect();
        for id in doomed {
            self.invalidate_session(index, &id);
        }
    }
}
