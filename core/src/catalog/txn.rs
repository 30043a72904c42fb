//! Transactions in the catalog's apply: each operation runs against the state the previous ones left,
//! every failure is collected with its operation's position, and a transaction with any failure is undone
//! as a whole (the entry still takes its index, as in Consul).

use super::command::{DeregisterRequest, RegisterRequest, Response};
use super::state::Catalog;
use crate::kv::txn::{CatalogVerb, KvVerb};
use crate::kv::{KvCommand, KvEntry, TxnError, TxnOp, TxnOutcome, TxnResult};

impl Catalog {
    pub(super) fn apply_txn(&mut self, index: u64, ops: &[TxnOp]) -> Response {
        let before = ops.iter().any(|op| !op.is_read()).then(|| self.clone());
        let mut results = Vec::new();
        let mut errors = Vec::new();
        for (op_index, op) in ops.iter().enumerate() {
            let outcome = if op.is_read() { self.txn_read(op) } else { self.txn_write(index, op) };
            match outcome {
                Ok(answered) => results.extend(answered),
                Err(what) => errors.push(TxnError { op_index, what }),
            }
        }
        if errors.is_empty() {
            return Response::Txn(TxnOutcome::Committed(results));
        }
        if let Some(before) = before {
            *self = before;
        }
        Response::Txn(TxnOutcome::RolledBack(errors))
    }

    /// Runs a transaction of reads only, without a Raft entry.
    pub fn read_txn(&self, ops: &[TxnOp]) -> TxnOutcome {
        assert!(ops.iter().all(TxnOp::is_read), "read_txn given a write");
        let mut results = Vec::new();
        let mut errors = Vec::new();
        for (op_index, op) in ops.iter().enumerate() {
            match self.txn_read(op) {
                Ok(answered) => results.extend(answered),
                Err(what) => errors.push(TxnError { op_index, what }),
            }
        }
        if errors.is_empty() {
            TxnOutcome::Committed(results)
        } else {
            TxnOutcome::RolledBack(errors)
        }
    }

