//! Which durable syncs of the Raft store are outstanding and since when: the log store notes each one
//! as it starts and ends, and the disk watchdog (`node::disk_watchdog`) reads the oldest start to tell a
//! slow disk from a stalled one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

/// The Raft store's syncs in flight, by the order they started.
#[derive(Debug, Default)]
pub struct DiskSyncs {
    next_id: AtomicU64,
    started_at: Mutex<BTreeMap<u64, Instant>>,
}

impl DiskSyncs {
    pub fn new() -> Arc<DiskSyncs> {
        Arc::new(DiskSyncs::default())
    }

    /// Notes a sync starting now; it counts as outstanding until the guard is dropped (completed, failed
    /// or abandoned alike).
    pub fn begin(self: &Arc<Self>) -> SyncInFlight {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.started_at.lock().expect("disk syncs lock").insert(id, Instant::now());
        SyncInFlight { syncs: self.clone(), id }
    }

    /// When the oldest outstanding sync started; `None`: none is outstanding.
    pub fn oldest_started_at(&self) -> Option<Instant> {
        self.started_at.lock().expect("disk syncs lock").values().min().copied()
    }

    /// How many syncs are outstanding.
    pub fn outstanding(&self) -> usize {
        self.started_at.lock().expect("disk syncs lock").len()
    }
}

/// One outstanding sync; dropping it ends it.
#[derive(Debug)]
pub struct SyncInFlight {
    syncs: Arc<DiskSyncs>,
    id: u64,
}

impl Drop for SyncInFlight {
    fn drop(&mut self) {
        let removed = self.syncs.started_at.lock().expect("disk syncs lock").remove(&self.id);
        assert!(removed.is_some(), "sync {} ended twice", self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_outstanding_sync_is_reported_until_it_ends() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let _entered = runtime.enter();
        let syncs = DiskSyncs::new();
        assert_eq!(syncs.oldest_started_at(), None);
        let first = syncs.begin();
        let first_at = syncs.oldest_started_at().expect("one outstanding");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = syncs.begin();
        assert_eq!(syncs.oldest_started_at(), Some(first_at));
        assert_eq!(syncs.outstanding(), 2);
        drop(first);
        assert!(syncs.oldest_started_at().is_some_and(|at| at > first_at));
        drop(second);
        assert_eq!(syncs.oldest_started_at(), None);
    }
}
