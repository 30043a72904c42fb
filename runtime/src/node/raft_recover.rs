//! Recovery from the permanent loss of a quorum of servers: `conclave operator raft recover` and Consul's
//! `<data-dir>/raft/peers.json`. Both rewrite a stopped server's stored Raft state so that the survivors
//! are the whole configuration, the way hashicorp/raft's `RecoverCluster` does it for Consul:
//!
//! 1. apply every entry of the log to the state machine, committed or not (the lost servers cannot say
//!    which were committed; an entry that was only on this server is kept rather than dropped);
//! 2. set the state machine's membership to the survivors, stamped with the last log id, and write a
//!    snapshot at that log id;
//! 3. purge the whole log (so no membership entry in it overrides the snapshot's: openraft takes the last
//!    membership entry after the last applied one as effective, `StorageHelper::get_membership`);
//! 4. record the last log id as committed and vote, uncommitted, for this server at a new term.
//!
//! Step 2 keeps the last log id rather than inventing one at a new index: two survivors recovered each on
//! their own then compare logs as Raft does, and the one with the longer log wins the election and
//! sends the other a snapshot. A made-up entry would give two different entries the same log id.
//! Step 4's vote is not committed, so no survivor starts as leader: they elect one.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::{BasicNode, LogIdOptionExt, Membership, RaftLogReader, RaftSnapshotBuilder, StoredMembership, Vote};
use serde::Deserialize;

use crate::env::Store;
use crate::raft::disk_syncs::DiskSyncs;
use crate::raft::log_store::LogStore;
use crate::raft::state_machine::{SharedState, StateMachine};
use crate::raft::{LogId, NodeId};

/// Consul's recovery file, relative to the data dir.
pub const PEERS_FILE: &str = "raft/peers.json";

/// Largest `peers.json` read: a few hundred bytes per server, and a cluster has a handful of servers.
const PEERS_FILE_BYTES_MAX: u64 = 1 << 20;

/// Largest number of servers a peers list may name (Consul recommends 3 or 5).
const PEERS_MAX: usize = 64;

/// One server of the recovered configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub raft_id: NodeId,
    /// Its server RPC address, `ip:port`.
    pub address: String,
    /// False for a non-voter (an openraft learner).
    pub voter: bool,
}

/// One entry of Consul's `peers.json`, format version 3.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeersJsonEntry {
    id: String,
    address: String,
    #[serde(default)]
    non_voter: bool,
}

/// A server's ID as an operator may write it: its node ID (the UUID Consul puts in `peers.json`, in
/// `<data-dir>/node-id`) or the Raft ID `operator raft list-peers` shows (16 hex digits).
pub fn parse_peer_id(id: &str) -> Result<NodeId, String> {
    if let Ok(uuid) = uuid::Uuid::parse_str(id) {
        return Ok(super::identity::raft_id_of(&uuid.to_string()));
    }
    let hex = id.strip_prefix("0x").unwrap_or(id);
    match hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        true => u64::from_str_radix(hex, 16).map_err(|e| e.to_string()),
        false => Err(format!("{id:?} is neither a node ID (UUID) nor a Raft ID (16 hex digits)")),
    }
}

