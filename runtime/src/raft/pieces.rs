//! Long byte streams kept in the store as numbered values of at most a restore chunk (1 MiB) each, so
//! neither writing nor reading one holds it whole in memory: a key prefix, then the piece number
//! (big-endian), under one `Space`. Raft snapshots and the restore space are kept this way.

use std::io::{self, Read, Write};

use conclave_core::state::{ChunkReader, RESTORE_CHUNK_BYTES_MAX};

use crate::env::{Space, Store, WriteOp};

/// The key of piece `seq` under `prefix`.
pub fn piece_key(prefix: &[u8], seq: u32) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend(seq.to_be_bytes());
    key
}

/// The write that deletes every piece under `prefix` (its keys are `prefix` and 4 more bytes).
pub fn delete_pieces(space: Space, prefix: &[u8]) -> WriteOp {
    WriteOp::DeleteRange(space, piece_key(prefix, 0), [prefix, &[u8::MAX; 5]].concat())
}

/// Pieces `0..count` under `prefix` (a missing one is an error), or with `count` `None`, pieces up to
/// the first missing one.
pub fn read_pieces<'a>(store: &'a dyn Store, space: Space, prefix: &[u8], count: Option<u32>) -> Box<dyn Read + 'a> {
    let prefix = prefix.to_vec();
    let lookup = move |seq| store.get(space, &piece_key(&prefix, seq));
    match count {
        Some(count) => Box::new(ChunkReader::new(count, lookup)),
        None => Box::new(ChunkReader::until_missing(lookup)),
    }
}

/// Cuts what it is written into pieces under `prefix`, each stored as it fills; `flush` stores the
/// last, partial one. Pieces under `prefix` from before are deleted first.
pub struct PieceWriter<'a> {
    store: &'a dyn Store,
    space: Space,
    prefix: Vec<u8>,
    pending: Vec<u8>,
    pieces: u32,
    size_bytes: u64,
    cleared: bool,
}

impl<'a> PieceWriter<'a> {
    pub fn new(store: &'a dyn Store, space: Space, prefix: &[u8]) -> PieceWriter<'a> {
        PieceWriter {
            store,
            space,
            prefix: prefix.to_vec(),
            pending: Vec::new(),
            pieces: 0,
            size_bytes: 0,
            cleared: false,
        }
    }

    /// Pieces stored so far and their bytes.
    pub fn stored(&self) -> (u32, u64) {
        (self.pieces, self.size_bytes)
    }

    fn store_pending(&mut self) -> io::Result<()> {
        if !self.cleared {
            self.store.write(vec![delete_pieces(self.space, &self.prefix)])?;
            self.cleared = true;
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        let piece = std::mem::take(&mut self.pending);
        self.size_bytes += piece.len() as u64;
        self.store.write(vec![WriteOp::Put(self.space, piece_key(&self.prefix, self.pieces), piece)])?;
        self.pieces += 1;
        Ok(())
    }
}

impl Write for PieceWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = bytes.len().min(RESTORE_CHUNK_BYTES_MAX - self.pending.len());
        self.pending.extend_from_slice(&bytes[..n]);
        if self.pending.len() == RESTORE_CHUNK_BYTES_MAX {
            self.store_pending()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.store_pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MemStore;

    #[test]
    fn a_stream_longer_than_a_piece_reads_back_and_deletes_without_touching_other_prefixes() {
        let store = MemStore::new();
        let bytes: Vec<u8> = (0..RESTORE_CHUNK_BYTES_MAX * 2 + 17).map(|i| (i % 251) as u8).collect();
        for prefix in [b"a".as_slice(), b"b"] {
            let mut writer = PieceWriter::new(&store, Space::Restore, prefix);
            writer.write_all(&bytes).unwrap();
            writer.flush().unwrap();
            assert_eq!(writer.stored(), (3, bytes.len() as u64));
        }
        let mut back = Vec::new();
        read_pieces(&store, Space::Restore, b"a", Some(3)).read_to_end(&mut back).unwrap();
        assert_eq!(back, bytes);
        store.write(vec![delete_pieces(Space::Restore, b"a")]).unwrap();
        let missing = read_pieces(&store, Space::Restore, b"a", Some(1)).read_to_end(&mut Vec::new()).unwrap_err();
        assert!(missing.to_string().contains("chunk 0 is missing"), "{missing}");
        assert_eq!(read_pieces(&store, Space::Restore, b"a", None).read_to_end(&mut Vec::new()).unwrap(), 0);
        let mut other = Vec::new();
        read_pieces(&store, Space::Restore, b"b", None).read_to_end(&mut other).unwrap();
        assert_eq!(other, bytes);
    }
}
