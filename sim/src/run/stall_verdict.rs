//! The verdict of `leader-disk-stall`: from the Raft samples and the history, the leader whose disk
//! stalled stopped serving as leader within `STEP_DOWN_BOUND`, another server led within
//! `NEW_LEADER_BOUND`, writes were acknowledged again while the disk was still stalled, and no write sent
//! to the stalled leader was left hanging past its step-down (`RELEASE_BOUND`).

use std::time::Duration;

use conclave::node::disk_watchdog::{DISK_STALL_BOUND, WATCHDOG_INTERVAL};

use crate::checker::{History, OpKind, Outcome, Violation};
use crate::faults::Fault;

/// From the stall to the first sync that hangs: the next write (clients pause at most 0.5 s; four of them).
const FIRST_SYNC_SLACK: Duration = Duration::from_secs(1);
/// The leader's election timeout maximum, which is also openraft's leader lease (the simulator runs the
/// default `RaftTimings`).
const ELECTION_TIMEOUT_MAX: Duration = Duration::from_millis(1000);
/// From the stall to the stalled leader no longer serving as leader.
pub const STEP_DOWN_BOUND: Duration = Duration::from_millis(
    (FIRST_SYNC_SLACK.as_millis() + DISK_STALL_BOUND.as_millis() + WATCHDOG_INTERVAL.as_millis()) as u64,
);
/// From the stall to another server leading: the step-down, the voters' lease running out and one election.
pub const NEW_LEADER_BOUND: Duration =
    Duration::from_millis((STEP_DOWN_BOUND.as_millis() + 2 * ELECTION_TIMEOUT_MAX.as_millis()) as u64);

/// How long after the step-down a write the stalled leader held may still be unanswered: its release
/// (an error at once) or its retry through another voter, well short of the client's own 10 s timeout.
pub const RELEASE_BOUND: Duration = Duration::from_secs(3);

/// What the verdict measured, in simulated microseconds after the stall.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StallReport {
    pub stalled: String,
    pub step_down_after_us: u64,
    pub new_leader: String,
    pub new_leader_after_us: u64,
    /// Writes acknowledged after the new leader was elected and before the disk resumed.
    pub writes_acked_while_stalled: usize,
    /// Writes sent to the stalled leader before its step-down; the longest any waited past the step-down.
    pub writes_held: usize,
    pub held_longest_after_step_down_us: u64,
}

fn violation(what: String) -> Violation {
    Violation { check: "disk-stall", key: "leader-disk-stall".to_string(), what }
}

