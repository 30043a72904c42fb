//! An in-memory `Store`: the store of `conclave agent -dev`, and the building block of the simulator's disk.

use std::collections::BTreeMap;
use std::io;
use std::ops::Bound;
use std::sync::Mutex;

use super::{Space, Store, WriteOp};

/// Every space's ordered map.
pub type Spaces = BTreeMap<Space, BTreeMap<Vec<u8>, Vec<u8>>>;

/// Ordered maps per space; `sync` is a no-op because nothing outlives the process.
#[derive(Default)]
pub struct MemStore {
    spaces: Mutex<Spaces>,
    files: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore::default()
    }
}

/// Applies `ops` to a map of spaces; shared with the simulator's disk.
pub fn apply_ops(spaces: &mut Spaces, ops: &[WriteOp]) {
    for op in ops {
        match op {
            WriteOp::Put(space, key, value) => {
                spaces.entry(*space).or_default().insert(key.clone(), value.clone());
            }
            WriteOp::Delete(space, key) => {
                spaces.entry(*space).or_default().remove(key);
            }
            WriteOp::DeleteRange(space, from, to) => {
                let map = spaces.entry(*space).or_default();
                let doomed: Vec<Vec<u8>> = map
                    .range::<[u8], _>((Bound::Included(from.as_slice()), Bound::Excluded(to.as_slice())))
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in doomed {
                    map.remove(&key);
                }
            }
        }
    }
}

/// Reads `[from, to)` of one space.
pub fn scan_map(
    map: Option<&BTreeMap<Vec<u8>, Vec<u8>>>,
    from: &[u8],
    to: Option<&[u8]>,
    limit_max: usize,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let Some(map) = map else { return Vec::new() };
    let upper = match to {
        Some(to) => Bound::Excluded(to),
        None => Bound::Unbounded,
    };
    map.range::<[u8], _>((Bound::Included(from), upper)).take(limit_max).map(|(k, v)| (k.clone(), v.clone())).collect()
}

impl Store for MemStore {
    fn write(&self, ops: Vec<WriteOp>) -> io::Result<()> {
        apply_ops(&mut self.spaces.lock().expect("store lock"), &ops);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }

    fn get(&self, space: Space, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        Ok(self.spaces.lock().expect("store lock").get(&space).and_then(|m| m.get(key).cloned()))
    }

    fn scan(
        &self,
        space: Space,
        from: &[u8],
        to: Option<&[u8]>,
        limit_max: usize,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(scan_map(self.spaces.lock().expect("store lock").get(&space), from, to, limit_max))
    }

    fn last(&self, space: Space) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        let spaces = self.spaces.lock().expect("store lock");
        Ok(spaces.get(&space).and_then(|m| m.iter().next_back()).map(|(k, v)| (k.clone(), v.clone())))
    }

    fn read_file(&self, relative_path: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.files.lock().expect("files lock").get(relative_path).cloned())
    }

    fn write_file(&self, relative_path: &str, bytes: &[u8]) -> io::Result<()> {
        self.files.lock().expect("files lock").insert(relative_path.to_string(), bytes.to_vec());
        Ok(())
    }
}
