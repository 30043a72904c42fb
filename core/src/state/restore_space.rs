//! Where a snapshot restore keeps its bytes while it is under way, outside the replicated state: the
//! archive's chunks, staged until the commit, and the old state, spilled while the new one decodes. The
//! node keeps them in its store (on disk), so the memory a restore needs is about one state, not the
//! state plus the archive plus a second state; tests and fuzzing keep them in memory.
//!
//! A space's errors are storage errors: the entry is not applied and the node stops, as for a log that
//! cannot be written. Every server holds the same bytes in its space, so what the commit decides (adopt
//! or refuse) is the same everywhere.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

pub trait RestoreSpace {
    /// Drops every staged chunk and the spilled state.
    fn clear(&mut self) -> io::Result<()>;
    /// Stages chunk `seq` (replacing one staged before with that number).
    fn put_chunk(&mut self, seq: u32, bytes: &[u8]) -> io::Result<()>;
    /// Staged chunks `0..chunks` as one stream; a missing chunk is an error of the stream.
    fn read_chunks(&mut self, chunks: u32) -> Box<dyn Read + '_>;
    /// A writer that replaces the spilled state; what was written is kept once `flush` returns.
    fn spill_writer(&mut self) -> Box<dyn Write + '_>;
    /// The spilled state as written.
    fn read_spill(&mut self) -> Box<dyn Read + '_>;
}

/// A space that holds nothing: every restore command applied with it is refused.
pub struct NoRestoreSpace;

fn no_space() -> io::Error {
    io::Error::other("a restore needs a restore space (this apply has none)")
}

struct Failing;

impl Read for Failing {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(no_space())
    }
}

impl Write for Failing {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(no_space())
    }
    fn flush(&mut self) -> io::Result<()> {
        Err(no_space())
    }
}

impl RestoreSpace for NoRestoreSpace {
    fn clear(&mut self) -> io::Result<()> {
        Err(no_space())
    }
    fn put_chunk(&mut self, _: u32, _: &[u8]) -> io::Result<()> {
        Err(no_space())
    }
    fn read_chunks(&mut self, _: u32) -> Box<dyn Read + '_> {
        Box::new(Failing)
    }
    fn spill_writer(&mut self) -> Box<dyn Write + '_> {
        Box::new(Failing)
    }
    fn read_spill(&mut self) -> Box<dyn Read + '_> {
        Box::new(Failing)
    }
}

/// A space in memory, for tests and fuzzing.
#[derive(Default, Debug)]
pub struct MemoryRestoreSpace {
    chunks: BTreeMap<u32, Vec<u8>>,
    spill: Vec<u8>,
}

impl MemoryRestoreSpace {
    /// The number of staged chunks.
    pub fn staged_chunks(&self) -> usize {
        self.chunks.len()
    }
}

/// The error for piece `seq` of a stream (staged restore chunks, a spill, a Raft snapshot's pieces)
/// not found where it was stored.
pub fn missing_chunk(seq: u32) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("stored chunk {seq} is missing"))
}

/// Reads numbered pieces one after the other from a lookup, fetching each when the one before has been
/// read.
pub struct ChunkReader<F: FnMut(u32) -> io::Result<Option<Vec<u8>>>> {
    lookup: F,
    next_seq: u32,
    /// `Some(n)`: pieces `0..n`, a missing one is an error; `None`: pieces until the first missing one.
    end_seq: Option<u32>,
    current: io::Cursor<Vec<u8>>,
}

impl<F: FnMut(u32) -> io::Result<Option<Vec<u8>>>> ChunkReader<F> {
    /// Chunks `0..chunks`; a missing one is an error that names it.
    pub fn new(chunks: u32, lookup: F) -> ChunkReader<F> {
        ChunkReader { lookup, next_seq: 0, end_seq: Some(chunks), current: io::Cursor::new(Vec::new()) }
    }

    /// Pieces from 0 up to the first one missing.
    pub fn until_missing(lookup: F) -> ChunkReader<F> {
        ChunkReader { lookup, next_seq: 0, end_seq: None, current: io::Cursor::new(Vec::new()) }
    }
}

impl<F: FnMut(u32) -> io::Result<Option<Vec<u8>>>> Read for ChunkReader<F> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.current.read(out)?;
            if n > 0 || out.is_empty() || Some(self.next_seq) == self.end_seq {
                return Ok(n);
            }
            let seq = self.next_seq;
            let bytes = match ((self.lookup)(seq)?, self.end_seq) {
                (Some(bytes), _) => bytes,
                (None, None) => return Ok(0),
                (None, Some(_)) => return Err(missing_chunk(seq)),
            };
            self.current = io::Cursor::new(bytes);
            self.next_seq += 1;
        }
    }
}

impl RestoreSpace for MemoryRestoreSpace {
    fn clear(&mut self) -> io::Result<()> {
        self.chunks.clear();
        self.spill.clear();
        Ok(())
    }
    fn put_chunk(&mut self, seq: u32, bytes: &[u8]) -> io::Result<()> {
        self.chunks.insert(seq, bytes.to_vec());
        Ok(())
    }
    fn read_chunks(&mut self, chunks: u32) -> Box<dyn Read + '_> {
        let staged = &self.chunks;
        Box::new(ChunkReader::new(chunks, move |seq| Ok(staged.get(&seq).cloned())))
    }
    fn spill_writer(&mut self) -> Box<dyn Write + '_> {
        self.spill.clear();
        Box::new(&mut self.spill)
    }
    fn read_spill(&mut self) -> Box<dyn Read + '_> {
        Box::new(self.spill.as_slice())
    }
}
