//! The Raft log and vote, persisted in the Env store. Every append, vote and truncation is synced before
//! openraft is told it is durable, so nothing a node acknowledged can be lost in a crash. Syncs are
//! awaited (`Store::sync_durable`) and noted in `DiskSyncs`, so a hung fsync is seen by the disk watchdog.

use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::Arc;

use conclave_core::codec;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, Vote};

use super::disk_syncs::DiskSyncs;
use super::{storage_error, LogId, NodeId, StorageError, TypeConfig};
use crate::env::{Space, Store, WriteOp};

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";

/// Entries read from the store in one scan. A read of a longer range takes several scans and returns
/// the whole range: openraft's apply path asks for every committed entry at once and takes a short
/// answer for a storage error (a follower catching up after a long partition commits far past this).
/// Replication batches are bounded by openraft's own `max_payload_entries`.
const SCAN_ENTRIES_MAX: usize = 4096;

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

#[derive(Clone)]
pub struct LogStore {
    store: Arc<dyn Store>,
    syncs: Arc<DiskSyncs>,
    /// Planted bug (`FaultSwitches::skip_log_fsync`): appends are reported durable unsynced.
    skip_append_sync: bool,
}

impl LogStore {
    pub fn new(store: Arc<dyn Store>, syncs: Arc<DiskSyncs>) -> LogStore {
        LogStore { store, syncs, skip_append_sync: false }
    }

    /// Plants the bug of `FaultSwitches::skip_log_fsync` when `skip` is set.
    pub fn skipping_append_sync(self, skip: bool) -> LogStore {
        LogStore { skip_append_sync: skip, ..self }
    }

    fn read_meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        let bytes =
            self.store.get(Space::RaftMeta, key).map_err(|e| storage_error(ErrorSubject::Store, ErrorVerb::Read, e))?;
        match bytes {
            None => Ok(None),
            Some(bytes) => codec::decode(&bytes).map(Some).map_err(|e| {
                storage_error(
                    ErrorSubject::Store,
                    ErrorVerb::Read,
                    format!("corrupt raft meta {:?}: {e}", String::from_utf8_lossy(key)),
                )
            }),
        }
    }

    async fn write_synced(&self, ops: Vec<WriteOp>, subject: ErrorSubject<NodeId>) -> Result<(), StorageError> {
        self.store.write(ops).map_err(|e| storage_error(subject.clone(), ErrorVerb::Write, e))?;
        let _in_flight = self.syncs.begin();
        self.store.clone().sync_durable().await.map_err(|e| storage_error(subject, ErrorVerb::Write, e))
    }

    fn decode_entry(bytes: &[u8]) -> Result<Entry<TypeConfig>, StorageError> {
        codec::decode(bytes)
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, format!("corrupt log entry: {e}")))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        use std::ops::Bound;
        let from = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(i) => Some(i + 1),
            Bound::Excluded(i) => Some(*i),
            Bound::Unbounded => None,
        };
        let to_key = to.map(index_key);
        let mut entries = Vec::new();
        let mut next = from;
        loop {
            let rows = self
                .store
                .scan(Space::RaftLog, &index_key(next), to_key.as_ref().map(|k| k.as_slice()), SCAN_ENTRIES_MAX)
                .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            for (_, bytes) in &rows {
                entries.push(Self::decode_entry(bytes)?);
            }
            match entries.last() {
                Some(last) if rows.len() == SCAN_ENTRIES_MAX && last.log_id.index < u64::MAX => {
                    next = last.log_id.index + 1;
                }
                _ => return Ok(entries),
            }
        }
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId> = self.read_meta(KEY_LAST_PURGED)?;
        let last =
            self.store.last(Space::RaftLog).map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, e))?;
        let last_log_id = match last {
            Some((_, bytes)) => Some(Self::decode_entry(&bytes)?.log_id),
            None => last_purged,
        };
        Ok(LogState { last_purged_log_id: last_purged, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.write_synced(
            vec![WriteOp::Put(Space::RaftMeta, KEY_VOTE.to_vec(), codec::encode(vote))],
            ErrorSubject::Vote,
        )
        .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.read_meta(KEY_VOTE)
    }

    /// The committed id speeds up recovery (entries up to it are re-applied at start) but losing it is
    /// harmless, so it is written without a sync of its own.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.store
            .write(vec![WriteOp::Put(Space::RaftMeta, KEY_COMMITTED.to_vec(), codec::encode(&committed))])
            .map_err(|e| storage_error(ErrorSubject::Store, ErrorVerb::Write, e))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.read_meta::<Option<LogId>>(KEY_COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let ops: Vec<WriteOp> = entries
            .into_iter()
            .map(|entry| WriteOp::Put(Space::RaftLog, index_key(entry.log_id.index).to_vec(), codec::encode(&entry)))
            .collect();
        let result = match self.skip_append_sync {
            true => self.store.write(ops).map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Write, e)),
            false => self.write_synced(ops, ErrorSubject::Logs).await,
        };
        callback.log_io_completed(result.clone().map_err(|e| std::io::Error::other(e.to_string())));
        result
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let op = WriteOp::DeleteRange(Space::RaftLog, index_key(log_id.index).to_vec(), index_key(u64::MAX).to_vec());
        let last = WriteOp::Delete(Space::RaftLog, index_key(u64::MAX).to_vec());
        self.write_synced(vec![op, last], ErrorSubject::Logs).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let ops = vec![
            WriteOp::Put(Space::RaftMeta, KEY_LAST_PURGED.to_vec(), codec::encode(&log_id)),
            WriteOp::DeleteRange(Space::RaftLog, index_key(0).to_vec(), index_key(log_id.index + 1).to_vec()),
        ];
        self.write_synced(ops, ErrorSubject::Logs).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MemStore;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn store_with_entries(count: u64) -> LogStore {
        let store: Arc<dyn Store> = Arc::new(MemStore::new());
        let ops = (1..=count)
            .map(|index| {
                let entry: Entry<TypeConfig> =
                    Entry { log_id: LogId::new(CommittedLeaderId::new(1, 1), index), payload: EntryPayload::Blank };
                WriteOp::Put(Space::RaftLog, index_key(index).to_vec(), codec::encode(&entry))
            })
            .collect();
        store.write(ops).unwrap();
        LogStore::new(store, DiskSyncs::new())
    }

    #[tokio::test]
    async fn a_read_longer_than_one_scan_returns_the_whole_range() {
        let count = 3 * SCAN_ENTRIES_MAX as u64 + 17;
        let mut log = store_with_entries(count);
        let entries = log.try_get_log_entries(1..=count).await.unwrap();
        assert_eq!(entries.len() as u64, count);
        assert!(entries.iter().enumerate().all(|(i, e)| e.log_id.index == i as u64 + 1));
        let tail = log.try_get_log_entries(5000..).await.unwrap();
        assert_eq!((tail.len() as u64, tail[0].log_id.index), (count - 4999, 5000));
        let exact = log.try_get_log_entries(1..SCAN_ENTRIES_MAX as u64 + 1).await.unwrap();
        assert_eq!(exact.len(), SCAN_ENTRIES_MAX);
    }
}
