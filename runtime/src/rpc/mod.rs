//! Node-to-node RPC transport: length-prefixed frames (a big-endian u32 length, then a `codec`-encoded
//! message) over TCP, and a pool of connections. The transport is generic over the messages; what
//! servers actually say to each other is defined above it (`raft::messages`). The server port (8300)
//! carries Raft, forwarded writes and read-index requests; the LAN port (8301) carries server discovery.

pub mod frame;
pub mod link;
pub mod pool;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A request message and the reply it expects.
pub trait RpcRequest: Serialize + Sync {
    type Reply: DeserializeOwned + Send;

    /// Whether sending the request twice has the effect of sending it once. A request that is not
    /// idempotent is never resent once it may have been delivered.
    fn is_idempotent(&self) -> bool;

    /// A request that changes nothing and is answered at once: sent on a pooled connection before a
    /// request that is not idempotent, so that a connection the peer has dropped is found before the
    /// request could have been delivered (None: such requests always go on a fresh connection).
    fn liveness_probe() -> Option<Self>
    where
        Self: Sized;
}
