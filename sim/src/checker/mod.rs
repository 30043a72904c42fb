//! The history checker. A run's clients record every operation with its invoke and complete times; the
//! checker proves, per service instance (P-compositionality: each key is checked on its own):
//! 1. durability — no acknowledged registration is lost to a later linearizable read;
//! 2. linearizability — default and `?consistent` reads and all writes fit one total order consistent
//!    with real time (a Wing & Gong / Lowe search with memoisation, as Porcupine does);
//! 3. stale reads — never from the future, and never going back on one server within one incarnation;
//! 4. locks — never two holders at once; sessions never dropped before twice their TTL;
//! 5. health — `?passing` answers agree with check targets that have been settled longer than a bound
//!    (`health::check`, run for the `check-flaps` scenario);
//! 6. membership — the gossip scenarios' member lists, `serfHealth`, Raft peers and leaders against what
//!    the faults did (`membership`, run for the gossip scenarios);
//! 7. keyring — a gossip key rotated during a partition reaches every member after the heal (`keyring`,
//!    run for `gossip-key-rotation`);
//! 8. agents — the catalog converges on each client agent's own services and checks after the heal
//!    (`agents`, run for `client-agent-churn`).
//!
//! KV keys are checked by the same register model, with CAS: a CAS that succeeded moves the key from the
//! value it read to its own, a refused one proves the key held something else at some point in its
//! interval.

pub mod agents;
mod durability;
pub mod health;
mod history;
pub mod keyring;
mod linearizable;
mod locks;
pub mod membership;
mod stale;

pub use history::{
    AgentView, ClientId, HealthObservation, History, LockHold, MembersObservation, NodeHealthObservation, Op, OpKind,
    Outcome, RaftSample, ReadMode, ServerId, SessionLife, StatusObservation, TargetSpan,
};
pub use linearizable::STATES_EXPLORED_MAX;

use std::collections::BTreeMap;

/// A broken guarantee, with the key and the operations involved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub check: &'static str,
    pub key: String,
    pub what: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}: {}", self.check, self.key, self.what)
    }
}

/// What the checker looked at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub keys: usize,
    pub ops: usize,
    pub linearized_ops: usize,
    pub states_explored: u64,
}

/// Runs every check on `history`.
pub fn check(history: &History) -> Result<CheckReport, Violation> {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in &history.ops {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    let mut report = CheckReport { keys: by_key.len(), ops: history.ops.len(), ..CheckReport::default() };
    for (key, ops) in &by_key {
        durability::check_key(key, ops)?;
    }
    for (key, ops) in &by_key {
        let outcome = linearizable::check_key(key, ops)?;
        report.linearized_ops += outcome.linearized_ops;
        report.states_explored += outcome.states_explored;
    }
    stale::check(history)?;
    locks::check_mutual_exclusion(history)?;
    locks::check_session_lifetimes(history)?;
    Ok(report)
}

/// One line describing an operation, for violation messages.
pub(crate) fn describe(op: &Op) -> String {
    let kind = match &op.kind {
        OpKind::Register { value } => format!("register {value}"),
        OpKind::Deregister => "deregister".to_string(),
        OpKind::Read { mode } => format!("{mode:?} read"),
        OpKind::Cas { expected, value } => format!("cas {} → {value}", expected.as_deref().unwrap_or("absent")),
    };
    let outcome = match &op.outcome {
        Outcome::ReadOk { value, index } => {
            format!("→ {} @index {index}", value.as_deref().unwrap_or("absent"))
        }
        other => format!("→ {other:?}"),
    };
    format!("client {} on server {} {kind} [{}us..{}us] {outcome}", op.client, op.server, op.invoke_us, op.complete_us)
}