/// Parses a `peers.json` (version 3: `[{"id": ..., "address": "ip:port", "non_voter": false}]`). The
/// error says what is wrong in the operator's terms; the caller names the file.
pub fn parse_peers_json(bytes: &[u8]) -> Result<Vec<Peer>, String> {
    let entries: Vec<PeersJsonEntry> =
        serde_json::from_slice(bytes).map_err(|e| match serde_json::from_slice::<Vec<String>>(bytes) {
            Ok(_) => "this is the old peers.json format (a list of addresses); write version 3, a list of \
                      {\"id\", \"address\", \"non_voter\"} objects"
                .to_string(),
            Err(_) => format!("not a valid peers.json: {e}"),
        })?;
    if entries.is_empty() {
        return Err("the peers list is empty".to_string());
    }
    if entries.len() > PEERS_MAX {
        return Err(format!("the peers list names {} servers; at most {PEERS_MAX} are accepted", entries.len()));
    }
    let mut peers: Vec<Peer> = Vec::with_capacity(entries.len());
    for entry in entries {
        let raft_id = parse_peer_id(&entry.id)?;
        entry
            .address
            .parse::<SocketAddr>()
            .map_err(|_| format!("address {:?} of {} is not ip:port", entry.address, entry.id))?;
        if peers.iter().any(|p| p.raft_id == raft_id) {
            return Err(format!("server {} is listed twice", entry.id));
        }
        if peers.iter().any(|p| p.address == entry.address) {
            return Err(format!("address {} is listed twice", entry.address));
        }
        peers.push(Peer { raft_id, address: entry.address, voter: !entry.non_voter });
    }
    if !peers.iter().any(|p| p.voter) {
        return Err("the peers list has no voter".to_string());
    }
    Ok(peers)
}

/// What a recovery did.
#[derive(Clone, Debug)]
pub struct Recovered {
    /// The last log id of this server: the recovered state is the state at it.
    pub last_log_id: LogId,
    /// Log entries applied to the state machine, committed or not, before the snapshot was written.
    pub entries_applied: u64,
    /// The configuration before (the last one in the log) and after.
    pub before: Vec<Peer>,
    pub after: Vec<Peer>,
    /// The term of the vote written.
    pub term: u64,
}

fn peers_of(membership: &Membership<NodeId, BasicNode>) -> Vec<Peer> {
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    membership
        .nodes()
        .map(|(id, node)| Peer { raft_id: *id, address: node.addr.clone(), voter: voters.contains(id) })
        .collect()
}

/// Rewrites the Raft state in `store` (a stopped server's, whose Raft ID is `self_id`) so that `peers`
/// are the only servers; `None` means this server alone, at the address the configuration has for it.
/// Nothing is written before every check has passed; each write is synced.
pub async fn recover(store: Arc<dyn Store>, self_id: NodeId, peers: Option<Vec<Peer>>) -> anyhow::Result<Recovered> {
    let mut log = LogStore::new(store.clone(), DiskSyncs::new());
    let mut machine = StateMachine::open(store, SharedState::new(), "raft-recover")?;
    let log_state = log.get_log_state().await?;
    let (applied, _) = machine.applied_state().await?;
    let Some(last) = std::cmp::max(log_state.last_log_id, applied) else {
        bail!("there is no Raft state in this data dir (the server never joined a cluster): nothing to recover");
    };
    let entries_applied = apply_log(&mut log, &mut machine, applied, last).await?;
    let (_, current) = machine.applied_state().await?;
    let before = peers_of(current.membership());
    let after = match peers {
        Some(peers) => peers,
        None => {
            let Some(me) = before.iter().find(|p| p.raft_id == self_id) else {
                bail!(
                    "this server (Raft ID {self_id:016x}) is not in its own Raft configuration; name the survivors \
                     with -peers"
                );
            };
            vec![Peer { voter: true, ..me.clone() }]
        }
    };
    if !after.iter().any(|p| p.raft_id == self_id) {
        bail!("this server (Raft ID {self_id:016x}) is not in the peers list: every survivor must be in it");
    }
    assert!(after.iter().any(|p| p.voter), "a peers list has a voter (checked when parsed)");

    let voters: BTreeSet<NodeId> = after.iter().filter(|p| p.voter).map(|p| p.raft_id).collect();
    let nodes: BTreeMap<NodeId, BasicNode> =
        after.iter().map(|p| (p.raft_id, BasicNode { addr: p.address.clone() })).collect();
    machine.replace_membership(StoredMembership::new(Some(last), Membership::new(vec![voters], nodes)));
    // Snapshot first: a crash before the purge leaves entries the snapshot already covers, which openraft
    // skips; the other order could leave a purged log and no state.
    machine.get_snapshot_builder().await.build_snapshot().await?;
    log.purge(last).await?;
    log.save_committed(Some(last)).await?;
    let vote = log.read_vote().await?.unwrap_or_default();
    let term = vote.leader_id().term.max(last.leader_id.term) + 1;
    log.save_vote(&Vote::new(term, self_id)).await?;
    Ok(Recovered { last_log_id: last, entries_applied, before, after, term })
}

