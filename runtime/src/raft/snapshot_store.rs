//! Raft snapshots in the store, never whole in memory on the way in or out: the body is written as
//! pieces (`raft::pieces`) of the `raft_snapshot` space under a generation number while it is encoded,
//! and one record in `raft_meta` names the current generation with its meta. A new generation's pieces
//! are synced before the record moves to them (and the old pieces go), so a crash leaves the old
//! snapshot or the new one, never a mix.

use std::io::{self, Read};

use openraft::{BasicNode, SnapshotMeta};
use serde::{Deserialize, Serialize};

use super::pieces::{delete_pieces, read_pieces, PieceWriter};
use super::NodeId;
use crate::env::{Space, Store, WriteOp};
use conclave_core::codec;

const KEY_SNAPSHOT: &[u8] = b"snapshot";

/// The record of the current snapshot.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredSnapshot {
    pub meta: SnapshotMeta<NodeId, BasicNode>,
    pub generation: u64,
    pub pieces: u32,
    pub size_bytes: u64,
}

fn prefix(generation: u64) -> [u8; 8] {
    generation.to_be_bytes()
}

/// The current snapshot's record, if there is one. A record that does not decode is an error.
pub fn current(store: &dyn Store) -> io::Result<Option<StoredSnapshot>> {
    let Some(bytes) = store.get(Space::RaftMeta, KEY_SNAPSHOT)? else { return Ok(None) };
    codec::decode(&bytes)
        .map(Some)
        .map_err(|e| io::Error::other(format!("corrupt snapshot record in the data dir (raft_meta/snapshot): {e}")))
}

/// A writer of the body of generation `generation` (its pieces from an earlier try are replaced).
pub fn writer(store: &dyn Store, generation: u64) -> PieceWriter<'_> {
    PieceWriter::new(store, Space::RaftSnapshot, &prefix(generation))
}

/// The body of `stored`, read piece by piece.
pub fn reader<'a>(store: &'a dyn Store, stored: &StoredSnapshot) -> Box<dyn Read + 'a> {
    read_pieces(store, Space::RaftSnapshot, &prefix(stored.generation), Some(stored.pieces))
}

/// Makes `next` (whose pieces are written) the current snapshot, durably, and drops the pieces of
/// `previous_generation`.
pub async fn make_current(
    store: &std::sync::Arc<dyn Store>,
    next: &StoredSnapshot,
    previous_generation: Option<u64>,
) -> io::Result<()> {
    store.clone().sync_durable().await?;
    let mut ops = vec![WriteOp::Put(Space::RaftMeta, KEY_SNAPSHOT.to_vec(), codec::encode(next))];
    if let Some(previous) = previous_generation.filter(|&g| g != next.generation) {
        ops.push(delete_pieces(Space::RaftSnapshot, &prefix(previous)));
    }
    store.write(ops)?;
    store.clone().sync_durable().await
}

/// Deletes the pieces of every generation but `kept` (left by a snapshot cut short by a crash).
pub fn drop_other_generations(store: &dyn Store, kept: Option<u64>) -> io::Result<()> {
    let end = vec![u8::MAX; 13];
    let ops = match kept {
        None => vec![WriteOp::DeleteRange(Space::RaftSnapshot, Vec::new(), end)],
        Some(kept) => vec![
            WriteOp::DeleteRange(Space::RaftSnapshot, Vec::new(), prefix(kept).to_vec()),
            WriteOp::DeleteRange(Space::RaftSnapshot, [prefix(kept).as_slice(), &[u8::MAX; 5]].concat(), end),
        ],
    };
    store.write(ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MemStore;
    use std::io::Write;
    use std::sync::Arc;

    fn meta(index: u64) -> SnapshotMeta<NodeId, BasicNode> {
        SnapshotMeta { last_log_id: None, last_membership: Default::default(), snapshot_id: format!("{index}") }
    }

    fn write_generation(store: &dyn Store, generation: u64, body: &[u8]) -> StoredSnapshot {
        let mut pieces = writer(store, generation);
        pieces.write_all(body).unwrap();
        pieces.flush().unwrap();
        let (count, size_bytes) = pieces.stored();
        StoredSnapshot { meta: meta(generation), generation, pieces: count, size_bytes }
    }

    #[tokio::test]
    async fn a_new_generation_replaces_the_old_and_leftovers_are_dropped() {
        let store: Arc<dyn Store> = Arc::new(MemStore::new());
        let first = write_generation(store.as_ref(), 1, b"first body");
        make_current(&store, &first, None).await.unwrap();
        let second = write_generation(store.as_ref(), 2, b"second body");
        make_current(&store, &second, Some(1)).await.unwrap();
        let leftover = write_generation(store.as_ref(), 3, b"cut short");

        let now = current(store.as_ref()).unwrap().expect("a snapshot");
        assert_eq!(now.generation, 2);
        let mut body = String::new();
        reader(store.as_ref(), &now).read_to_string(&mut body).unwrap();
        assert_eq!(body, "second body");
        assert!(reader(store.as_ref(), &first).read_to_end(&mut Vec::new()).is_err(), "generation 1 is gone");

        drop_other_generations(store.as_ref(), Some(2)).unwrap();
        assert!(reader(store.as_ref(), &leftover).read_to_end(&mut Vec::new()).is_err(), "generation 3 is gone");
        let mut kept = String::new();
        reader(store.as_ref(), &now).read_to_string(&mut kept).unwrap();
        assert_eq!(kept, "second body");
    }
}
