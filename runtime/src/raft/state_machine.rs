//! The Raft state machine: core's `State` behind a lock shared with the HTTP API, plus the membership
//! and last-applied id openraft needs. Snapshots are written to the store and synced before they are
//! reported; at start the latest snapshot is loaded and openraft re-applies the committed log after it.

use std::io::Cursor;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use conclave_core::codec;
use conclave_core::state::{Command, Response, State};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{storage_error, LogId, NodeId, StorageError, TypeConfig};
use crate::env::{Space, Store, WriteOp};

const KEY_SNAPSHOT: &[u8] = b"snapshot";

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

/// What a snapshot holds, encoded through `codec`.
#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    last_applied: Option<LogId>,
    membership: StoredMembership<NodeId, BasicNode>,
    catalog: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    body: Vec<u8>,
}

pub struct StateMachine {
    shared: Arc<SharedState>,
    store: Arc<dyn Store>,
    last_applied: Option<LogId>,
    membership: StoredMembership<NodeId, BasicNode>,
    node_name: String,
}

impl StateMachine {
    /// Loads the latest snapshot from `store`, if any. A snapshot that does not decode is an error that
    /// names it: starting with an empty catalog instead would silently lose data.
    pub fn open(store: Arc<dyn Store>, shared: Arc<SharedState>, node_name: &str) -> anyhow::Result<StateMachine> {
        let mut machine = StateMachine {
            shared,
            store,
            last_applied: None,
            membership: StoredMembership::default(),
            node_name: node_name.to_string(),
        };
        if let Some(bytes) = machine.store.get(Space::RaftMeta, KEY_SNAPSHOT)? {
            let stored: StoredSnapshot = codec::decode_large(&bytes)
                .map_err(|e| anyhow::anyhow!("corrupt snapshot in the data dir (raft_meta/snapshot): {e}"))?;
            machine.restore(&stored.body).map_err(|e| anyhow::anyhow!("corrupt snapshot in the data dir: {e}"))?;
        }
        Ok(machine)
    }

    /// Replaces the membership this state machine reports (and puts in its next snapshot). Only the
    /// offline recovery of `node::raft_recover` does this, before openraft has read the store.
    pub fn replace_membership(&mut self, membership: StoredMembership<NodeId, BasicNode>) {
        self.membership = membership;
    }

    fn restore(&mut self, body: &[u8]) -> Result<(), codec::CodecError> {
        let decoded: SnapshotBody = codec::decode_large(body)?;
        let catalog = codec::decode_snapshot(&decoded.catalog)?;
        self.last_applied = decoded.last_applied;
        self.membership = decoded.membership;
        self.shared.replace(catalog);
        Ok(())
    }

    async fn persist_snapshot(
        store: &Arc<dyn Store>,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        body: &[u8],
    ) -> Result<(), StorageError> {
        let stored = codec::encode(&StoredSnapshot { meta: meta.clone(), body: body.to_vec() });
        let subject = ErrorSubject::Snapshot(Some(meta.signature()));
        store
            .write(vec![WriteOp::Put(Space::RaftMeta, KEY_SNAPSHOT.to_vec(), stored)])
            .map_err(|e| storage_error(subject.clone(), ErrorVerb::Write, e))?;
        store.clone().sync_durable().await.map_err(|e| storage_error(subject, ErrorVerb::Write, e))
    }
}

/// Builds a snapshot from a copy taken when openraft asked for the builder, so applying can go on meanwhile.
pub struct SnapshotBuilder {
    store: Arc<dyn Store>,
    meta: SnapshotMeta<NodeId, BasicNode>,
    body: Vec<u8>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        StateMachine::persist_snapshot(&self.store, &self.meta, &self.body).await?;
        tracing::debug!(target: "conclave::event", index = ?self.meta.last_log_id.map(|l| l.index), "snapshot built");
        Ok(Snapshot { meta: self.meta.clone(), snapshot: Box::new(Cursor::new(self.body.clone())) })
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
                    EntryPayload::Normal(proposal) => catalog.apply_proposal(index, proposal),
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
        let catalog = codec::encode_snapshot(&self.shared.read());
        let body = codec::encode(&SnapshotBody {
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            catalog,
        });
        let index = self.last_applied.map(|l| l.index).unwrap_or(0);
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!("{index}-{}", self.last_applied.map(|l| l.leader_id.term).unwrap_or(0)),
        };
        SnapshotBuilder { store: self.store.clone(), meta, body }
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
        // Persist first: a crash after restoring but before persisting would leave purged logs and no snapshot.
        Self::persist_snapshot(&self.store, meta, &body).await?;
        self.restore(&body).map_err(|e| storage_error(subject, ErrorVerb::Read, e))?;
        tracing::debug!(target: "conclave::event", node = %self.node_name, index = ?meta.last_log_id.map(|l| l.index), "snapshot installed");
        Ok(())
    }

    /// Read back from the store rather than kept in memory: a copy of the whole state per node would double
    /// its memory for the rare follower that needs it.
    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let read_error = |e: String| storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Read, e);
        let Some(bytes) = self.store.get(Space::RaftMeta, KEY_SNAPSHOT).map_err(|e| read_error(e.to_string()))? else {
            return Ok(None);
        };
        let stored: StoredSnapshot = codec::decode_large(&bytes).map_err(|e| read_error(e.to_string()))?;
        Ok(Some(Snapshot { meta: stored.meta, snapshot: Box::new(Cursor::new(stored.body)) }))
    }
}
