//! Restoring a snapshot archive through Raft (`PUT /v1/snapshot`). The archive's state is cut into chunk
//! entries that every server stages in its own replicated state, then one commit entry replaces the whole
//! state with the staged one. Staging lives in `State` itself, so a Raft snapshot taken between the
//! chunks and the commit carries it, a restart replays it and a follower that installs that snapshot still
//! commits the same restore: every server ends with exactly the snapshot's state.
//!
//! Indexes keep growing: the restored state is adopted at the commit's index and every blocking-query
//! index reads at least that index, so a client blocked on an index from before the restore wakes.

use serde::{Deserialize, Serialize};

use super::command::Response;
use super::machine::State;
use crate::codec;

/// Largest chunk of archived state one log entry carries.
pub const RESTORE_CHUNK_BYTES_MAX: usize = 1 << 20;

/// One step of a restore, proposed by the server that received and verified the archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestoreCommand {
    /// Bytes `seq` of the encoded state of restore `restore_id`; `seq` 0 starts a restore and drops any
    /// restore staged before and never committed.
    Chunk { restore_id: u64, seq: u32, bytes: Vec<u8> },
    /// Replaces the state with the staged one if every chunk (`chunks` of them, `size_bytes` in all)
    /// arrived and the bytes decode; otherwise the state stays as it was and the staging is dropped.
    Commit { restore_id: u64, chunks: u32, size_bytes: u64 },
}

/// A restore whose chunks are arriving.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreStaging {
    restore_id: u64,
    chunks: u32,
    bytes: Vec<u8>,
}

impl State {
    pub(super) fn apply_restore(&mut self, index: u64, command: &RestoreCommand) -> Response {
        match command {
            RestoreCommand::Chunk { restore_id, seq, bytes } => self.stage_chunk(*restore_id, *seq, bytes),
            RestoreCommand::Commit { restore_id, chunks, size_bytes } => {
                let Some(staging) = self.restore_staging.take() else {
                    return Response::Rejected(format!("restore {restore_id}: no chunks staged"));
                };
                if staging.restore_id != *restore_id
                    || staging.chunks != *chunks
                    || staging.bytes.len() as u64 != *size_bytes
                {
                    return Response::Rejected(format!(
                        "restore {restore_id}: staged {} chunks ({} bytes) of restore {}, expected {chunks} ({size_bytes} bytes)",
                        staging.chunks,
                        staging.bytes.len(),
                        staging.restore_id
                    ));
                }
                match codec::decode_snapshot(&staging.bytes) {
                    Ok(restored) => {
                        drop(staging);
                        self.adopt(restored, index);
                        Response::Applied
                    }
                    Err(e) => {
                        Response::Rejected(format!("restore {restore_id}: the archived state does not decode: {e}"))
                    }
                }
            }
        }
    }

    fn stage_chunk(&mut self, restore_id: u64, seq: u32, bytes: &[u8]) -> Response {
        if seq == 0 {
            self.restore_staging = Some(RestoreStaging { restore_id, chunks: 0, bytes: Vec::new() });
        }
        match &mut self.restore_staging {
            Some(staging) if staging.restore_id == restore_id && staging.chunks == seq => {
                staging.chunks += 1;
                staging.bytes.extend_from_slice(bytes);
                Response::Applied
            }
            _ => Response::Rejected(format!("restore {restore_id}: chunk {seq} out of order")),
        }
    }

    /// Takes `restored` as the state from `index` on: its tables, with this state's index and clock
    /// (neither goes back), and `index` as the floor of every blocking-query index.
    fn adopt(&mut self, mut restored: State, index: u64) {
        restored.last_index = index;
        restored.restored_index = index;
        restored.clock_ms = restored.clock_ms.max(self.clock_ms);
        restored.restore_staging = None;
        *self = restored;
    }

    /// The index of the last snapshot restore (0 if none): every blocking-query index is at least this.
    pub fn restored_index(&self) -> u64 {
        self.restored_index
    }
}
