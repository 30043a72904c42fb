//! Transactions across tables: each operation runs, on its table, against the state the previous ones
//! left; every failure is collected with its operation's position, and a transaction with any failure is
//! undone as a whole by restoring a copy of the state (the entry still takes its index, as in Consul).

use super::command::Response;
use super::machine::State;
use crate::kv::{kv_txn_command, TxnError, TxnOp, TxnOutcome, TxnResult};

impl State {
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
        match op {
            TxnOp::Kv { verb, key, index, session, .. } => self.kv.txn_read(*verb, key, *index, session),
            TxnOp::Node { .. } | TxnOp::Service { .. } | TxnOp::Check { .. } => {
                let op = op.as_catalog().expect("a node, service or check operation");
                Ok(self.catalog.txn_read(op)?.into_iter().map(TxnResult::from).collect())
            }
        }
    }

    fn txn_write(&mut self, index: u64, op: &TxnOp) -> Result<Vec<TxnResult>, String> {
        match op {
            TxnOp::Kv { verb, key, value, flags, index: expected, session } => {
                let (command, refusal) = kv_txn_command(*verb, key, value, *flags, *expected, session);
                match self.apply_kv(index, &command) {
                    Response::Kv(true) => Ok(self.kv.txn_written(*verb, key)),
                    Response::Kv(false) => Err(refusal),
                    Response::Rejected(why) => Err(why),
                    other => unreachable!("KV apply answered {other:?}"),
                }
            }
            TxnOp::Node { .. } | TxnOp::Service { .. } | TxnOp::Check { .. } => {
                let op = op.as_catalog().expect("a node, service or check operation");
                let (answered, losses) = self.catalog.txn_write(index, op)?;
                self.on_health_lost(index, &losses);
                Ok(answered.into_iter().map(TxnResult::from).collect())
            }
        }
    }
}
