//! The sessions table's commands and its side of applying them: a session is created only on a
//! registered node whose bound checks exist and are not critical (read from the catalog table); an
//! invalidation removes it, and `State` then releases or deletes the keys it held.

use serde::{Deserialize, Serialize};

use super::session::{Session, Sessions};
use crate::catalog::{CatalogTable, CheckStatus, HealthLoss};

/// A change to the sessions table: one arm of `state::Command`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionCommand {
    /// Create a session (its ID chosen by the proposer).
    Create(Session),
    /// Invalidate a session: destroyed by its owner or expired by the leader's TTL timer.
    Destroy { id: String },
}

impl Sessions {
    /// Creates `session` at `index`; `Err` (nothing changed) carries Consul's refusal.
    pub fn create(&mut self, index: u64, session: &Session, catalog: &CatalogTable) -> Result<(), String> {
        self.validate_create(session, catalog)?;
        self.insert(index, session.clone());
        Ok(())
    }

    fn validate_create(&self, session: &Session, catalog: &CatalogTable) -> Result<(), String> {
        if session.id.is_empty() {
            return Err("Missing session ID".to_string());
        }
        if self.get(&session.id).is_some() {
            return Err(format!("Session {:?} already exists", session.id));
        }
        if catalog.node(&session.node).is_none() {
            return Err(format!("Missing node registration for {:?}", session.node));
        }
        let check_ids = session.node_checks.iter().chain(session.service_checks.iter().map(|c| &c.id));
        for check_id in check_ids {
            let Some(check) = catalog.check(&session.node, check_id) else {
                return Err(format!("Missing check '{check_id}' registration"));
            };
            if check.status == CheckStatus::Critical {
                return Err(format!("Check '{check_id}' is in critical state"));
            }
        }
        Ok(())
    }

    /// IDs of the sessions a catalog health loss ends: every session of a removed node, or the node's
    /// sessions bound to the lost check. In ID order.
    pub fn ended_by(&self, loss: &HealthLoss) -> Vec<String> {
        let (node, check_id) = match loss {
            HealthLoss::Node(node) => (node.as_str(), None),
            HealthLoss::Check { node, check_id } => (node.as_str(), Some(check_id.as_str())),
        };
        self.of_node(node).filter(|s| check_id.is_none_or(|check| s.is_bound_to(check))).map(|s| s.id.clone()).collect()
    }
}

impl Session {
    /// Until when (ms on the replicated clock) the keys this session held stay locked against new
    /// holders once it is invalidated at `clock_ms`; 0 for no lock delay.
    pub fn lock_delay_until_ms(&self, clock_ms: u64) -> u64 {
        match self.lock_delay_ns / 1_000_000 {
            0 => 0,
            delay_ms => clock_ms + delay_ms,
        }
    }
}
