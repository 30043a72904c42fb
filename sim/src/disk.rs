//! SimDisk: a node's disk in simulation. Writes land in a pending layer that reads see at once; `sync`
//! makes them durable; a crash throws the pending layer away — so a missing fsync loses data here exactly
//! as it would on a real machine that loses power.

use std::io;
use std::sync::Mutex;

use conclave::env::mem_store::{apply_ops, scan_map, Spaces};
use conclave::env::{Space, Store, WriteOp};

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

#[derive(Default)]
pub struct SimDisk {
    layers: Mutex<Layers>,
}

impl SimDisk {
    pub fn new() -> SimDisk {
        SimDisk::default()
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
        let mut layers = self.layers.lock().expect("disk lock");
        let pending = std::mem::take(&mut layers.pending);
        apply_ops(&mut layers.durable, &pending);
        Ok(())
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
}
