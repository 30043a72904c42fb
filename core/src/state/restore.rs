//! Restoring a snapshot archive through Raft (`PUT /v1/snapshot`). The archive's state is cut into chunk
//! entries that every server stages in its restore space (`restore_space.rs`: the node's store), then one
//! commit entry replaces the whole state with the staged one. The state records which chunks are staged,
//! so a Raft snapshot taken between the chunks and the commit carries that record (and the node puts the
//! staged chunks in the snapshot beside it), a restart replays it and a follower that installs that
//! snapshot still commits the same restore: every server ends with exactly the snapshot's state.
//!
//! The commit spills the old state to the space and frees it before decoding the new one, so a restore
//! needs memory for about one state; if the staged bytes do not decode, the old state is read back.
//!
//! Indexes keep growing: the restored state is adopted at the commit's index and every blocking-query
//! index reads at least that index, so a client blocked on an index from before the restore wakes.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use super::command::Response;
use super::machine::State;
use super::restore_space::RestoreSpace;
use crate::codec;

/// Largest chunk of archived state one log entry carries.
pub const RESTORE_CHUNK_BYTES_MAX: usize = 1 << 20;

/// One step of a restore, proposed by the server that received and verified the archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestoreCommand {
    /// Bytes `seq` of the encoded state of restore `restore_id`; `seq` 0 starts a restore and drops any
    /// restore staged before and never committed.
    Chunk {
        restore_id: u64,
        seq: u32,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Replaces the state with the staged one if every chunk (`chunks` of them, `size_bytes` in all)
    /// arrived and the bytes decode; otherwise the state stays as it was and the staging is dropped.
    Commit { restore_id: u64, chunks: u32, size_bytes: u64 },
}

/// Bytes buffered between the restore space and the encoder or decoder (both work a few bytes at a time).
const BUFFER_BYTES: usize = 64 << 10;

/// The restore whose chunks are arriving: which ones the restore space holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreStaging {
    restore_id: u64,
    /// Chunks `0..chunks` are staged.
    chunks: u32,
    size_bytes: u64,
}

/// Passes reads through and keeps the first error, so a decode that failed on the space's storage (an
/// error of this node) is told apart from bytes that do not decode (the same on every server).
struct ErrorKeeping<R> {
    inner: R,
    error: Option<io::Error>,
}

