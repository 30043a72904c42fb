//! What clients record: one `Op` per request, with simulated invoke and complete times in microseconds.

pub type ClientId = u32;
pub type ServerId = u32;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReadMode {
    Default,
    Consistent,
    Stale,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// Register instance `key` with `value` (unique per write in a run).
    Register { value: String },
    /// Deregister instance `key`.
    Deregister,
    /// Read instance `key`.
    Read { mode: ReadMode },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The write was acknowledged.
    WriteOk,
    /// The read was answered: the value seen (`None`: absent) and the response's `X-Consul-Index`.
    ReadOk { value: Option<String>, index: u64 },
    /// Certainly did not take effect (refused before it was sent, or rejected as invalid).
    Failed,
    /// May or may not have taken effect, at any time after it was invoked.
    Unknown,
}

#[derive(Clone, Debug)]
pub struct Op {
    pub client: ClientId,
    pub server: ServerId,
    pub key: String,
    pub kind: OpKind,
    pub invoke_us: u64,
    pub complete_us: u64,
    pub outcome: Outcome,
}

impl Op {
    pub fn is_write(&self) -> bool {
        matches!(self.kind, OpKind::Register { .. } | OpKind::Deregister)
    }

    pub fn is_linearizable_read(&self) -> bool {
        matches!(self.kind, OpKind::Read { mode: ReadMode::Default | ReadMode::Consistent })
            && matches!(self.outcome, Outcome::ReadOk { .. })
    }

    /// The value a read saw, if it is a successful read.
    pub fn read_value(&self) -> Option<&Option<String>> {
        match &self.outcome {
            Outcome::ReadOk { value, .. } => Some(value),
            _ => None,
        }
    }
}

#[derive(Default, Clone, Debug)]
pub struct History {
    pub ops: Vec<Op>,
    /// When each server started a new incarnation (restart after a crash), in simulated microseconds.
    pub restarts: Vec<(ServerId, u64)>,
}

impl History {
    pub fn push(&mut self, op: Op) {
        assert!(op.invoke_us <= op.complete_us, "an operation completes after it is invoked");
        self.ops.push(op);
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}
