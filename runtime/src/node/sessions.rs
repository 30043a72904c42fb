//! Session TTLs, decided by the leader as Consul decides them: each session with a TTL has a deadline of
//! twice its TTL after its creation or last renewal; when it passes, the leader proposes the session's
//! invalidation through Raft. Deadlines live only in the leader's memory: a new leader starts every
//! session's clock afresh (at 2×TTL), so a failover can only extend a session, never cut it short.
//! Renewals go to the leader (followers forward them over RPC).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use conclave_core::kv::Session;
use conclave_core::state::Command;
use tokio::time::Instant;

use super::requests::RequestError;
use super::Node;
use crate::env::Env;
use crate::raft::messages::{ForwardError, Reply, Request};
use conclave_core::kv::SessionCommand;

/// Consul's `SessionTTLMultiplier`: a session lives up to twice its TTL without renewal.
pub const SESSION_TTL_MULTIPLIER: u32 = 2;

/// How often the leader looks for expired sessions.
const SESSION_TICK: Duration = Duration::from_millis(200);

/// The leader's session deadlines, by session ID.
pub struct SessionTimers {
    deadlines: std::sync::Mutex<BTreeMap<String, Instant>>,
    /// Planted bug (FaultSwitches::session_ttl_early): expire after half the TTL.
    early: bool,
}

impl SessionTimers {
    pub fn new(early: bool) -> SessionTimers {
        SessionTimers { deadlines: std::sync::Mutex::new(BTreeMap::new()), early }
    }

    /// How long a session lives after its creation or last renewal.
    fn grace(&self, session: &Session) -> Duration {
        let ttl = Duration::from_millis(session.ttl_ms);
        if self.early {
            ttl / 2
        } else {
            ttl * SESSION_TTL_MULTIPLIER
        }
    }

    /// Brings the deadlines in line with the sessions that exist and returns the IDs whose deadline passed.
    fn expired(&self, sessions: &[Session], now: Instant) -> Vec<String> {
        let mut deadlines = self.deadlines.lock().expect("session timers lock");
        deadlines.retain(|id, _| sessions.iter().any(|s| &s.id == id));
        for session in sessions {
            deadlines.entry(session.id.clone()).or_insert_with(|| now + self.grace(session));
        }
        deadlines.iter().filter(|(_, deadline)| **deadline <= now).map(|(id, _)| id.clone()).collect()
    }

    fn reset(&self, session: &Session, now: Instant) {
        let deadline = now + self.grace(session);
        self.deadlines.lock().expect("session timers lock").insert(session.id.clone(), deadline);
    }

    fn clear(&self) {
        self.deadlines.lock().expect("session timers lock").clear();
    }
}

/// The leader's TTL loop; on other nodes it keeps no deadlines. After a snapshot restore every session
/// starts a fresh TTL (the restored sessions' holders had no way to renew them while the snapshot sat on
/// disk).
pub async fn run<E: Env>(node: Arc<Node<E>>) {
    let mut restored_index_seen = node.state.read().restored_index();
    loop {
        tokio::time::sleep(SESSION_TICK).await;
        if !node.is_leader() {
            node.session_timers.clear();
            continue;
        }
        let (with_ttl, restored_index): (Vec<Session>, u64) = {
            let state = node.state.read();
            (state.sessions().all().filter(|s| s.ttl_ms > 0).cloned().collect(), state.restored_index())
        };
        if restored_index != restored_index_seen {
            restored_index_seen = restored_index;
            node.session_timers.clear();
        }
        for id in node.session_timers.expired(&with_ttl, Instant::now()) {
            tracing::info!(target: "conclave::event", node = %node.config.node_name, session = %id, "session TTL expired");
            if let Err(e) = node.write(Command::Session(SessionCommand::Destroy { id: id.clone() })).await {
                tracing::warn!(session = %id, error = %e, "cannot invalidate expired session; will retry");
            }
        }
    }
}

impl<E: Env> Node<E> {
    /// Renews a session on the leader: its deadline moves to 2×TTL from now. `None` when it does not exist.
    pub async fn renew_session(&self, id: &str) -> Result<Option<Session>, RequestError> {
        let deadline = Instant::now() + self.config.request_timeout;
        loop {
            let outcome = match self.renew_session_local(id).await {
                Err(ForwardError::NotLeader { leader_rpc_addr: Some(addr) }) => match addr.parse() {
                    Ok(addr) => {
                        let timeout = deadline.saturating_duration_since(Instant::now());
                        match self.pool.call(addr, &Request::RenewSession { id: id.to_string() }, timeout).await {
                            Ok(Reply::RenewSession(outcome)) => outcome,
                            _ => Err(ForwardError::Failed("leader unreachable".to_string())),
                        }
                    }
                    Err(_) => Err(ForwardError::Failed(format!("bad leader address {addr}"))),
                },
                other => other,
            };
            match outcome {
                Ok(found) => return Ok(found),
                Err(e) if Instant::now() + Duration::from_millis(100) >= deadline => {
                    tracing::debug!(session = %id, error = ?e, "renew gave up");
                    return Err(RequestError::NoLeader);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Renews on this node if it leads. Leadership is confirmed by a quorum first (a deposed leader that
    /// has not noticed must not reset a timer the real leader does not see), and the session is looked up
    /// only once this node has applied everything committed (a fresh leader must not answer "not found"
    /// for a session it has not applied yet).
    pub async fn renew_session_local(&self, id: &str) -> Result<Option<Session>, ForwardError> {
        let commit_index = self.read_index_local().await?;
        let deadline = Instant::now() + self.config.request_timeout;
        if self.wait_applied(commit_index, deadline).await.is_err() {
            return Err(ForwardError::Failed("could not apply up to the commit index in time".to_string()));
        }
        let session = self.state.read().sessions().get(id).cloned();
        if let Some(session) = &session {
            if session.ttl_ms > 0 {
                self.session_timers.reset(session, Instant::now());
            }
        }
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, ttl_ms: u64) -> Session {
        Session { id: id.to_string(), ttl_ms, ..Session::default() }
    }

    #[test]
    fn a_session_expires_after_twice_its_ttl_unless_renewed() {
        let timers = SessionTimers::new(false);
        let start = Instant::now();
        let sessions = [session("a", 10_000), session("b", 10_000)];
        assert!(timers.expired(&sessions, start).is_empty());
        timers.reset(&sessions[1], start + Duration::from_secs(15));
        assert!(timers.expired(&sessions, start + Duration::from_millis(19_999)).is_empty());
        assert_eq!(timers.expired(&sessions, start + Duration::from_secs(20)), ["a"]);
        assert_eq!(timers.expired(&sessions[1..], start + Duration::from_secs(35)), ["b"]);
    }
}
