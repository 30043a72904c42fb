//! Keyring operations across a gossip pool: `/v1/operator/keyring` and `conclave keyring` reach every
//! alive member of the LAN pool over the LAN port (sealed under the current key, so only key holders
//! can change keys) and, on servers, every alive server of the WAN pool over its RPC port, all at once;
//! each member applies the operation to its own keyring and file and answers the keys it holds.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use conclave_core::gossip::MemberStatus;

use super::gossip::Pool;
use super::Node;
use crate::env::Env;
use crate::raft::messages::{Reply, Request};
use crate::security::keyring::{KeyringAnswer, KeyringOp};

/// How long one member may take to answer.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(5);

/// What the members of one pool answered.
#[derive(Clone, Debug, Default)]
pub struct PoolAnswers {
    /// Answers by member name.
    pub answers: BTreeMap<String, KeyringAnswer>,
    /// Failures by member name.
    pub failures: BTreeMap<String, String>,
}

impl PoolAnswers {
    fn record(&mut self, name: String, outcome: Result<KeyringAnswer, String>) {
        match outcome {
            Ok(answer) => {
                self.answers.insert(name, answer);
            }
            Err(e) => {
                self.failures.insert(name, e);
            }
        }
    }

    pub fn members(&self) -> usize {
        self.answers.len() + self.failures.len()
    }
}

/// Runs `op` on this agent only.
fn apply_locally<E: Env>(node: &Node<E>, pool: Pool, op: &KeyringOp) -> PoolAnswers {
    let mut answers = PoolAnswers::default();
    let name = member_name(node, pool);
    answers.record(name, node.security.gossip.apply(pool.keys(), op));
    answers
}

fn member_name<E: Env>(node: &Node<E>, pool: Pool) -> String {
    match pool {
        Pool::Lan => node.config.node_name.clone(),
        Pool::Wan => format!("{}.{}", node.config.node_name, node.config.datacenter),
    }
}

/// Runs `op` on every alive member of `pool` (this agent included) and gathers the answers.
pub async fn apply_to_pool<E: Env>(node: &Arc<Node<E>>, pool: Pool, op: &KeyringOp) -> PoolAnswers {
    let own_name = member_name(node, pool);
    let members: Vec<(String, SocketAddr)> = node
        .gossip
        .members_of(pool)
        .into_iter()
        .filter(|m| m.status == MemberStatus::Alive && m.name != own_name)
        .map(|m| {
            let addr = match pool {
                Pool::Lan => m.addr,
                Pool::Wan => SocketAddr::new(m.addr.ip(), m.tags.rpc_port),
            };
            (m.name, addr)
        })
        .collect();
    let calls = members.into_iter().map(|(name, addr)| {
        let (node, op) = (node.clone(), op.clone());
        async move {
            let request = Request::Keyring { pool: pool.keys(), op };
            let sender = match pool {
                Pool::Lan => &node.lan_pool,
                Pool::Wan => &node.pool,
            };
            let outcome = match sender.call(addr, &request, MEMBER_TIMEOUT).await {
                Ok(Reply::Keyring(answer)) => answer,
                Ok(Reply::Refused(why)) => Err(why),
                Ok(other) => Err(format!("unexpected reply {other:?}")),
                Err(e) => Err(format!("cannot reach {addr}: {e}")),
            };
            (name, outcome)
        }
    });
    let mut answers = apply_locally(node, pool, op);
    for (name, outcome) in futures::future::join_all(calls).await {
        answers.record(name, outcome);
    }
    answers
}
