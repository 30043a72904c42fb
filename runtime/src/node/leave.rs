//! A graceful leave: the agent tells the WAN pool (servers) and then the LAN pool that it is leaving and
//! waits for the news to spread, so its members show `left` rather than `failed`. Used by
//! `/v1/agent/leave`, `conclave leave`, and SIGTERM/SIGINT when the agent is configured to leave on them.

use std::sync::Arc;
use std::time::Duration;

use super::gossip::{GossipCommand, Pool};
use super::Node;
use crate::env::Env;

/// How long each pool may take to spread the leave before the agent stops anyway.
const LEAVE_PROPAGATE_MAX: Duration = Duration::from_secs(10);

/// Leaves both gossip pools; returns when the leaves are sent or the time is up.
pub async fn leave_cluster<E: Env>(node: &Arc<Node<E>>) {
    tracing::info!(target: "conclave::event", node = %node.config.node_name, "leaving the cluster");
    for pool in [Pool::Wan, Pool::Lan] {
        let (reply, left) = tokio::sync::oneshot::channel();
        if node.gossip.send_to(pool, GossipCommand::Leave(reply)).await
            && tokio::time::timeout(LEAVE_PROPAGATE_MAX, left).await.is_err()
        {
            tracing::warn!(node = %node.config.node_name, ?pool, "leave not confirmed in time; stopping anyway");
        }
    }
}
