//! The production `Store`: a fjall keyspace in `<data_dir>/store`, one partition per `Space`, fsync on
//! `sync`; the data dir's own files (`serf/local.keyring`) beside it, replaced by write, fsync and rename.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use fjall::{Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};

use super::{Space, Store, WriteOp};

pub struct FjallStore {
    /// The data dir: the keyspace is its `store` directory.
    data_dir: PathBuf,
    keyspace: Keyspace,
    partitions: BTreeMap<Space, PartitionHandle>,
}

fn to_io(err: fjall::Error) -> io::Error {
    io::Error::other(err.to_string())
}

impl FjallStore {
    /// Opens (or creates) the store of the data dir `data_dir`. A damaged store is an error naming it.
    pub fn open(data_dir: &Path) -> io::Result<FjallStore> {
        let dir = data_dir.join("store");
        let dir = dir.as_path();
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
        Ok(FjallStore { data_dir: data_dir.to_path_buf(), keyspace, partitions })
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

    /// The fsync runs on tokio's blocking pool: a hung disk holds one blocking thread, never the runtime.
    fn sync_durable(self: std::sync::Arc<Self>) -> super::SyncFuture {
        Box::pin(async move {
            match tokio::task::spawn_blocking(move || self.sync()).await {
                Ok(result) => result,
                Err(e) => Err(io::Error::other(format!("the sync task failed: {e}"))),
            }
        })
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

    fn read_file(&self, relative_path: &str) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.data_dir.join(relative_path)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io::Error::new(e.kind(), format!("cannot read {relative_path} in the data dir: {e}"))),
        }
    }

    fn write_file(&self, relative_path: &str, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.data_dir.join(relative_path);
        let dir = path.parent().expect("a file of the data dir has a parent");
        std::fs::create_dir_all(dir)?;
        let temporary = path.with_extension("tmp");
        // Keys live in these files: readable by the agent's user only, as Consul writes them.
        let mut file =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)?;
        std::fs::File::open(dir)?.sync_all()
    }
}