impl<R: Read> Read for ErrorKeeping<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.inner.read(out).inspect_err(|e| {
            if self.error.is_none() {
                self.error = Some(io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
}

impl State {
    /// The staged restore's chunks (`None` if no restore is under way): a Raft snapshot of this state must
    /// carry that many chunks of the restore space beside it.
    pub fn staged_restore_chunks(&self) -> Option<u32> {
        self.restore_staging.as_ref().map(|staging| staging.chunks)
    }

    pub(super) fn apply_restore(
        &mut self,
        index: u64,
        command: &RestoreCommand,
        space: &mut dyn RestoreSpace,
    ) -> io::Result<Response> {
        match command {
            RestoreCommand::Chunk { restore_id, seq, bytes } => self.stage_chunk(*restore_id, *seq, bytes, space),
            RestoreCommand::Commit { restore_id, chunks, size_bytes } => {
                let Some(staging) = self.restore_staging.take() else {
                    return Ok(Response::Rejected(format!("restore {restore_id}: no chunks staged")));
                };
                if staging.restore_id != *restore_id || staging.chunks != *chunks || staging.size_bytes != *size_bytes {
                    space.clear()?;
                    return Ok(Response::Rejected(format!(
                        "restore {restore_id}: staged {} chunks ({} bytes) of restore {}, expected {chunks} ({size_bytes} bytes)",
                        staging.chunks, staging.size_bytes, staging.restore_id
                    )));
                }
                let response = self.replace_from_space(index, &staging, space)?;
                space.clear()?;
                Ok(response)
            }
        }
    }

    fn stage_chunk(
        &mut self,
        restore_id: u64,
        seq: u32,
        bytes: &[u8],
        space: &mut dyn RestoreSpace,
    ) -> io::Result<Response> {
        if seq == 0 {
            space.clear()?;
            self.restore_staging = Some(RestoreStaging { restore_id, chunks: 0, size_bytes: 0 });
        }
        match &mut self.restore_staging {
            Some(staging) if staging.restore_id == restore_id && staging.chunks == seq => {
                space.put_chunk(seq, bytes)?;
                staging.chunks += 1;
                staging.size_bytes += bytes.len() as u64;
                Ok(Response::Applied)
            }
            _ => Ok(Response::Rejected(format!("restore {restore_id}: chunk {seq} out of order"))),
        }
    }

    /// Spills this state to `space`, frees it, and decodes the staged one in its place; if the staged
    /// bytes do not decode, the spilled state comes back and the restore is refused.
    fn replace_from_space(
        &mut self,
        index: u64,
        staging: &RestoreStaging,
        space: &mut dyn RestoreSpace,
    ) -> io::Result<Response> {
        let old = std::mem::take(self);
        let spilled = {
            let mut spill = io::BufWriter::with_capacity(BUFFER_BYTES, space.spill_writer());
            codec::encode_snapshot_into(&old, &mut spill).and_then(|written| spill.flush().map(|()| written))
        };
        let spilled_bytes = match spilled {
            Ok(written) => written,
            Err(e) => {
                // The node stops on this error; until it does, its readers keep the old state.
                *self = old;
                return Err(e);
            }
        };
        let old_clock_ms = old.clock_ms;
        drop(old);
        let decoded = {
            let mut chunks = ErrorKeeping {
                inner: io::BufReader::with_capacity(BUFFER_BYTES, space.read_chunks(staging.chunks)),
                error: None,
            };
            let decoded = codec::decode_snapshot_from(&mut chunks, staging.size_bytes);
            decoded.map_err(|e| (e, chunks.error))
        };
        match decoded {
            Ok(restored) => {
                self.clock_ms = old_clock_ms;
                self.adopt(restored, index);
                Ok(Response::Applied)
            }
            Err((e, storage_error)) => {
                self.read_back_spill(space, spilled_bytes)?;
                match storage_error {
                    Some(storage_error) => Err(storage_error),
                    None => Ok(Response::Rejected(format!(
                        "restore {}: the archived state does not decode: {e}",
                        staging.restore_id
                    ))),
                }
            }
        }
    }

    /// Puts back the state spilled by `replace_from_space`.
    fn read_back_spill(&mut self, space: &mut dyn RestoreSpace, spilled_bytes: u64) -> io::Result<()> {
        let mut spilled = io::BufReader::with_capacity(BUFFER_BYTES, space.read_spill());
        *self = codec::decode_snapshot_from(&mut spilled, spilled_bytes)
            .map_err(|e| io::Error::other(format!("the spilled state does not decode back: {e}")))?;
        Ok(())
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
    use crate::state::{Command, MemoryRestoreSpace};

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

    /// A state and the restore space beside it, as a node has them.
    #[derive(Default)]
    struct Node {
        state: State,
        space: MemoryRestoreSpace,
    }

    impl Node {
        fn apply(&mut self, index: u64, command: &Command) -> Response {
            self.state.apply_at_in(index, 0, command, &mut self.space).expect("the memory space does not fail")
        }

        fn restore(&mut self, first_index: u64, restore_id: u64, pieces: &[Vec<u8>]) -> Response {
            let mut index = first_index;
            for (seq, bytes) in pieces.iter().enumerate() {
                assert_eq!(self.apply(index, &chunk(restore_id, seq as u32, bytes)), Response::Applied);
                index += 1;
            }
            let size = pieces.iter().map(Vec::len).sum::<usize>() as u64;
            self.apply(index, &commit(restore_id, pieces.len() as u32, size))
        }
    }

    #[test]
    fn a_committed_restore_replaces_the_state_at_the_commit_index() {
        let mut node = Node::default();
        for i in 1..=20 {
            node.apply(i, &set(&format!("old/{i}"), "x"));
        }
        assert_eq!(node.restore(21, 7, &archived("restored", 3)), Response::Applied);
        assert!(node.state.kv().get("old/1").is_none(), "the old state is gone");
        assert_eq!(node.state.kv().get("restored").unwrap().value, b"from the snapshot");
        assert_eq!(node.state.last_index(), 24, "the index does not go back to the snapshot's");
        assert_eq!(node.state.restored_index(), 24);
        assert_eq!(node.space.staged_chunks(), 0, "the space is emptied at the commit");
        assert_eq!(node.state.staged_restore_chunks(), None);
    }

    #[test]
    fn chunks_out_of_order_or_a_commit_that_does_not_match_change_nothing() {
        let mut node = Node::default();
        node.apply(1, &set("kept", "x"));
        let pieces = archived("restored", 3);
        node.apply(2, &chunk(9, 0, &pieces[0]));
        assert_eq!(node.state.staged_restore_chunks(), Some(1));
        assert!(matches!(node.apply(3, &chunk(9, 2, &pieces[2])), Response::Rejected(_)));
        assert!(matches!(node.apply(4, &commit(9, 3, 1)), Response::Rejected(_)));
        assert!(node.state.kv().get("kept").is_some());
        assert!(matches!(node.apply(5, &commit(9, 1, 1)), Response::Rejected(_)), "no staging left");
        assert_eq!(node.state.restored_index(), 0);
        assert_eq!(node.space.staged_chunks(), 0);
    }

    #[test]
    fn bytes_that_do_not_decode_are_refused_and_the_old_state_comes_back_whole() {
        let mut node = Node::default();
        for i in 1..=50 {
            node.apply(i, &set(&format!("kept/{i}"), "x"));
        }
        let before = node.state.clone();
        let garbage = vec![vec![codec::CODEC_VERSION, 0xff, 0xff, 0xff]];
        assert!(matches!(node.restore(51, 3, &garbage), Response::Rejected(_)));
        let mut expected = before;
        expected.last_index = 52;
        assert_eq!(node.state, expected, "the spilled state is read back as it was");
    }

    #[test]
    fn a_missing_staged_chunk_is_an_error_of_the_node_not_a_refusal() {
        let mut node = Node::default();
        let pieces = archived("restored", 2);
        node.apply(1, &chunk(4, 0, &pieces[0]));
        node.apply(2, &chunk(4, 1, &pieces[1]));
        node.space = MemoryRestoreSpace::default();
        let size = pieces.iter().map(Vec::len).sum::<usize>() as u64;
        let error = node.state.apply_at_in(3, 0, &commit(4, 2, size), &mut node.space).unwrap_err();
        assert!(error.to_string().contains("chunk 0 is missing"), "{error}");
    }

    /// A memory space whose disk fills up when the old state is spilled.
    struct FullDiskAtSpill(MemoryRestoreSpace);

    struct FullDisk;

    impl Write for FullDisk {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("no space left on device"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl RestoreSpace for FullDiskAtSpill {
        fn clear(&mut self) -> io::Result<()> {
            self.0.clear()
        }
        fn put_chunk(&mut self, seq: u32, bytes: &[u8]) -> io::Result<()> {
            self.0.put_chunk(seq, bytes)
        }
        fn read_chunks(&mut self, chunks: u32) -> Box<dyn Read + '_> {
            self.0.read_chunks(chunks)
        }
        fn spill_writer(&mut self) -> Box<dyn Write + '_> {
            Box::new(FullDisk)
        }
        fn read_spill(&mut self) -> Box<dyn Read + '_> {
            self.0.read_spill()
        }
    }

    #[test]
    fn a_spill_that_fails_is_an_error_of_the_node_and_keeps_the_old_state_in_memory() {
        let mut state = State::new();
        state.apply_at(1, 0, &set("kept", "x"));
        let mut space = FullDiskAtSpill(MemoryRestoreSpace::default());
        let pieces = archived("restored", 1);
        state.apply_at_in(2, 0, &chunk(5, 0, &pieces[0]), &mut space).unwrap();
        let error = state.apply_at_in(3, 0, &commit(5, 1, pieces[0].len() as u64), &mut space).unwrap_err();
        assert!(error.to_string().contains("no space left"), "{error}");
        assert!(state.kv().get("kept").is_some(), "readers keep the old state until the node stops");
    }

    #[test]
    fn a_restore_without_a_space_is_refused() {
        let mut state = State::new();
        assert!(matches!(state.apply_at(1, 0, &chunk(1, 0, b"x")), Response::Rejected(_)));
        assert_eq!(state.staged_restore_chunks(), None);
    }

    #[test]
    fn a_new_first_chunk_drops_a_restore_that_never_committed() {
        let mut node = Node::default();
        let abandoned = archived("abandoned", 2);
        node.apply(1, &chunk(1, 0, &abandoned[0]));
        assert_eq!(node.restore(2, 2, &archived("second", 2)), Response::Applied);
        assert!(node.state.kv().get("second").is_some() && node.state.kv().get("abandoned").is_none());
    }
}