pub fn check(history: &History) -> Result<StallReport, Violation> {
    let fault_at = |wanted: &Fault| history.faults.iter().find(|(_, f)| f == wanted).map(|(t, _)| *t);
    let stall_us = fault_at(&Fault::DiskStallLeader).ok_or_else(|| violation("the run has no disk stall".into()))?;
    let resume_us = fault_at(&Fault::DiskResume).ok_or_else(|| violation("the disk never resumed".into()))?;
    // The leader at the stall: the last sample at or before it that says "leader".
    let stalled = history
        .raft
        .iter()
        .filter(|s| s.at_us <= stall_us)
        .fold(std::collections::BTreeMap::new(), |mut last, s| {
            last.insert(s.node.clone(), s.is_leader);
            last
        })
        .into_iter()
        .find(|(_, is_leader)| *is_leader)
        .map(|(node, _)| node)
        .ok_or_else(|| violation("no server led when the disk stalled: the run proves nothing".into()))?;
    let after = |s: &&crate::checker::RaftSample| s.at_us > stall_us && s.at_us < resume_us;
    let step_down_us = history
        .raft
        .iter()
        .filter(after)
        .find(|s| s.node == stalled && !s.is_leader)
        .map(|s| s.at_us - stall_us)
        .ok_or_else(|| violation(format!("{stalled} kept leading while its disk was stalled")))?;
    let (new_leader, new_leader_at_us) = history
        .raft
        .iter()
        .filter(after)
        .find(|s| s.node != stalled && s.is_leader)
        .map(|s| (s.node.clone(), s.at_us))
        .ok_or_else(|| violation(format!("no other server led while {stalled}'s disk was stalled")))?;
    let new_leader_after_us = new_leader_at_us - stall_us;
    let bound_us = |d: Duration| d.as_micros() as u64;
    if step_down_us > bound_us(STEP_DOWN_BOUND) {
        let what = format!("{stalled} stepped down {step_down_us} µs after the stall (bound {STEP_DOWN_BOUND:?})");
        return Err(violation(what));
    }
    if new_leader_after_us > bound_us(NEW_LEADER_BOUND) {
        let what = format!("{new_leader} led {new_leader_after_us} µs after the stall (bound {NEW_LEADER_BOUND:?})");
        return Err(violation(what));
    }
    let writes_acked_while_stalled = history
        .ops
        .iter()
        .filter(|op| matches!(op.kind, OpKind::Register { .. } | OpKind::Deregister | OpKind::Cas { .. }))
        .filter(|op| op.outcome == Outcome::WriteOk && op.invoke_us >= new_leader_at_us && op.complete_us < resume_us)
        .count();
    if writes_acked_while_stalled == 0 {
        return Err(violation(format!("no write was acknowledged after {new_leader} was elected")));
    }
    // Servers are `s1..` in index order.
    let stalled_index = stalled.trim_start_matches('s').parse::<u32>().ok().and_then(|n| n.checked_sub(1));
    let step_down_at_us = stall_us + step_down_us;
    let held: Vec<u64> = history
        .ops
        .iter()
        .filter(|op| matches!(op.kind, OpKind::Register { .. } | OpKind::Deregister | OpKind::Cas { .. }))
        .filter(|op| Some(op.server) == stalled_index && op.invoke_us >= stall_us && op.invoke_us < step_down_at_us)
        .map(|op| op.complete_us.saturating_sub(step_down_at_us))
        .collect();
    let held_longest_after_step_down_us = held.iter().copied().max().unwrap_or(0);
    if held_longest_after_step_down_us > bound_us(RELEASE_BOUND) {
        let what = format!(
            "a write {stalled} held was answered {held_longest_after_step_down_us} µs after its step-down (bound {RELEASE_BOUND:?})"
        );
        return Err(violation(what));
    }
    Ok(StallReport {
        stalled,
        step_down_after_us: step_down_us,
        new_leader,
        new_leader_after_us,
        writes_acked_while_stalled,
        writes_held: held.len(),
        held_longest_after_step_down_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::{Op, RaftSample};

    fn sample(node: &str, at_s: f64, is_leader: bool) -> RaftSample {
        RaftSample { node: node.into(), at_us: (at_s * 1e6) as u64, term: 1, is_leader, voters: vec![1, 2, 3] }
    }

    fn history(stalled_steps_down_at: f64, new_leader_at: f64, write_at: f64) -> History {
        let mut h = History {
            faults: vec![(10_000_000, Fault::DiskStallLeader), (20_000_000, Fault::DiskResume)],
            raft: vec![
                sample("s1", 5.0, true),
                sample("s2", 5.0, false),
                sample("s1", stalled_steps_down_at, false),
                sample("s2", new_leader_at, true),
            ],
            ..History::default()
        };
        h.ops.push(Op {
            client: 0,
            server: 1,
            key: "ext-1/svc-0".into(),
            kind: OpKind::Register { value: "v".into() },
            invoke_us: (write_at * 1e6) as u64,
            complete_us: (write_at * 1e6) as u64 + 5_000,
            outcome: Outcome::WriteOk,
        });
        h
    }

    #[test]
    fn stall_with_prompt_step_down_and_writes_on_the_new_leader_passes() {
        let report = check(&history(12.5, 13.5, 14.0)).unwrap();
        assert_eq!((report.stalled.as_str(), report.new_leader.as_str()), ("s1", "s2"));
        assert_eq!(report.step_down_after_us, 2_500_000);
        assert_eq!(report.writes_acked_while_stalled, 1);
    }

    #[test]
    fn leader_that_steps_down_too_late_is_a_violation() {
        assert!(check(&history(14.0, 14.5, 15.0)).is_err());
    }

    #[test]
    fn no_write_acknowledged_after_the_new_leader_is_a_violation() {
        assert!(check(&history(12.5, 13.5, 13.0)).is_err());
    }
}
