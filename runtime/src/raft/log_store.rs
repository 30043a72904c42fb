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

/// Upper bound on entries returned by one read, so a lagging follower's catch-up is sent in batches.
const READ_ENTRIES_MAX: usize = 4096;

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

#[derive(Clone)]
pub struct LogStore {
    store: Arc<dyn Store>,
    syncs: Arc<DiskSyncs>,
}

impl LogStore {
    pub fn new(store: Arc<dyn Store>, syncs: Arc<DiskSyncs>) -> LogStore {
        LogStore { store, syncs }
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
        let rows = self
            .store
            .scan(Space::RaftLog, &index_key(from), to_key.as_ref().map(|k| k.as_slice()), READ_ENTRIES_MAX)
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, e))?;
        rows.iter().map(|(_, v)| Self::decode_entry(v)).collect()
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
        let result = self.write_synced(ops, ErrorSubject::Logs).await;
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
