//! The production `Store`: a fjall keyspace in `<data_dir>/store`, one partition per `Space`, fsync on
//! `sync`; the data dir's own files (`serf/local.keyring`) beside it, replaced by write, fsync and rename.
//! The store holds an exclusive lock on `<data_dir>/conclave.lock` while it is open: fjall has no lock of
//! its own, and two processes writing one Raft log (an agent and `operator raft recover`, or two agents
//! started on one data dir) would corrupt it.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use fjall::{Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};

use super::{Space, Store, WriteOp};

/// The lock file in the data dir; it holds the PID of the process that holds the lock.
pub const LOCK_FILE: &str = "conclave.lock";

pub struct FjallStore {
    /// The data dir: the keyspace is its `store` directory.
    data_dir: PathBuf,
    /// Held (locked) for as long as the store is open; the OS releases the lock when the process exits.
    _lock: std::fs::File,
    keyspace: Keyspace,
    partitions: BTreeMap<Space, PartitionHandle>,
}

fn to_io(err: fjall::Error) -> io::Error {
    io::Error::other(err.to_string())
}

impl FjallStore {
    /// Opens (or creates) the store of the data dir `data_dir`. A damaged store is an error naming it; so
    /// is a data dir that another process (an agent) has open.
    pub fn open(data_dir: &Path) -> io::Result<FjallStore> {
        let lock = lock_data_dir(data_dir)?;
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
        Ok(FjallStore { data_dir: data_dir.to_path_buf(), _lock: lock, keyspace, partitions })
    }

    /// Whether the store of `data_dir` exists (an agent has run on it).
    pub fn exists(data_dir: &Path) -> bool {
        data_dir.join("store").is_dir()
    }

    fn partition(&self, space: Space) -> &PartitionHandle {
        self.partitions.get(&space).expect("every space is opened in FjallStore::open")
    }
}

/// Takes the data dir's lock (without waiting) and writes our PID into the lock file. A lock held by
/// another process is an error of kind `WouldBlock` that names the file and the PID found in it.
fn lock_data_dir(data_dir: &Path) -> io::Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    let path = data_dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open lock file {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let holder = match pid.trim() {
                "" => String::new(),
                pid => format!(" (PID {pid})"),
            };
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "data dir {} is in use by another process{holder}: {} is locked; stop the agent first",
                    data_dir.display(),
                    path.display()
                ),
            ));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(io::Error::new(e.kind(), format!("cannot lock {}: {e}", path.display())))
        }
    }
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    Ok(file)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_open_in_another_store_is_refused_until_it_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let first = FjallStore::open(dir.path()).unwrap();
        let error = FjallStore::open(dir.path()).err().expect("the data dir is locked");
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
        let pid = format!("PID {}", std::process::id());
        assert!(error.to_string().contains(&pid), "the holder is named: {error}");
        drop(first);
        FjallStore::open(dir.path()).unwrap();
    }
}
