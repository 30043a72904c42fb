//! The Raft state machine: core's `State` behind a lock shared with the HTTP API, plus the membership
//! and last-applied id openraft needs. Snapshots are encoded straight into the store as pieces
//! (`raft::snapshot_store`) and synced before they are reported; at start the latest snapshot is decoded
//! from its pieces and openraft re-applies the committed log after it. Neither holds a second copy of
//! the state. A snapshot taken while a restore's chunks are staged carries those chunks.

use std::io::{Cursor, Read, Write};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use conclave_core::codec;
use conclave_core::state::{Command, Response, RestoreSpace, State};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::restore_space::StoreRestoreSpace;
use super::snapshot_store::{self, StoredSnapshot};
use super::{storage_error, LogId, NodeId, StorageError, TypeConfig};
use crate::env::Store;

/// Bytes buffered between the store's pieces and the encoder or decoder.
const BUFFER_BYTES: usize = 64 << 10;

/// The replicated state as every reader of this node sees it, with a watch of the last applied index so blocking
/// queries and read-index waits can sleep until the state moves.
pub struct SharedState {
    state: RwLock<State>,
    applied_index: watch::Sender<u64>,
}

impl SharedState {
    pub fn new() -> Arc<SharedState> {
        Arc::new(SharedState { state: RwLock::new(State::new()), applied_index: watch::Sender::new(0) })
    }

    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().expect("state lock poisoned")
    }

    pub fn applied_index(&self) -> u64 {
        *self.applied_index.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.applied_index.subscribe()
    }

    fn replace(&self, catalog: State) {
        let index = catalog.last_index();
        *self.state.write().expect("state lock poisoned") = catalog;
        self.applied_index.send_replace(index);
    }
}

/// What a snapshot's body holds before the state itself (which follows it, encoded by
/// `codec::encode_snapshot_into`).
#[derive(Serialize, Deserialize)]
struct SnapshotHeader {
    last_applied: Option<LogId>,
    membership: StoredMembership<NodeId, BasicNode>,
    /// The staged chunks of the restore under way (`State::staged_restore_chunks`), in order.
    restore_chunks: Vec<serde_bytes::ByteBuf>,
}

pub struct StateMachine {
    shared: Arc<SharedState>,
    store: Arc<dyn Store>,
    restore_space: StoreRestoreSpace,
    last_applied: Option<LogId>,
    membership: StoredMembership<NodeId, BasicNode>,
    /// The generation of the current snapshot in the store (`None` before the first).
    snapshot_generation: Option<u64>,
    node_name: String,
}

impl StateMachine {
    /// Loads the latest snapshot from `store`, if any. A snapshot that does not decode is an error that
    /// names it: starting with an empty catalog instead would silently lose data.
    pub fn open(store: Arc<dyn Store>, shared: Arc<SharedState>, node_name: &str) -> anyhow::Result<StateMachine> {
        let current = snapshot_store::current(store.as_ref())?;
        snapshot_store::drop_other_generations(store.as_ref(), current.as_ref().map(|s| s.generation))?;
        let mut machine = StateMachine {
            shared,
            restore_space: StoreRestoreSpace::new(store.clone()),
            store,
            last_applied: None,
            membership: StoredMembership::default(),
            snapshot_generation: current.as_ref().map(|s| s.generation),
            node_name: node_name.to_string(),
        };
        match current {
            Some(stored) => {
                let store = machine.store.clone();
                let mut body =
                    std::io::BufReader::with_capacity(BUFFER_BYTES, snapshot_store::reader(store.as_ref(), &stored));
                machine
                    .load(&mut body, stored.size_bytes)
                    .map_err(|e| anyhow::anyhow!("cannot load the snapshot in the data dir: {e}"))?;
            }
            // Left by a restore cut short; the log replays it from its first chunk.
            None => machine.restore_space.clear()?,
        }
        Ok(machine)
    }

    /// Replaces the membership this state machine reports (and puts in its next snapshot). Only the
    /// offline recovery of `node::raft_recover` does this, before openraft has read the store.
    pub fn replace_membership(&mut self, membership: StoredMembership<NodeId, BasicNode>) {
        self.membership = membership;
    }

