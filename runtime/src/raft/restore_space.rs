//! The node's restore space (core's `RestoreSpace`) in its store's `restore` space, as pieces
//! (`raft::pieces`): a restore's staged chunks one per piece under `c`, the old state spilled during
//! the commit under `s`. Writes are not synced: after a crash the Raft log and the latest Raft snapshot
//! (whose sync covers every write before it) put the space back.

use std::io::{self, Read, Write};
use std::sync::Arc;

use conclave_core::state::{missing_chunk, RestoreSpace};

use super::pieces::{delete_pieces, piece_key, read_pieces, PieceWriter};
use crate::env::{Space, Store, WriteOp};

const CHUNK_PREFIX: &[u8] = b"c";
const SPILL_PREFIX: &[u8] = b"s";

pub struct StoreRestoreSpace {
    store: Arc<dyn Store>,
}

impl StoreRestoreSpace {
    pub fn new(store: Arc<dyn Store>) -> StoreRestoreSpace {
        StoreRestoreSpace { store }
    }

    /// Staged chunk `seq`; a missing one is an error.
    pub fn staged_chunk(&self, seq: u32) -> io::Result<Vec<u8>> {
        self.store.get(Space::Restore, &piece_key(CHUNK_PREFIX, seq))?.ok_or_else(|| missing_chunk(seq))
    }
}

impl RestoreSpace for StoreRestoreSpace {
    fn clear(&mut self) -> io::Result<()> {
        self.store.write(vec![delete_pieces(Space::Restore, CHUNK_PREFIX), delete_pieces(Space::Restore, SPILL_PREFIX)])
    }

    fn put_chunk(&mut self, seq: u32, bytes: &[u8]) -> io::Result<()> {
        self.store.write(vec![WriteOp::Put(Space::Restore, piece_key(CHUNK_PREFIX, seq), bytes.to_vec())])
    }

    fn read_chunks(&mut self, chunks: u32) -> Box<dyn Read + '_> {
        read_pieces(self.store.as_ref(), Space::Restore, CHUNK_PREFIX, Some(chunks))
    }

    fn spill_writer(&mut self) -> Box<dyn Write + '_> {
        Box::new(PieceWriter::new(self.store.as_ref(), Space::Restore, SPILL_PREFIX))
    }

    fn read_spill(&mut self) -> Box<dyn Read + '_> {
        read_pieces(self.store.as_ref(), Space::Restore, SPILL_PREFIX, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MemStore;

    #[test]
    fn chunks_and_the_spill_read_back_and_clear_empties_both() {
        let mut space = StoreRestoreSpace::new(Arc::new(MemStore::new()));
        space.put_chunk(1, b"world").unwrap();
        space.put_chunk(0, b"hello ").unwrap();
        let mut read = String::new();
        space.read_chunks(2).read_to_string(&mut read).unwrap();
        assert_eq!(read, "hello world");
        let mut writer = space.spill_writer();
        writer.write_all(b"old state").unwrap();
        writer.flush().unwrap();
        drop(writer);
        let mut back = String::new();
        space.read_spill().read_to_string(&mut back).unwrap();
        assert_eq!(back, "old state");

        space.clear().unwrap();
        let error = space.read_chunks(1).read_to_end(&mut Vec::new()).unwrap_err();
        assert!(error.to_string().contains("chunk 0 is missing"), "{error}");
        assert_eq!(space.read_spill().read_to_end(&mut Vec::new()).unwrap(), 0);
    }
}
