//! The production `Store`: a fjall keyspace in the data dir, one partition per `Space`, fsync on `sync`.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use fjall::{Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};

use super::{Space, Store, WriteOp};

pub struct FjallStore {
    keyspace: Keyspace,
    partitions: BTreeMap<Space, PartitionHandle>,
}

fn to_io(err: fjall::Error) -> io::Error {
    io::Error::other(err.to_string())
}

impl FjallStore {
    /// Opens (or creates) the store under `dir`. A damaged store is an error naming the directory.
    pub fn open(dir: &Path) -> io::Result<FjallStore> {
        let keyspace = Config::new(dir)
            .open()
            .map_err(|e| io::Error::other(format!("cannot open data store {}: {e}", dir.display())))?;
        let mut partitions = BTreeMap::new();
        for space in Space::ALL {
            let handle = keyspace
                .open_partition(space.name(), PartitionCreateOptions::default())
                .map_err(|e| io::Error::other(format!("cannot open {} in {}: {e}", space.name(), dir.display())))?;
            partitions.insert(space, handle);
        }
        Ok(FjallStore { keyspace, partitions })
    }

    fn partition(&self, space: Space) -> &PartitionHandle {
        self.partitions.get(&space).expect("every space is opened in FjallStore::open")
    }
}

impl Store for FjallStore {
    fn write(&self, ops: Vec<WriteOp>) -> io::Result<()> {
        let mut batch = self.keyspace.batch();
        for op in ops {
            match op {
                WriteOp::Put(space, key, value) => batch.insert(self.partition(space), key, value),
                WriteOp::Delete(space, key) => batch.remove(self.partition(space), key),
                WriteOp::DeleteRange(space, from, to) => {
                    let partition = self.partition(space);
                    for item in partition.range(from..to) {
                        let (key, _) = item.map_err(to_io)?;
                        batch.remove(partition, key);
                    }
                }
            }
        }
        batch.commit().map_err(to_io)
    }

    fn sync(&self) -> io::Result<()> {
        self.keyspace.persist(PersistMode::SyncAll).map_err(to_io)
    }

    fn get(&self, space: Space, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        Ok(self.partition(space).get(key).map_err(to_io)?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        space: Space,
        from: &[u8],
        to: Option<&[u8]>,
        limit_max: usize,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let partition = self.partition(space);
        let mut out = Vec::new();
        let iter: Box<dyn Iterator<Item = fjall::Result<fjall::KvPair>>> = match to {
            Some(to) => Box::new(partition.range(from.to_vec()..to.to_vec())),
            None => Box::new(partition.range(from.to_vec()..)),
        };
        for item in iter.take(limit_max) {
            let (key, value) = item.map_err(to_io)?;
            out.push((key.to_vec(), value.to_vec()));
        }
        Ok(out)
    }

    fn last(&self, space: Space) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        let last = self.partition(space).last_key_value().map_err(to_io)?;
        Ok(last.map(|(k, v)| (k.to_vec(), v.to_vec())))
    }
}
