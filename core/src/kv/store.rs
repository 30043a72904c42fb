//! Keys and values: Consul's KV table. Values are bytes; `flags` is an opaque u64; `cas` makes a write
//! conditional on the key's `ModifyIndex` (0 = create only); `lock`/`unlock` take and give back a key's
//! lock for a session. Deleted keys leave a tombstone (the index and time of the delete) so that a
//! blocking query on the key or a prefix sees the delete; the leader reaps tombstones older than the
//! tombstone TTL (`reap_tombstones`, Consul's tombstone GC), so a store with churn does not grow for good.
//! Keys whose lock was lost by an invalidated session carry a lock delay.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Largest value accepted, as Consul's `kv_max_value_size` (512 KiB).
pub const KV_VALUE_BYTES_MAX: usize = 512 * 1024;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEntry {
    pub key: String,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    pub flags: u64,
    pub lock_index: u64,
    /// The session holding the key's lock; empty when unlocked.
    pub session: String,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A change to the KV store, as Consul's KVS verbs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvCommand {
    Set {
        key: String,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        flags: u64,
    },
    /// Set only if the key's modify index equals `index` (0: only if the key is absent).
    Cas {
        key: String,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        flags: u64,
        index: u64,
    },
    /// Set and take the key's lock for `session`, unless another session holds it or a lock delay runs.
    Lock {
        key: String,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        flags: u64,
        session: String,
    },
    /// Set and give back the lock, only if `session` holds it.
    Unlock {
        key: String,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        flags: u64,
        session: String,
    },
    Delete {
        key: String,
    },
    DeleteTree {
        prefix: String,
    },
    /// Delete only if the key's modify index equals `index`.
    DeleteCas {
        key: String,
        index: u64,
    },
}

impl KvCommand {
    pub fn key(&self) -> &str {
        match self {
            KvCommand::Set { key, .. }
            | KvCommand::Cas { key, .. }
            | KvCommand::Lock { key, .. }
            | KvCommand::Unlock { key, .. }
            | KvCommand::Delete { key }
            | KvCommand::DeleteCas { key, .. } => key,
            KvCommand::DeleteTree { prefix } => prefix,
        }
    }
}

/// What a deleted key leaves until it is reaped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// The index of the delete.
    pub index: u64,
    /// When it applied (ms, the replicated clock).
    pub deleted_at_ms: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvStore {
    entries: BTreeMap<String, KvEntry>,
    /// Deleted key → its tombstone.
    tombstones: BTreeMap<String, Tombstone>,
    /// Key → the time (ms, the proposing leader's clock) before which no session may lock it.
    lock_delays_until_ms: BTreeMap<String, u64>,
    /// Index of the last change anywhere in the store.
    table_index: u64,
}

impl KvStore {
    /// Applies `command` at `index` at time `now_ms`; false when its condition failed (nothing changed).
    /// The caller has checked that a `Lock`'s session exists.
    pub fn apply(&mut self, index: u64, now_ms: u64, command: &KvCommand) -> bool {
        match command {
            KvCommand::Set { key, value, flags } => {
                self.put(index, key, value, *flags, None);
                true
            }
            KvCommand::Cas { key, value, flags, index: expected } => {
                let current = self.entries.get(key).map(|e| e.modify_index).unwrap_or(0);
                if current != *expected {
                    return false;
                }
                self.put(index, key, value, *flags, None);
                true
            }
            KvCommand::Lock { key, value, flags, session } => {
                if self.lock_delays_until_ms.get(key).is_some_and(|until| now_ms < *until) {
                    return false;
                }
                match self.entries.get(key).map(|e| e.session.as_str()) {
                    Some(holder) if !holder.is_empty() && holder != session => false,
                    _ => {
                        self.put(index, key, value, *flags, Some(session));
                        true
                    }
                }
            }
            KvCommand::Unlock { key, value, flags, session } => {
                if self.entries.get(key).map(|e| e.session.as_str()) != Some(session.as_str()) {
                    return false;
                }
                self.put(index, key, value, *flags, Some(""));
                true
            }
            KvCommand::Delete { key } => {
                self.remove(index, now_ms, key);
                true
            }
            KvCommand::DeleteTree { prefix } => {
                let doomed: Vec<String> = self.list(prefix).into_iter().map(|e| e.key.clone()).collect();
                doomed.iter().for_each(|key| self.remove(index, now_ms, key));
                true
            }
            KvCommand::DeleteCas { key, index: expected } => {
                let current = self.entries.get(key).map(|e| e.modify_index).unwrap_or(0);
                if current != *expected {
                    return false;
                }
                self.remove(index, now_ms, key);
                true
            }
        }
    }

