//! The Env: everything a node needs from the outside world — TCP, UDP, a durable ordered store with explicit
//! sync, a seeded rng and the wall clock shown in the API. The driver is written once against this trait;
//! `TokioEnv` (tokio + fjall) runs it in the `conclave` binary and the simulator runs it on turmoil.
//! Time is `tokio::time` everywhere (turmoil drives it in simulation), so it is not part of the Env.

mod fjall_store;
pub mod host;
pub mod http_client;
pub mod join_address;
pub mod logs;
pub mod mem_store;
mod tokio_env;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

pub use fjall_store::FjallStore;
pub use mem_store::MemStore;
pub use tokio_env::TokioEnv;

/// A node's network, disk and randomness.
pub trait Env: Clone + Send + Sync + 'static {
    /// A connected TCP stream.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// A TCP listener; axum's `Listener` so the HTTP API is served by the same code in both Envs.
    type Listener: axum::serve::Listener<Io = Self::Stream, Addr = SocketAddr>;

    /// A bound UDP socket (gossip, DNS).
    type Datagram: Datagram;

    fn bind_tcp(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>> + Send;
    fn bind_udp(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Datagram>> + Send;
    fn connect_tcp(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send;
    /// The address of a host name (HTTP and TCP check targets that name a host).
    fn resolve_host(&self, host: &str) -> impl Future<Output = io::Result<std::net::IpAddr>> + Send;
    /// Runs a script check's command (`args[0]` with the rest as arguments) to completion: its exit code
    /// (`None` when killed by a signal) and its stdout and stderr. Dropping the future kills the process.
    fn run_script(&self, args: Vec<String>) -> impl Future<Output = io::Result<(Option<i32>, Vec<u8>)>> + Send;
    /// The node's durable store (its data dir).
    fn store(&self) -> Arc<dyn Store>;
    /// Seed of the node's rng: OS entropy in production, derived from the run seed in simulation.
    fn rng_seed(&self) -> u64;
    /// Milliseconds since the Unix epoch, for timestamps the API shows (never for timing decisions).
    fn unix_time_ms(&self) -> u64;
}

/// A bound UDP socket, shared (behind an `Arc`) by the task that receives and those that send.
pub trait Datagram: Send + Sync + 'static {
    fn send_to(&self, payload: &[u8], to: SocketAddr) -> impl Future<Output = io::Result<usize>> + Send;
    fn recv_from(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send;
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// Named key spaces of the store, so that a range delete in one never touches another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Space {
    /// Raft log entries keyed by big-endian index.
    RaftLog,
    /// Raft vote, committed id, last purged id, the latest snapshot and the node's identity.
    RaftMeta,
    /// The agent's own state (node ID, locally registered services).
    Agent,
    /// Raft snapshots, as pieces under a generation number (`raft::snapshot_store`).
    RaftSnapshot,
    /// A snapshot restore under way: its staged chunks and the spilled old state (`raft::restore_space`).
    Restore,
}

impl Space {
    pub const ALL: [Space; 5] = [Space::RaftLog, Space::RaftMeta, Space::Agent, Space::RaftSnapshot, Space::Restore];

    pub fn name(self) -> &'static str {
        match self {
            Space::RaftLog => "raft_log",
            Space::RaftMeta => "raft_meta",
            Space::Agent => "agent",
            Space::RaftSnapshot => "raft_snapshot",
            Space::Restore => "restore",
        }
    }
}

/// One change in an atomic write batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOp {
    Put(Space, Vec<u8>, Vec<u8>),
    Delete(Space, Vec<u8>),
    /// Delete every key in `[from, to)`.
    DeleteRange(Space, Vec<u8>, Vec<u8>),
}

/// The future of [`Store::sync_durable`].
pub type SyncFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// A durable ordered key-value store. A `write` is atomic and visible at once but may be lost on a crash
/// until `sync` returns: callers sync before they acknowledge anything.
pub trait Store: Send + Sync + 'static {
    fn write(&self, ops: Vec<WriteOp>) -> io::Result<()>;
    /// Makes every write so far durable, blocking the calling thread (small, rare syncs: the node ID,
    /// local services, persisted tokens).
    fn sync(&self) -> io::Result<()>;
    /// Like `sync`, without blocking the async task that awaits it: Raft's log, vote and snapshots use it,
    /// so a disk whose fsync hangs stalls only the future (the disk watchdog, `node::disk_watchdog`,
    /// notices how long it has been outstanding). The default runs `sync` at once, which suits stores
    /// that never block (memory).
    fn sync_durable(self: Arc<Self>) -> SyncFuture {
        Box::pin(std::future::ready(self.sync()))
    }
    fn get(&self, space: Space, key: &[u8]) -> io::Result<Option<Vec<u8>>>;
    /// Entries with `from <= key < to` (`to = None`: to the end), in key order, at most `limit_max` of them.
    fn scan(
        &self,
        space: Space,
        from: &[u8],
        to: Option<&[u8]>,
        limit_max: usize,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// The entry with the greatest key in `space`.
    fn last(&self, space: Space) -> io::Result<Option<(Vec<u8>, Vec<u8>)>>;
    /// A small file of the data dir that operators read or place by hand (`serf/local.keyring`), by its
    /// path relative to the data dir; `None` if it does not exist.
    fn read_file(&self, relative_path: &str) -> io::Result<Option<Vec<u8>>>;
    /// Replaces such a file atomically and durably (it is synced before this returns).
    fn write_file(&self, relative_path: &str, bytes: &[u8]) -> io::Result<()>;
}
