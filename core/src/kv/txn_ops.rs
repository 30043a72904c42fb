//! The KV store's operations in a transaction (`/v1/txn` KV ops): reads and checks answered from the
//! store, and writes turned into the `KvCommand` they stand for, with the error a refused one reports.

use super::store::{KvCommand, KvEntry, KvStore};
use super::txn::{KvVerb, TxnResult};

/// An entry as a transaction answers it: without its value, as Consul does for writes and checks.
fn blank(entry: &KvEntry) -> TxnResult {
    TxnResult::Kv(KvEntry { value: Vec::new(), ..entry.clone() })
}

impl KvStore {
    /// Answers a read or check verb on `key`; `index` and `session` are what a check compares with.
    pub fn txn_read(&self, verb: KvVerb, key: &str, index: u64, session: &str) -> Result<Vec<TxnResult>, String> {
        let entry = self.get(key);
        let missing = || format!("key {key:?} doesn't exist");
        match verb {
            KvVerb::Get => entry.map(|e| vec![TxnResult::Kv(e.clone())]).ok_or_else(missing),
            KvVerb::GetOrEmpty => {
                let empty = KvEntry { key: key.to_string(), ..KvEntry::default() };
                Ok(vec![TxnResult::Kv(entry.cloned().unwrap_or(empty))])
            }
            KvVerb::GetTree => Ok(self.list(key).into_iter().map(|e| TxnResult::Kv(e.clone())).collect()),
            KvVerb::CheckIndex => {
                let entry = entry.ok_or_else(missing)?;
                if entry.modify_index != index {
                    return Err(format!("current modify index {} != {index}", entry.modify_index));
                }
                Ok(vec![blank(entry)])
            }
            KvVerb::CheckSession => {
                let entry = entry.ok_or_else(missing)?;
                if entry.session != session {
                    return Err(format!(
                        "failed session check for key {key:?}, current session {:?} != {session:?}",
                        entry.session
                    ));
                }
                Ok(vec![blank(entry)])
            }
            KvVerb::CheckNotExists => match entry {
                Some(_) => Err(format!("key {key:?} exists")),
                None => Ok(Vec::new()),
            },
            write => unreachable!("{write:?} is not a read"),
        }
    }

    /// What a write verb on `key` answers once applied: the entry written (value left out), nothing for a
    /// delete.
    pub fn txn_written(&self, verb: KvVerb, key: &str) -> Vec<TxnResult> {
        let answers = matches!(verb, KvVerb::Set | KvVerb::Cas | KvVerb::Lock | KvVerb::Unlock);
        self.get(key).filter(|_| answers).map(blank).into_iter().collect()
    }
}

/// The command a write verb stands for, and the error the transaction reports when its condition fails.
pub fn kv_txn_command(
    verb: KvVerb,
    key: &str,
    value: &[u8],
    flags: u64,
    expected: u64,
    session: &str,
) -> (KvCommand, String) {
    let (key, value, session) = (key.to_string(), value.to_vec(), session.to_string());
    match verb {
        KvVerb::Set => (KvCommand::Set { key, value, flags }, String::new()),
        KvVerb::Cas => {
            let refusal = format!("failed to set key {key:?}, index is stale");
            (KvCommand::Cas { key, value, flags, index: expected }, refusal)
        }
        KvVerb::Lock => {
            let refusal = format!("failed to lock key {key:?}, lock is already held");
            (KvCommand::Lock { key, value, flags, session }, refusal)
        }
        KvVerb::Unlock => {
            let refusal = format!("failed to unlock key {key:?}, lock isn't held, or is held by another session");
            (KvCommand::Unlock { key, value, flags, session }, refusal)
        }
        KvVerb::Delete => (KvCommand::Delete { key }, String::new()),
        KvVerb::DeleteTree => (KvCommand::DeleteTree { prefix: key }, String::new()),
        KvVerb::DeleteCas => {
            let refusal = format!("failed to delete key {key:?}, index is stale");
            (KvCommand::DeleteCas { key, index: expected }, refusal)
        }
        read => unreachable!("{read:?} is not a write"),
    }
}