    /// Writes a key. `session`: None keeps the lock as it is; Some(s) sets the holder to `s` (a new holder
    /// increments the lock index; "" releases).
    fn put(&mut self, index: u64, key: &str, value: &[u8], flags: u64, session: Option<&str>) {
        let existing = self.entries.get(key);
        let held_by = existing.map(|e| e.session.clone()).unwrap_or_default();
        let mut lock_index = existing.map(|e| e.lock_index).unwrap_or(0);
        let session = match session {
            None => held_by,
            Some(new) => {
                if !new.is_empty() && new != held_by {
                    lock_index += 1;
                }
                new.to_string()
            }
        };
        let entry = KvEntry {
            key: key.to_string(),
            value: value.to_vec(),
            flags,
            lock_index,
            session,
            create_index: existing.map(|e| e.create_index).unwrap_or(index),
            modify_index: index,
        };
        self.entries.insert(key.to_string(), entry);
        self.tombstones.remove(key);
        self.table_index = index;
    }

    fn remove(&mut self, index: u64, now_ms: u64, key: &str) {
        if self.entries.remove(key).is_some() {
            self.tombstones.insert(key.to_string(), Tombstone { index, deleted_at_ms: now_ms });
            self.table_index = index;
        }
    }

    /// Forgets the tombstones of deletes that applied before `deleted_before_ms`; returns how many. The
    /// table index stays: a blocking query waiting past a reaped delete's index keeps waiting for the
    /// next change (the key's index now reads as 0, below what it waits past), and one that began before
    /// the delete was woken by it long ago.
    pub fn reap_tombstones(&mut self, deleted_before_ms: u64) -> usize {
        let before = self.tombstones.len();
        self.tombstones.retain(|_, tombstone| tombstone.deleted_at_ms >= deleted_before_ms);
        before - self.tombstones.len()
    }

    /// Whether any tombstone is of a delete that applied before `deleted_before_ms` (the leader's cue).
    pub fn has_tombstones_before(&self, deleted_before_ms: u64) -> bool {
        self.tombstones.values().any(|tombstone| tombstone.deleted_at_ms < deleted_before_ms)
    }

    pub fn tombstone_count(&self) -> usize {
        self.tombstones.len()
    }

    /// What a session's invalidation does to the keys it holds: released (or deleted with `delete`), and
    /// each locked against new holders until `lock_delay_until_ms`.
    pub fn drop_session_locks(
        &mut self,
        index: u64,
        now_ms: u64,
        session: &str,
        delete: bool,
        lock_delay_until_ms: u64,
    ) {
        let held: Vec<String> = self.entries.values().filter(|e| e.session == session).map(|e| e.key.clone()).collect();
        for key in held {
            if delete {
                self.remove(index, now_ms, &key);
            } else if let Some(entry) = self.entries.get_mut(&key) {
                entry.session.clear();
                entry.modify_index = index;
                self.table_index = index;
            }
            if lock_delay_until_ms > 0 {
                self.lock_delays_until_ms.insert(key, lock_delay_until_ms);
            }
        }
    }

    /// Forgets lock delays that ended before `now_ms` (they no longer refuse anything).
    pub fn expire_lock_delays(&mut self, now_ms: u64) {
        self.lock_delays_until_ms.retain(|_, until| *until > now_ms);
    }

    pub fn get(&self, key: &str) -> Option<&KvEntry> {
        self.entries.get(key)
    }

    /// Every entry whose key starts with `prefix`, in key order.
    pub fn list(&self, prefix: &str) -> Vec<&KvEntry> {
        self.entries.range(prefix.to_string()..).take_while(|(k, _)| k.starts_with(prefix)).map(|(_, e)| e).collect()
    }

    /// Keys under `prefix`, cut after the first `separator` past the prefix (Consul's `?keys&separator=`).
    pub fn keys(&self, prefix: &str, separator: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for entry in self.list(prefix) {
            let rest = &entry.key[prefix.len()..];
            let key = match (separator.is_empty(), rest.find(separator)) {
                (false, Some(at)) => format!("{prefix}{}", &rest[..at + separator.len()]),
                _ => entry.key.clone(),
            };
            if out.last() != Some(&key) {
                out.push(key);
            }
        }
        out
    }