/// Applies the log after `applied` up to `last` to `machine`; returns how many entries it applied.
async fn apply_log(
    log: &mut LogStore,
    machine: &mut StateMachine,
    applied: Option<LogId>,
    last: LogId,
) -> anyhow::Result<u64> {
    let mut next = applied.next_index();
    let mut count = 0;
    while next <= last.index {
        let entries = log.try_get_log_entries(next..=last.index).await?;
        match entries.first() {
            Some(first) if first.log_id.index == next => {}
            _ => bail!("the Raft log has no entry at index {next} (last is {}): the data dir is damaged", last.index),
        }
        let got = entries.len() as u64;
        let last_got = entries.last().map(|e| e.log_id.index).expect("not empty");
        assert_eq!(last_got, next + got - 1, "log entries are read in index order without gaps");
        machine.apply(entries).await?;
        count += got;
        next += got;
    }
    Ok(count)
}

/// The warning printed (and logged) whenever a recovery is done.
pub fn warning(recovered: &Recovered) -> String {
    let list = |peers: &[Peer]| {
        peers
            .iter()
            .map(|p| format!("    {:016x} {} {}", p.raft_id, p.address, if p.voter { "voter" } else { "non-voter" }))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "WARNING: the Raft configuration was rewritten by hand (manual recovery of a lost quorum).\n\
         \x20 Before:\n{}\n\
         \x20 Now:\n{}\n\
         \x20 The state is this server's log up to index {} (term {}), {} entries applied now, committed or not.\n\
         \x20 Writes that reached only the lost servers are gone for good.\n\
         \x20 Every surviving server must be recovered with the same peers list, then started; the lost servers\n\
         \x20 must never be started again on their old data dirs (wipe them before they rejoin).",
        list(&recovered.before),
        list(&recovered.after),
        recovered.last_log_id.index,
        recovered.last_log_id.leader_id.term,
        recovered.entries_applied,
    )
}