    /// Takes the snapshot body in `body` (`size_bytes` long) as this node's state, its staged restore
    /// chunks into the restore space.
    fn load(&mut self, body: &mut impl Read, size_bytes: u64) -> Result<(), String> {
        let header: SnapshotHeader = codec::decode_prefix_from(body, size_bytes).map_err(|e| e.to_string())?;
        let catalog = codec::decode_snapshot_from(body, size_bytes).map_err(|e| e.to_string())?;
        let staged = catalog.staged_restore_chunks().unwrap_or(0);
        if staged as usize != header.restore_chunks.len() {
            let carried = header.restore_chunks.len();
            return Err(format!("the state has {staged} restore chunks staged, the snapshot carries {carried}"));
        }
        let space_error = |e: std::io::Error| format!("restore space: {e}");
        self.restore_space.clear().map_err(space_error)?;
        for (seq, chunk) in header.restore_chunks.iter().enumerate() {
            self.restore_space.put_chunk(seq as u32, chunk.as_slice()).map_err(space_error)?;
        }
        self.last_applied = header.last_applied;
        self.membership = header.membership;
        self.shared.replace(catalog);
        Ok(())
    }

    /// The staged chunks of the restore under way, read back from the restore space.
    fn staged_chunks(&self, chunks: u32) -> std::io::Result<Vec<Vec<u8>>> {
        (0..chunks).map(|seq| self.restore_space.staged_chunk(seq)).collect()
    }

    fn next_generation(&self) -> u64 {
        self.snapshot_generation.map_or(1, |g| g + 1)
    }

    /// Writes the pieces of a snapshot of the state as it is now as generation `generation`, the state's
    /// read lock held while it is encoded; its record, to be made current.
    fn write_snapshot(
        &self,
        generation: u64,
        meta: SnapshotMeta<NodeId, BasicNode>,
    ) -> std::io::Result<StoredSnapshot> {
        let state = self.shared.read();
        let restore_chunks = match state.staged_restore_chunks() {
            Some(chunks) => self.staged_chunks(chunks)?.into_iter().map(serde_bytes::ByteBuf::from).collect(),
            None => Vec::new(),
        };
        let header =
            SnapshotHeader { last_applied: self.last_applied, membership: self.membership.clone(), restore_chunks };
        let mut pieces = snapshot_store::writer(self.store.as_ref(), generation);
        {
            let mut buffered = std::io::BufWriter::with_capacity(BUFFER_BYTES, &mut pieces);
            buffered.write_all(&codec::encode(&header))?;
            codec::encode_snapshot_into(&state, &mut buffered)?;
            buffered.flush()?;
        }
        pieces.flush()?;
        let (count, size_bytes) = pieces.stored();
        Ok(StoredSnapshot { meta, generation, pieces: count, size_bytes })
    }
}