    /// The blocking-query index of everything under `prefix`: the latest change, deletes included;
    /// 0 when nothing under it ever existed.
    pub fn prefix_index(&self, prefix: &str) -> u64 {
        let live = self.list(prefix).iter().map(|e| e.modify_index).max().unwrap_or(0);
        let deleted = self
            .tombstones
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, tombstone)| tombstone.index)
            .max()
            .unwrap_or(0);
        live.max(deleted)
    }

    /// The blocking-query index of exactly `key`: its modify index, or the index that deleted it.
    pub fn key_index(&self, key: &str) -> u64 {
        match self.entries.get(key) {
            Some(entry) => entry.modify_index,
            None => self.tombstones.get(key).map(|tombstone| tombstone.index).unwrap_or(0),
        }
    }

    pub fn table_index(&self) -> u64 {
        self.table_index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str, value: &str) -> KvCommand {
        KvCommand::Set { key: key.into(), value: value.as_bytes().to_vec(), flags: 0 }
    }

    fn cas(key: &str, value: &str, index: u64) -> KvCommand {
        KvCommand::Cas { key: key.into(), value: value.as_bytes().to_vec(), flags: 0, index }
    }

    fn lock(key: &str, session: &str) -> KvCommand {
        KvCommand::Lock { key: key.into(), value: Vec::new(), flags: 0, session: session.into() }
    }

    fn unlock(key: &str, session: &str) -> KvCommand {
        KvCommand::Unlock { key: key.into(), value: Vec::new(), flags: 0, session: session.into() }
    }

    #[test]
    fn cas_zero_creates_only() {
        let mut kv = KvStore::default();
        assert!(kv.apply(1, 0, &cas("a", "1", 0)));
        assert!(!kv.apply(2, 0, &cas("a", "2", 0)));
        assert_eq!(kv.get("a").unwrap().value, b"1");
        assert!(kv.apply(3, 0, &cas("a", "3", 1)));
        let entry = kv.get("a").unwrap();
        assert_eq!((entry.create_index, entry.modify_index), (1, 3));
    }

    #[test]
    fn tombstones_older_than_the_cutoff_are_reaped_and_newer_ones_stay() {
        let mut kv = KvStore::default();
        kv.apply(1, 1_000, &set("app/a", "1"));
        kv.apply(2, 1_000, &set("app/b", "2"));
        kv.apply(3, 5_000, &KvCommand::Delete { key: "app/a".into() });
        kv.apply(4, 9_000, &KvCommand::Delete { key: "app/b".into() });
        assert_eq!(kv.tombstone_count(), 2);
        assert!(!kv.has_tombstones_before(5_000));
        assert!(kv.has_tombstones_before(5_001));
        assert_eq!(kv.reap_tombstones(5_001), 1);
        assert_eq!((kv.key_index("app/a"), kv.key_index("app/b")), (0, 4));
        assert_eq!(kv.prefix_index("app/"), 4);
        assert_eq!(kv.reap_tombstones(20_000), 1);
        assert_eq!((kv.tombstone_count(), kv.prefix_index("app/"), kv.table_index()), (0, 0, 4));
    }

    #[test]
    fn recursive_delete_leaves_tombstones_for_blocking_queries() {
        let mut kv = KvStore::default();
        kv.apply(1, 0, &set("app/a", "1"));
        kv.apply(2, 0, &set("app/b", "2"));
        kv.apply(3, 0, &set("other", "3"));
        assert_eq!(kv.prefix_index("app/"), 2);
        kv.apply(4, 0, &KvCommand::DeleteTree { prefix: "app/".into() });
        assert!(kv.list("app/").is_empty());
        assert_eq!(kv.prefix_index("app/"), 4);
        assert_eq!(kv.prefix_index("other"), 3);
    }

    #[test]
    fn keys_are_cut_at_the_separator() {
        let mut kv = KvStore::default();
        for (i, key) in ["a/b/c", "a/b/d", "a/e", "f"].iter().enumerate() {
            kv.apply(i as u64 + 1, 0, &set(key, ""));
        }
        assert_eq!(kv.keys("a/", "/"), ["a/b/", "a/e"]);
        assert_eq!(kv.keys("", "/"), ["a/", "f"]);
        assert_eq!(kv.keys("", ""), ["a/b/c", "a/b/d", "a/e", "f"]);
    }

    #[test]
    fn lock_is_exclusive_and_reacquire_keeps_the_lock_index() {
        let mut kv = KvStore::default();
        assert!(kv.apply(1, 0, &lock("l", "s1")));
        assert_eq!(kv.get("l").unwrap().lock_index, 1);
        assert!(!kv.apply(2, 0, &lock("l", "s2")));
        assert!(kv.apply(3, 0, &lock("l", "s1")));
        assert_eq!(kv.get("l").unwrap().lock_index, 1);
        // A plain set leaves the lock alone.
        assert!(kv.apply(4, 0, &set("l", "v")));
        assert_eq!(kv.get("l").unwrap().session, "s1");
        assert!(!kv.apply(5, 0, &unlock("l", "s2")));
        assert!(kv.apply(6, 0, &unlock("l", "s1")));
        assert!(kv.apply(7, 0, &lock("l", "s2")));
        let entry = kv.get("l").unwrap();
        assert_eq!((entry.lock_index, entry.session.as_str()), (2, "s2"));
    }

    #[test]
    fn an_invalidated_session_leaves_a_lock_delay() {
        let mut kv = KvStore::default();
        kv.apply(1, 1_000, &lock("l", "s1"));
        kv.drop_session_locks(2, 0, "s1", false, 16_000);
        assert_eq!(kv.get("l").unwrap().session, "");
        assert!(!kv.apply(3, 15_999, &lock("l", "s2")));
        assert!(kv.apply(4, 16_000, &lock("l", "s2")));
    }

    #[test]
    fn delete_behavior_removes_held_keys() {
        let mut kv = KvStore::default();
        kv.apply(1, 0, &lock("l", "s1"));
        kv.apply(2, 0, &set("free", ""));
        kv.drop_session_locks(3, 0, "s1", true, 0);
        assert!(kv.get("l").is_none());
        assert!(kv.get("free").is_some());
        assert_eq!(kv.prefix_index("l"), 3);
    }
}