/// At server start: if `<data_dir>/raft/peers.json` exists, recovers with the servers it names, logs the
/// warning and deletes the file so that it is applied once, as Consul does. A file that does not parse,
/// or a data dir without Raft state, is an error naming the file (the agent must not start).
pub async fn apply_peers_file(data_dir: &Path, store: Arc<dyn Store>) -> anyhow::Result<Option<Recovered>> {
    let path = data_dir.join(PEERS_FILE);
    let size = match std::fs::metadata(&path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if size > PEERS_FILE_BYTES_MAX {
        bail!("{} is {size} bytes, larger than {PEERS_FILE_BYTES_MAX}: not a peers file", path.display());
    }
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let peers = parse_peers_json(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let Some(node_id) = super::identity::stored_node_id(&*store)? else {
        bail!("{}: there is no Raft state in this data dir, nothing to recover; remove the file", path.display());
    };
    let self_id = super::identity::raft_id_of(&node_id);
    let recovered =
        recover(store, self_id, Some(peers)).await.with_context(|| format!("applying {}", path.display()))?;
    std::fs::remove_file(&path).with_context(|| format!("cannot delete {} after applying it", path.display()))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    tracing::warn!("{} applied and deleted.\n{}", path.display(), warning(&recovered));
    Ok(Some(recovered))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::{MemStore, Space, WriteOp};
    use conclave_core::codec;
    use openraft::storage::StorageHelper;
    use openraft::{CommittedLeaderId, Entry, EntryPayload};

    const S1: NodeId = 0x11;
    const S2: NodeId = 0x22;
    const S3: NodeId = 0x33;

    fn log_id(term: u64, leader: NodeId, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, leader), index)
    }

    fn three_voters() -> Membership<NodeId, BasicNode> {
        let nodes: BTreeMap<NodeId, BasicNode> =
            [(S1, "127.0.0.1:8300"), (S2, "127.0.0.2:8300"), (S3, "127.0.0.3:8300")]
                .into_iter()
                .map(|(id, addr)| (id, BasicNode { addr: addr.to_string() }))
                .collect();
        Membership::new(vec![nodes.keys().copied().collect()], nodes)
    }

    /// A store as a 3-server cluster leaves it on s1: the initial membership at 0, a blank at 1, then
    /// `blanks` more entries of term 2, led by s2, the last ones not committed.
    fn three_server_store(blanks: u64) -> Arc<dyn Store> {
        let store: Arc<dyn Store> = Arc::new(MemStore::new());
        let mut entries = vec![Entry::<crate::raft::TypeConfig> {
            log_id: log_id(0, 0, 0),
            payload: EntryPayload::Membership(three_voters()),
        }];
        entries.push(Entry { log_id: log_id(1, S1, 1), payload: EntryPayload::Blank });
        for index in 2..2 + blanks {
            entries.push(Entry { log_id: log_id(2, S2, index), payload: EntryPayload::Blank });
        }
        let mut ops: Vec<WriteOp> = entries
            .iter()
            .map(|e| WriteOp::Put(Space::RaftLog, e.log_id.index.to_be_bytes().to_vec(), codec::encode(e)))
            .collect();
        ops.push(WriteOp::Put(Space::RaftMeta, b"vote".to_vec(), codec::encode(&Vote::<NodeId>::new_committed(2, S2))));
        ops.push(WriteOp::Put(Space::RaftMeta, b"committed".to_vec(), codec::encode(&Some(log_id(2, S2, 2)))));
        store.write(ops).unwrap();
        store
    }

    /// What openraft reads at start from `store`.
    async fn initial_state(store: &Arc<dyn Store>) -> openraft::RaftState<NodeId, BasicNode, openraft::TokioInstant> {
        let mut log = LogStore::new(store.clone(), DiskSyncs::new());
        let mut machine = StateMachine::open(store.clone(), SharedState::new(), "test").unwrap();
        StorageHelper::new(&mut log, &mut machine).get_initial_state().await.unwrap()
    }

    fn voters(state: &openraft::RaftState<NodeId, BasicNode, openraft::TokioInstant>) -> Vec<NodeId> {
        state.membership_state.effective().membership().voter_ids().collect()
    }

    #[tokio::test]
    async fn recovering_to_this_server_leaves_openraft_one_voter() {
        let store = three_server_store(5);
        assert_eq!(voters(&initial_state(&store).await), vec![S1, S2, S3]);

        let recovered = recover(store.clone(), S1, None).await.unwrap();
        assert_eq!(recovered.last_log_id, log_id(2, S2, 6));
        assert_eq!(recovered.entries_applied, 7, "every entry, committed or not");
        assert_eq!(recovered.after, vec![Peer { raft_id: S1, address: "127.0.0.1:8300".into(), voter: true }]);

        let state = initial_state(&store).await;
        assert_eq!(voters(&state), vec![S1]);
        assert_eq!(state.membership_state.committed().membership().voter_ids().collect::<Vec<_>>(), vec![S1]);
        assert_eq!(state.committed, Some(log_id(2, S2, 6)), "the whole log counts as committed");
        let log_state = LogStore::new(store.clone(), DiskSyncs::new()).get_log_state().await.unwrap();
        assert_eq!(log_state.last_log_id, Some(log_id(2, S2, 6)), "the last log id is kept");
        assert_eq!(state.vote_ref(), &Vote::new(3, S1), "a new term, not committed: the node must win an election");
    }

    #[tokio::test]
    async fn recovered_state_holds_the_uncommitted_entries_too() {
        let store = three_server_store(3);
        recover(store.clone(), S1, None).await.unwrap();
        let shared = SharedState::new();
        StateMachine::open(store.clone(), shared.clone(), "test").unwrap();
        assert_eq!(shared.read().last_index(), 4, "the snapshot is the state at the last entry");
    }

    #[tokio::test]
    async fn recovering_to_two_peers_keeps_both_as_voters_and_a_non_voter_as_learner() {
        let store = three_server_store(2);
        let peers = parse_peers_json(
            br#"[{"id": "0000000000000011", "address": "10.0.0.1:8300"},
                 {"id": "0000000000000022", "address": "10.0.0.2:8300", "non_voter": false},
                 {"id": "0000000000000044", "address": "10.0.0.4:8300", "non_voter": true}]"#,
        )
        .unwrap();
        recover(store.clone(), S1, Some(peers)).await.unwrap();
        let state = initial_state(&store).await;
        assert_eq!(voters(&state), vec![S1, S2]);
        let membership = state.membership_state.effective().membership().clone();
        assert_eq!(membership.learner_ids().collect::<Vec<_>>(), vec![0x44]);
        assert_eq!(membership.get_node(&S1).unwrap().addr, "10.0.0.1:8300", "addresses come from the list");
    }

    #[tokio::test]
    async fn recovering_twice_is_harmless() {
        let store = three_server_store(2);
        let first = recover(store.clone(), S1, None).await.unwrap();
        let second = recover(store.clone(), S1, None).await.unwrap();
        assert_eq!(second.last_log_id, first.last_log_id);
        assert_eq!(second.entries_applied, 0);
        assert_eq!(second.term, first.term + 1);
        assert_eq!(voters(&initial_state(&store).await), vec![S1]);
    }

    #[tokio::test]
    async fn a_store_without_raft_state_is_refused() {
        let store: Arc<dyn Store> = Arc::new(MemStore::new());
        let error = recover(store, S1, None).await.unwrap_err().to_string();
        assert!(error.contains("no Raft state"), "{error}");
    }

    #[tokio::test]
    async fn a_peers_list_without_this_server_is_refused_and_nothing_is_written() {
        let store = three_server_store(2);
        let peers = vec![Peer { raft_id: S2, address: "10.0.0.2:8300".into(), voter: true }];
        let error = recover(store.clone(), S1, Some(peers)).await.unwrap_err().to_string();
        assert!(error.contains("not in the peers list"), "{error}");
        assert_eq!(voters(&initial_state(&store).await), vec![S1, S2, S3]);
    }

    #[test]
    fn peer_ids_are_node_ids_or_raft_ids() {
        let node_id = "8a3e2c11-0000-4000-8000-000000000001";
        assert_eq!(parse_peer_id(node_id), Ok(crate::node::identity::raft_id_of(node_id)));
        assert_eq!(parse_peer_id("8a3e2c1100004000"), Ok(0x8a3e_2c11_0000_4000));
        assert!(parse_peer_id("s1").is_err());
    }

    #[test]
    fn bad_peers_files_are_refused_with_the_reason() {
        let cases: &[(&[u8], &str)] = &[
            (b"[{\"id\": ", "not a valid peers.json"),
            (br#"["10.0.0.1:8300"]"#, "old peers.json format"),
            (b"[]", "empty"),
            (br#"[{"id": "0000000000000011", "address": "10.0.0.1"}]"#, "not ip:port"),
            (br#"[{"id": "0000000000000011", "address": "10.0.0.1:8300", "non_voter": true}]"#, "no voter"),
            (br#"[{"id": "0000000000000011", "address": "10.0.0.1:8300", "nonvoter": true}]"#, "unknown field"),
            (
                br#"[{"id": "0000000000000011", "address": "10.0.0.1:8300"},
                    {"id": "0000000000000011", "address": "10.0.0.2:8300"}]"#,
                "listed twice",
            ),
        ];
        for (bytes, reason) in cases {
            let error = parse_peers_json(bytes).unwrap_err();
            assert!(error.contains(reason), "{:?}: {error}", String::from_utf8_lossy(bytes));
        }
    }
}
