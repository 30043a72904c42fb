//! The leader's KV tombstone GC (Consul's `TombstoneGC`): a deleted key leaves a tombstone so blocking
//! queries see the delete; once it is older than `TOMBSTONE_TTL` the leader proposes a reap of every
//! tombstone of a delete before that cutoff, at most once per `TOMBSTONE_GRANULARITY` so the reaps come
//! in batches. The cutoff travels in the command, so every server forgets exactly the same tombstones.

use std::sync::Arc;
use std::time::Duration;

use conclave_core::state::Command;

use super::Node;
use crate::env::Env;

/// How long a tombstone is kept (Consul's `TombstoneTTL` default): far longer than any blocking query
/// waits, so one that began before the delete has been woken by it long before it is reaped.
pub const TOMBSTONE_TTL: Duration = Duration::from_secs(15 * 60);
/// How often the leader looks for tombstones to reap (Consul's `TombstoneTTLGranularity`).
pub const TOMBSTONE_GRANULARITY: Duration = Duration::from_secs(30);

/// The cutoff of a reap proposed at `now_ms`: tombstones of deletes before it are old enough.
pub fn reap_cutoff_ms(now_ms: u64) -> u64 {
    now_ms.saturating_sub(TOMBSTONE_TTL.as_millis() as u64)
}

/// Runs on every server; only the leader proposes.
pub async fn run<E: Env>(node: Arc<Node<E>>) {
    loop {
        tokio::time::sleep(TOMBSTONE_GRANULARITY + node.jitter(TOMBSTONE_GRANULARITY / 8)).await;
        if !node.is_leader() {
            continue;
        }
        let deleted_before_ms = reap_cutoff_ms(node.env.unix_time_ms());
        if !node.state.read().kv().has_tombstones_before(deleted_before_ms) {
            continue;
        }
        let before = node.state.read().kv().tombstone_count();
        match node.write(Command::ReapTombstones { deleted_before_ms }).await {
            Ok(_) => {
                let left = node.state.read().kv().tombstone_count();
                tracing::debug!(
                    target: "conclave::event",
                    reaped = before.saturating_sub(left),
                    left,
                    "kv tombstones reaped"
                );
            }
            Err(e) => tracing::debug!(target: "conclave::event", error = %e, "kv tombstone reap not applied"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_one_ttl_back_and_never_before_the_epoch() {
        assert_eq!(reap_cutoff_ms(1_000_000 + 900_000), 1_000_000);
        assert_eq!(reap_cutoff_ms(5), 0);
    }
}