/// Makes current the snapshot whose pieces `get_snapshot_builder` wrote while openraft waited (applying
/// cannot run meanwhile, so those pieces are the state at the snapshot's index).
pub struct SnapshotBuilder {
    store: Arc<dyn Store>,
    /// The snapshot written, or why it could not be.
    written: Result<StoredSnapshot, String>,
    previous_generation: Option<u64>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let stored = match &self.written {
            Ok(stored) => stored.clone(),
            Err(e) => return Err(storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Write, e)),
        };
        let subject = ErrorSubject::Snapshot(Some(stored.meta.signature()));
        snapshot_store::make_current(&self.store, &stored, self.previous_generation)
            .await
            .map_err(|e| storage_error(subject, ErrorVerb::Write, e))?;
        tracing::info!(target: "conclave::event", index = ?stored.meta.last_log_id.map(|l| l.index), bytes = stored.size_bytes, "snapshot built");
        // openraft keeps only the meta of what it built; followers get the body from get_current_snapshot.
        Ok(Snapshot { meta: stored.meta, snapshot: Box::new(Cursor::new(Vec::new())) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership<NodeId, BasicNode>), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut responses = Vec::new();
        let last_index = {
            let mut catalog = self.shared.state.write().expect("state lock poisoned");
            for entry in entries {
                let index = entry.log_id.index;
                // openraft writes the initial membership at index 0; the catalog's indexes start at 1,
                // as Consul's do, so that entry only moves the membership.
                if let EntryPayload::Membership(membership) = &entry.payload {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership.clone());
                }
                let response = match &entry.payload {
                    _ if index == 0 => Response::Applied,
                    EntryPayload::Normal(proposal) => catalog
                        .apply_proposal(index, proposal, &mut self.restore_space)
                        .map_err(|e| storage_error(ErrorSubject::Apply(entry.log_id), ErrorVerb::Write, e))?,
                    EntryPayload::Blank | EntryPayload::Membership(_) => catalog.apply_at(index, 0, &Command::Noop),
                };
                self.last_applied = Some(entry.log_id);
                responses.push(response);
            }
            catalog.last_index()
        };
        tracing::debug!(target: "conclave::event", node = %self.node_name, applied = last_index, "applied");
        self.shared.applied_index.send_replace(last_index);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let index = self.last_applied.map(|l| l.index).unwrap_or(0);
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!("{index}-{}", self.last_applied.map(|l| l.leader_id.term).unwrap_or(0)),
        };
        let generation = self.next_generation();
        let started = tokio::time::Instant::now();
        let written = self.write_snapshot(generation, meta).map_err(|e| format!("at index {index}: {e}"));
        if let Ok(stored) = &written {
            let elapsed_ms = started.elapsed().as_millis() as u64;
            tracing::info!(target: "conclave::event", node = %self.node_name, index, bytes = stored.size_bytes, elapsed_ms, "snapshot written");
        }
        let previous_generation = self.snapshot_generation;
        if written.is_ok() {
            self.snapshot_generation = Some(generation);
        }
        SnapshotBuilder { store: self.store.clone(), written, previous_generation }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let body = snapshot.into_inner();
        let subject = ErrorSubject::Snapshot(Some(meta.signature()));
        let write_error = |e: std::io::Error| storage_error(subject.clone(), ErrorVerb::Write, e);
        // Persist first: a crash after restoring but before persisting would leave purged logs and no snapshot.
        let generation = self.next_generation();
        let mut pieces = snapshot_store::writer(self.store.as_ref(), generation);
        pieces.write_all(&body).map_err(write_error)?;
        pieces.flush().map_err(write_error)?;
        let (count, size_bytes) = pieces.stored();
        let stored = StoredSnapshot { meta: meta.clone(), generation, pieces: count, size_bytes };
        snapshot_store::make_current(&self.store, &stored, self.snapshot_generation).await.map_err(write_error)?;
        self.snapshot_generation = Some(generation);
        // Decoded from the pieces, so the received copy is freed before the new state is built.
        drop(body);
        let store = self.store.clone();
        let mut reader =
            std::io::BufReader::with_capacity(BUFFER_BYTES, snapshot_store::reader(store.as_ref(), &stored));
        self.load(&mut reader, size_bytes).map_err(|e| storage_error(subject.clone(), ErrorVerb::Read, e))?;
        tracing::debug!(target: "conclave::event", node = %self.node_name, index = ?meta.last_log_id.map(|l| l.index), "snapshot installed");
        Ok(())
    }

    /// Read back from the store rather than kept in memory: a copy of the whole state per node would double
    /// its memory for the rare follower that needs it.
    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let read_error = |e: std::io::Error| storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Read, e);
        let Some(stored) = snapshot_store::current(self.store.as_ref()).map_err(read_error)? else {
            return Ok(None);
        };
        let mut body = Vec::new();
        body.try_reserve_exact(stored.size_bytes as usize).map_err(|e| read_error(std::io::Error::other(e)))?;
        snapshot_store::reader(self.store.as_ref(), &stored).read_to_end(&mut body).map_err(read_error)?;
        Ok(Some(Snapshot { meta: stored.meta, snapshot: Box::new(Cursor::new(body)) }))
    }
}
