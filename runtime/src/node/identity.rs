//! The node's identity: a Consul-style node ID (UUID) created once and kept in the data dir, and the Raft
//! ID derived from it.

use anyhow::Context;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::env::{Space, Store, WriteOp};
use crate::raft::NodeId;

const KEY_NODE_ID: &[u8] = b"node_id";

/// Reads the node ID, or creates one (`configured`, else from the node's rng) and syncs it before it is
/// used anywhere. A configured ID that differs from the data dir's is refused: the Raft ID derives from it.
pub fn load_or_create_node_id(store: &dyn Store, rng_seed: u64, configured: Option<&str>) -> anyhow::Result<String> {
    if let Some(text) = stored_node_id(store)? {
        if let Some(configured) = configured.filter(|id| *id != text) {
            anyhow::bail!(
                "node_id {configured} differs from the node ID {text} this data dir was created with; \
                 remove node_id (or -node-id) or use a new data dir"
            );
        }
        return Ok(text);
    }
    let id = match configured {
        Some(id) => id.to_string(),
        None => {
            let mut bytes = [0u8; 16];
            ChaCha8Rng::seed_from_u64(rng_seed ^ 0x6e6f_6465_6964).fill_bytes(&mut bytes); // "nodeid"
            uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
        }
    };
    store.write(vec![WriteOp::Put(Space::Agent, KEY_NODE_ID.to_vec(), id.clone().into_bytes())])?;
    store.sync().context("syncing node ID")?;
    Ok(id)
}

/// The node ID the data dir was created with, if an agent has run on it.
pub fn stored_node_id(store: &dyn Store) -> anyhow::Result<Option<String>> {
    let Some(bytes) = store.get(Space::Agent, KEY_NODE_ID).context("reading node ID")? else {
        return Ok(None);
    };
    let text = String::from_utf8(bytes).context("node ID in the data dir is not UTF-8 (agent/node_id)")?;
    uuid::Uuid::parse_str(&text).with_context(|| format!("node ID in the data dir is not a UUID: {text:?}"))?;
    Ok(Some(text))
}

/// The Raft ID: the first 8 bytes of the UUID, never 0.
pub fn raft_id_of(node_id: &str) -> NodeId {
    let uuid = uuid::Uuid::parse_str(node_id).expect("node IDs are validated when loaded");
    let bytes = uuid.as_bytes();
    let id = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
    id.max(1)
}
