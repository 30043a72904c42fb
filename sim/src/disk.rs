//! SimDisk: a node's disk in simulation. Writes land in a pending layer that reads see at once; `sync`
//! makes them durable; a crash throws the pending layer away — so a missing fsync loses data here exactly
//! as it would on a real machine that loses power. A stall switch (`stall`/`resume`) makes the disk's
//! fsyncs hang, as a dying or saturated disk's do: `sync_durable` then waits until `resume`, and the
//! blocking `sync` fails (a simulated host runs on the simulation's one thread and may not block it).

use std::io;
use std::sync::{Arc, Mutex};

use conclave::env::mem_store::{apply_ops, scan_map, Spaces};
use conclave::env::{Space, Store, SyncFuture, WriteOp};

#[derive(Default)]
struct Layers {
    /// What survives a crash.
    durable: Spaces,
    /// What reads see: durable plus every write since the last sync.
    visible: Spaces,
    /// Writes since the last sync, in order.
    pending: Vec<WriteOp>,
    /// The data dir's files (written durably at once, as `write_file` syncs).
    files: std::collections::BTreeMap<String, Vec<u8>>,
}

pub struct SimDisk {
    layers: Mutex<Layers>,
    /// True while fsyncs hang (`Fault::DiskStallLeader` until `Fault::DiskResume`).
    stalled: tokio::sync::watch::Sender<bool>,
}

impl Default for SimDisk {
    fn default() -> SimDisk {
        SimDisk { layers: Mutex::default(), stalled: tokio::sync::watch::Sender::new(false) }
    }
}

impl SimDisk {
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    /// From now on fsyncs hang until `resume`; writes still land in the pending layer (the page cache).
    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    /// The hung fsyncs complete (in the order they were waiting) and new ones return at once.
    pub fn resume(&self) {
        self.stalled.send_replace(false);
    }

    pub fn is_stalled(&self) -> bool {
        *self.stalled.borrow()
    }

    fn make_durable(&self) {
        let mut layers = self.layers.lock().expect("disk lock");
        let pending = std::mem::take(&mut layers.pending);
        apply_ops(&mut layers.durable, &pending);
    }

    /// The machine lost power: unsynced writes are gone.
    pub fn crash(&self) {
        let mut layers = self.layers.lock().expect("disk lock");
        layers.pending.clear();
        layers.visible = layers.durable.clone();
    }

    /// Number of writes not yet synced.
    pub fn pending_writes(&self) -> usize {
        self.layers.lock().expect("disk lock").pending.len()
    }
}

impl Store for SimDisk {
    fn write(&self, ops: Vec<WriteOp>) -> io::Result<()> {
        let mut layers = self.layers.lock().expect("disk lock");
        apply_ops(&mut layers.visible, &ops);
        layers.pending.extend(ops);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        if self.is_stalled() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "simulated disk stall: fsync did not complete"));
        }
        self.make_durable();
        Ok(())
    }

    fn sync_durable(self: Arc<Self>) -> SyncFuture {
        Box::pin(async move {
            let mut stalled = self.stalled.subscribe();
            // The sender lives as long as `self`, so the wait ends only on `resume`.
            let _ = stalled.wait_for(|stalled| !*stalled).await;
            self.make_durable();
            Ok(())
        })
    }

    fn get(&self, space: Space, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        Ok(self.layers.lock().expect("disk lock").visible.get(&space).and_then(|m| m.get(key).cloned()))
    }

    fn scan(
        &self,
        space: Space,
        from: &[u8],
        to: Option<&[u8]>,
        limit_max: usize,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(scan_map(self.layers.lock().expect("disk lock").visible.get(&space), from, to, limit_max))
    }

    fn last(&self, space: Space) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        let layers = self.layers.lock().expect("disk lock");
        Ok(layers.visible.get(&space).and_then(|m| m.iter().next_back()).map(|(k, v)| (k.clone(), v.clone())))
    }

    fn read_file(&self, relative_path: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.layers.lock().expect("disk lock").files.get(relative_path).cloned())
    }

    fn write_file(&self, relative_path: &str, bytes: &[u8]) -> io::Result<()> {
        self.layers.lock().expect("disk lock").files.insert(relative_path.to_string(), bytes.to_vec());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_loses_unsynced_writes_and_keeps_synced_ones() {
        let disk = SimDisk::new();
        disk.write(vec![WriteOp::Put(Space::RaftLog, b"a".to_vec(), b"1".to_vec())]).unwrap();
        disk.sync().unwrap();
        disk.write(vec![WriteOp::Put(Space::RaftLog, b"b".to_vec(), b"2".to_vec())]).unwrap();
        assert_eq!(disk.get(Space::RaftLog, b"b").unwrap(), Some(b"2".to_vec()));
        disk.crash();
        assert_eq!(disk.get(Space::RaftLog, b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(disk.get(Space::RaftLog, b"b").unwrap(), None);
    }

    #[tokio::test]
    async fn stalled_sync_completes_only_after_resume() {
        let disk = Arc::new(SimDisk::new());
        disk.write(vec![WriteOp::Put(Space::RaftLog, b"a".to_vec(), b"1".to_vec())]).unwrap();
        disk.stall();
        assert!(disk.sync().is_err(), "a blocking sync on a stalled disk fails");
        let mut waiting = tokio::spawn(disk.clone().sync_durable());
        tokio::task::yield_now().await;
        assert!(futures_poll_pending(&mut waiting).await, "the sync waits while the disk is stalled");
        assert_eq!(disk.pending_writes(), 1);
        disk.resume();
        waiting.await.unwrap().unwrap();
        assert_eq!(disk.pending_writes(), 0);
    }

    async fn futures_poll_pending(handle: &mut tokio::task::JoinHandle<io::Result<()>>) -> bool {
        tokio::time::timeout(std::time::Duration::from_millis(20), handle).await.is_err()
    }
}
