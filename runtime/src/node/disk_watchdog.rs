//! The disk watchdog: a leader whose Raft store has had a durable sync outstanding for longer than
//! `DISK_STALL_BOUND` steps down. Consul's leader in that state keeps its leadership while every write
//! hangs; here the watchdog raises the leader fence (no more Raft messages, waiting requests released
//! with an error), asks the most caught-up voter to stand for election at once (`step_down`), and lowers
//! the fence when the disk answers again. It reports `raft.disk.stalled` (1 while a sync is older than
//! the bound, on any server) and counts `raft.leader.diskStallStepDown`.

use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;
use tokio::time::Instant;

use super::Node;
use crate::env::Env;
use crate::raft::leader_fence::FenceReason;

/// How long a durable sync may be outstanding before the disk counts as stalled. A healthy fsync takes
/// milliseconds, a busy disk's some hundreds; two seconds is well beyond both and still short of the
/// client's request timeout, so writes waiting on a stalled leader fail over before they time out.
pub const DISK_STALL_BOUND: Duration = Duration::from_secs(2);

/// How often the watchdog looks. A stall is noticed at most this long after the bound.
pub const WATCHDOG_INTERVAL: Duration = Duration::from_millis(250);

const _: () = assert!(WATCHDOG_INTERVAL.as_millis() * 4 <= DISK_STALL_BOUND.as_millis());

/// What the watchdog does on one look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing changes.
    Stay,
    /// The disk stalled under a leader: raise the fence and hand leadership over.
    StepDown,
    /// The disk answers again: lower the fence the stall raised.
    Recover,
}

/// Whether the oldest outstanding sync (if any) is older than the bound at `now`.
pub fn is_stalled(now: Instant, oldest_sync_started_at: Option<Instant>) -> bool {
    oldest_sync_started_at.is_some_and(|started| now.saturating_duration_since(started) > DISK_STALL_BOUND)
}

/// The watchdog's decision: `is_leader` is Raft's own view (which a node whose Raft task is stuck on
/// its disk keeps), `fenced_for_stall` whether an earlier look already stepped down.
pub fn decide(
    now: Instant,
    oldest_sync_started_at: Option<Instant>,
    is_leader: bool,
    fenced_for_stall: bool,
) -> Decision {
    let stalled = is_stalled(now, oldest_sync_started_at);
    match (stalled, fenced_for_stall) {
        (true, false) if is_leader => Decision::StepDown,
        (false, true) => Decision::Recover,
        _ => Decision::Stay,
    }
}

pub async fn run<E: Env>(node: Arc<Node<E>>) {
    let Some(raft) = node.raft.clone() else { return };
    // None: not reported yet, so the gauge is 0 from the first look rather than absent until a stall.
    let mut was_stalled: Option<bool> = None;
    loop {
        tokio::time::sleep(WATCHDOG_INTERVAL).await;
        let now = Instant::now();
        let oldest = node.disk_syncs.oldest_started_at();
        let stalled = is_stalled(now, oldest);
        if was_stalled != Some(stalled) {
            node.telemetry.gauge("raft.disk.stalled", if stalled { 1.0 } else { 0.0 }, &[]);
            was_stalled = Some(stalled);
        }
        let is_leader = raft.metrics().borrow().state == ServerState::Leader;
        let fenced_for_stall = node.fence.reason() == Some(FenceReason::DiskStall);
        match decide(now, oldest, is_leader, fenced_for_stall) {
            Decision::Stay => {}
            Decision::StepDown => {
                let outstanding_ms = oldest.map(|at| now.saturating_duration_since(at).as_millis()).unwrap_or(0);
                tracing::warn!(target: "conclave::event", node = %node.config.node_name, outstanding_ms = outstanding_ms as u64, "disk stalled: leader steps down");
                node.telemetry.counter("raft.leader.diskStallStepDown", 1, &[]);
                node.fence.raise(FenceReason::DiskStall);
                tokio::spawn(super::step_down::elect_successor(node.clone(), None));
            }
            Decision::Recover => {
                node.fence.lower(FenceReason::DiskStall);
                tracing::info!(target: "conclave::event", node = %node.config.node_name, "disk answers again: fence lowered");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn leader_with_a_sync_outstanding_beyond_the_bound_steps_down_and_recovers_when_it_ends() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let _entered = runtime.enter();
        let t0 = Instant::now();
        let bound_ms = DISK_STALL_BOUND.as_millis() as u64;
        // (now, oldest sync start, is leader, fenced already) → decision
        let table = [
            (at(t0, 0), None, true, false, Decision::Stay),
            (at(t0, bound_ms), Some(t0), true, false, Decision::Stay),
            (at(t0, bound_ms + 1), Some(t0), true, false, Decision::StepDown),
            (at(t0, bound_ms + 1), Some(t0), false, false, Decision::Stay),
            (at(t0, bound_ms + 1), Some(t0), true, true, Decision::Stay),
            (at(t0, bound_ms + 500), Some(at(t0, bound_ms)), true, true, Decision::Recover),
            (at(t0, bound_ms + 500), None, true, true, Decision::Recover),
            (at(t0, bound_ms + 500), None, false, true, Decision::Recover),
            (at(t0, 10), Some(at(t0, 20)), true, false, Decision::Stay),
        ];
        for (now, oldest, is_leader, fenced, expected) in table {
            assert_eq!(
                decide(now, oldest, is_leader, fenced),
                expected,
                "now {:?} oldest {:?} leader {is_leader} fenced {fenced}",
                now - t0,
                oldest.map(|o| o - t0)
            );
        }
    }
}
