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

/// Bytes buffered between the staged chunks and the decoder.
const DECODE_BUFFER_BYTES: usize = 64 << 10;

/// A restore whose chunks are arriving, kept as they came so the commit can drop each one as soon as
/// it has been decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreStaging {
    restore_id: u64,
    chunks: Vec<Vec<u8>>,
    size_bytes: u64,
}

/// Reads the staged chunks in order, freeing each one once it has been read: decoding the new state
/// never holds the staged bytes and the whole new state at once.
struct DrainingReader {
    chunks: std::collections::VecDeque<Vec<u8>>,
    offset: usize,
}

impl std::io::Read for DrainingReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while let Some(front) = self.chunks.front() {
            if self.offset < front.len() {
                let n = out.len().min(front.len() - self.offset);
                out[..n].copy_from_slice(&front[self.offset..self.offset + n]);
                self.offset += n;
                return Ok(n);
            }
            self.chunks.pop_front();
            self.offset = 0;
        }
        Ok(0)
    }
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
                    || staging.chunks.len() as u64 != u64::from(*chunks)
                    || staging.size_bytes != *size_bytes
                {
                    return Response::Rejected(format!(
                        "restore {restore_id}: staged {} chunks ({} bytes) of restore {}, expected {chunks} ({size_bytes} bytes)",
                        staging.chunks.len(),
                        staging.size_bytes,
                        staging.restore_id
                    ));
                }
                // Buffered: the decoder reads a byte at a time.
                let mut reader = std::io::BufReader::with_capacity(
                    DECODE_BUFFER_BYTES,
                    DrainingReader { chunks: staging.chunks.into(), offset: 0 },
                );
                match codec::decode_snapshot_from(&mut reader) {
                    Ok(restored) => {
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
            self.restore_staging = Some(RestoreStaging { restore_id, chunks: Vec::new(), size_bytes: 0 });
        }
        match &mut self.restore_staging {
            Some(staging) if staging.restore_id == restore_id && staging.chunks.len() as u64 == u64::from(seq) => {
                staging.chunks.push(bytes.to_vec());
                staging.size_bytes += bytes.len() as u64;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvCommand;
    use crate::state::Command;

    fn set(key: &str, value: &str) -> Command {
        Command::Kv(KvCommand::Set { key: key.into(), value: value.as_bytes().to_vec(), flags: 0 })
    }

    fn chunk(restore_id: u64, seq: u32, bytes: &[u8]) -> Command {
        Command::Restore(RestoreCommand::Chunk { restore_id, seq, bytes: bytes.to_vec() })
    }

    fn commit(restore_id: u64, chunks: u32, size_bytes: u64) -> Command {
        Command::Restore(RestoreCommand::Commit { restore_id, chunks, size_bytes })
    }

    /// A state with `key` set, encoded and cut into `pieces` chunks.
    fn archived(key: &str, pieces: usize) -> Vec<Vec<u8>> {
        let mut source = State::new();
        source.apply_at(1, 0, &set(key, "from the snapshot"));
        let bytes = codec::encode_snapshot(&source);
        let size = bytes.len().div_ceil(pieces);
        bytes.chunks(size).map(<[u8]>::to_vec).collect()
    }

    fn restore_into(state: &mut State, first_index: u64, restore_id: u64, pieces: &[Vec<u8>]) -> Response {
        let mut index = first_index;
        for (seq, bytes) in pieces.iter().enumerate() {
            assert_eq!(state.apply_at(index, 0, &chunk(restore_id, seq as u32, bytes)), Response::Applied);
            index += 1;
        }
        let size = pieces.iter().map(Vec::len).sum::<usize>() as u64;
        state.apply_at(index, 0, &commit(restore_id, pieces.len() as u32, size))
    }

    #[test]
    fn a_committed_restore_replaces_the_state_at_the_commit_index() {
        let mut state = State::new();
        for i in 1..=20 {
            state.apply_at(i, 0, &set(&format!("old/{i}"), "x"));
        }
        assert_eq!(restore_into(&mut state, 21, 7, &archived("restored", 3)), Response::Applied);
        assert!(state.kv().get("old/1").is_none(), "the old state is gone");
        assert_eq!(state.kv().get("restored").unwrap().value, b"from the snapshot");
        assert_eq!(state.last_index(), 24, "the index does not go back to the snapshot's");
        assert_eq!(state.restored_index(), 24);
    }

    #[test]
    fn chunks_out_of_order_or_a_commit_that_does_not_match_change_nothing() {
        let mut state = State::new();
        state.apply_at(1, 0, &set("kept", "x"));
        let pieces = archived("restored", 3);
        state.apply_at(2, 0, &chunk(9, 0, &pieces[0]));
        assert!(matches!(state.apply_at(3, 0, &chunk(9, 2, &pieces[2])), Response::Rejected(_)));
        assert!(matches!(state.apply_at(4, 0, &commit(9, 3, 1)), Response::Rejected(_)));
        assert!(state.kv().get("kept").is_some());
        assert!(matches!(state.apply_at(5, 0, &commit(9, 1, 1)), Response::Rejected(_)), "no staging left");
        assert_eq!(state.restored_index(), 0);
    }

    #[test]
    fn bytes_that_do_not_decode_are_refused_at_the_commit() {
        let mut state = State::new();
        state.apply_at(1, 0, &set("kept", "x"));
        let garbage = vec![vec![codec::CODEC_VERSION, 0xff, 0xff, 0xff]];
        assert!(matches!(restore_into(&mut state, 2, 3, &garbage), Response::Rejected(_)));
        assert!(state.kv().get("kept").is_some());
    }

    #[test]
    fn a_new_first_chunk_drops_a_restore_that_never_committed() {
        let mut state = State::new();
        let abandoned = archived("abandoned", 2);
        state.apply_at(1, 0, &chunk(1, 0, &abandoned[0]));
        assert_eq!(restore_into(&mut state, 2, 2, &archived("second", 2)), Response::Applied);
        assert!(state.kv().get("second").is_some() && state.kv().get("abandoned").is_none());
    }
}