    fn txn_read(&self, op: &TxnOp) -> Result<Vec<TxnResult>, String> {
        let blank = |entry: &KvEntry| TxnResult::Kv(KvEntry { value: Vec::new(), ..entry.clone() });
        match op {
            TxnOp::Kv { verb, key, index, session, .. } => {
                let entry = self.kv.get(key);
                let missing = || format!("key {key:?} doesn't exist");
                match verb {
                    KvVerb::Get => entry.map(|e| vec![TxnResult::Kv(e.clone())]).ok_or_else(missing),
                    KvVerb::GetOrEmpty => {
                        let empty = KvEntry { key: key.clone(), ..KvEntry::default() };
                        Ok(vec![TxnResult::Kv(entry.cloned().unwrap_or(empty))])
                    }
                    KvVerb::GetTree => Ok(self.kv.list(key).into_iter().map(|e| TxnResult::Kv(e.clone())).collect()),
                    KvVerb::CheckIndex => {
                        let entry = entry.ok_or_else(missing)?;
                        if entry.modify_index != *index {
                            return Err(format!("current modify index {} != {index}", entry.modify_index));
                        }
                        Ok(vec![blank(entry)])
                    }
                    KvVerb::CheckSession => {
                        let entry = entry.ok_or_else(missing)?;
                        if entry.session != *session {
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
            TxnOp::Node { node, .. } => self
                .nodes
                .get(&node.node)
                .map(|n| vec![TxnResult::Node(n.clone())])
                .ok_or_else(|| format!("node {:?} doesn't exist", node.node)),
            TxnOp::Service { node, service, .. } => {
                let id = super::service_id_of(service);
                self.instance(node, &id)
                    .map(|s| vec![TxnResult::Service(s.clone())])
                    .ok_or_else(|| format!("service {id:?} on node {node:?} doesn't exist"))
            }
            TxnOp::Check { node, check, .. } => self
                .checks
                .get(&(node.clone(), check.check_id.clone()))
                .map(|c| vec![TxnResult::Check(c.clone())])
                .ok_or_else(|| format!("check {:?} on node {node:?} doesn't exist", check.check_id)),
        }
    }

    fn txn_write(&mut self, index: u64, op: &TxnOp) -> Result<Vec<TxnResult>, String> {
        match op {
            TxnOp::Kv { verb, key, value, flags, index: expected, session } => {
                let (key, value, flags, session) = (key.clone(), value.clone(), *flags, session.clone());
                let (command, refusal) = match verb {
                    KvVerb::Set => (KvCommand::Set { key: key.clone(), value, flags }, String::new()),
                    KvVerb::Cas => (
                        KvCommand::Cas { key: key.clone(), value, flags, index: *expected },
                        format!("failed to set key {key:?}, index is stale"),
                    ),
                    KvVerb::Lock => (
                        KvCommand::Lock { key: key.clone(), value, flags, session },
                        format!("failed to lock key {key:?}, lock is already held"),
                    ),
                    KvVerb::Unlock => (
                        KvCommand::Unlock { key: key.clone(), value, flags, session },
                        format!("failed to unlock key {key:?}, lock isn't held, or is held by another session"),
                    ),
                    KvVerb::Delete => (KvCommand::Delete { key: key.clone() }, String::new()),
                    KvVerb::DeleteTree => (KvCommand::DeleteTree { prefix: key.clone() }, String::new()),
                    KvVerb::DeleteCas => (
                        KvCommand::DeleteCas { key: key.clone(), index: *expected },
                        format!("failed to delete key {key:?}, index is stale"),
                    ),
                    read => unreachable!("{read:?} is not a write"),
                };
                match self.apply_kv(index, &command) {
                    Response::Kv(true) => {}
                    Response::Kv(false) => return Err(refusal),
                    Response::Rejected(why) => return Err(why),
                    other => unreachable!("KV apply answered {other:?}"),
                }
                let written = self
                    .kv
                    .get(&key)
                    .filter(|_| matches!(verb, KvVerb::Set | KvVerb::Cas | KvVerb::Lock | KvVerb::Unlock));
                Ok(written.map(|e| TxnResult::Kv(KvEntry { value: Vec::new(), ..e.clone() })).into_iter().collect())
            }
            TxnOp::Node { verb, node, index: expected } => {
                let current = self.nodes.get(&node.node).map(|n| n.modify_index);
                let stale = || format!("failed to {} node {:?}, index is stale", verb_word(*verb), node.node);
                if matches!(verb, CatalogVerb::Cas | CatalogVerb::DeleteCas) && current.unwrap_or(0) != *expected {
                    return Err(stale());
                }
                if matches!(verb, CatalogVerb::Delete | CatalogVerb::DeleteCas) {
                    self.remove_node(index, &node.node);
                    return Ok(Vec::new());
                }
                let request = RegisterRequest { node: node.clone(), ..RegisterRequest::default() };
                self.register_for_txn(index, request)?;
                Ok(vec![TxnResult::Node(self.nodes[&node.node].clone())])
            }
            TxnOp::Service { verb, node, service, index: expected } => {
                let id = super::service_id_of(service);
                let current = self.instance(node, &id).map(|s| s.modify_index);
                if matches!(verb, CatalogVerb::Cas | CatalogVerb::DeleteCas) && current.unwrap_or(0) != *expected {
                    return Err(format!("failed to {} service {id:?}, index is stale", verb_word(*verb)));
                }
                if matches!(verb, CatalogVerb::Delete | CatalogVerb::DeleteCas) {
                    let request = DeregisterRequest { node: node.clone(), service_id: Some(id), check_id: None };
                    self.deregister(index, &request);
                    return Ok(Vec::new());
                }
                self.require_node(node)?;
                let request = RegisterRequest {
                    node: super::NodeSpec { node: node.clone(), ..Default::default() },
                    skip_node_update: true,
                    service: Some(service.clone()),
                    checks: Vec::new(),
                };
                self.register_for_txn(index, request)?;
                Ok(vec![TxnResult::Service(self.instance(node, &id).expect("just registered").clone())])
            }
            TxnOp::Check { verb, node, check, index: expected } => {
                let key = (node.clone(), check.check_id.clone());
                let current = self.checks.get(&key).map(|c| c.modify_index);
                if matches!(verb, CatalogVerb::Cas | CatalogVerb::DeleteCas) && current.unwrap_or(0) != *expected {
                    return Err(format!("failed to {} check {:?}, index is stale", verb_word(*verb), check.check_id));
                }
                if matches!(verb, CatalogVerb::Delete | CatalogVerb::DeleteCas) {
                    let request = DeregisterRequest {
                        node: node.clone(),
                        service_id: None,
                        check_id: Some(check.check_id.clone()),
                    };
                    self.deregister(index, &request);
                    return Ok(Vec::new());
                }
                self.require_node(node)?;
                let request = RegisterRequest {
                    node: super::NodeSpec { node: node.clone(), ..Default::default() },
                    skip_node_update: true,
                    service: None,
                    checks: vec![check.clone()],
                };
                self.register_for_txn(index, request)?;
                Ok(vec![TxnResult::Check(self.checks[&key].clone())])
            }
        }
    }

    fn require_node(&self, node: &str) -> Result<(), String> {
        if self.nodes.contains_key(node) {
            Ok(())
        } else {
            Err(format!("node {node:?} doesn't exist"))
        }
    }

    fn register_for_txn(&mut self, index: u64, request: RegisterRequest) -> Result<(), String> {
        match self.register(index, &request) {
            Response::Applied => Ok(()),
            Response::Rejected(why) => Err(why),
            other => unreachable!("register answered {other:?}"),
        }
    }
}

fn verb_word(verb: CatalogVerb) -> &'static str {
    match verb {
        CatalogVerb::Delete | CatalogVerb::DeleteCas => "delete",
        _ => "set",
    }
}
