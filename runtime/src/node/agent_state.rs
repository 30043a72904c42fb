//! The agent's own services and checks on a running node: kept in `LocalState`, persisted in the data dir
//! (synced before the API answers), pushed to the catalog on every change and reconciled by a periodic
//! anti-entropy pass, so the catalog converges on what the agent holds even after a failed push: the
//! pass compares the local state with the catalog's entries under the node (a client agent asks a server
//! for them, `Request::NodeEntries`) and registers what is missing and removes what the agent no longer
//! holds. Check results reach the catalog through the same task as soon as the check runner marks them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use conclave_core::acl::{Need, Resource};
use conclave_core::agent::anti_entropy::{full_sync_interval_ms, sync_plan, sync_plan_for, Reserved};
use conclave_core::agent::LocalState;
use conclave_core::catalog::NodeEntries;
use conclave_core::codec;
use conclave_core::state::{Command, Response};

use super::self_register::SERF_HEALTH_CHECK_ID;
use super::Node;
use crate::env::{Env, Space, Store, WriteOp};
use crate::raft::messages::{Reply, Request};

const KEY_LOCAL_STATE: &[u8] = b"local_state";

/// How often the whole local state is pushed again in a cluster of up to 128 nodes (Consul's base
/// anti-entropy interval); larger clusters stretch it (`full_sync_interval_ms`).
const ANTI_ENTROPY_INTERVAL: Duration = Duration::from_secs(60);
/// How soon a pass that could not reach the catalog is tried again.
const ANTI_ENTROPY_RETRY: Duration = Duration::from_secs(5);
/// How long a client agent waits for one server's answer about its node's entries.
const NODE_ENTRIES_TIMEOUT: Duration = Duration::from_secs(5);

/// Loads the agent's services and checks from the data dir. Damaged state is an error naming the key,
/// never an empty agent.
pub fn load_local_state(store: &dyn Store) -> anyhow::Result<LocalState> {
    match store.get(Space::Agent, KEY_LOCAL_STATE).context("reading the agent's services")? {
        None => Ok(LocalState::new()),
        Some(bytes) => LocalState::decode(&bytes)
            .map_err(|e| anyhow::anyhow!("corrupt agent state in the data dir (agent/local_state): {e}")),
    }
}

impl<E: crate::env::Env> Node<E> {
    /// Applies `change` to the local state and persists it (synced) before returning what it returned.
    /// Nothing changes if `change` fails. The check runner is told to catch up.
    pub fn change_local<T>(&self, change: impl FnOnce(&mut LocalState) -> Result<T, String>) -> Result<T, String> {
        let mut local = self.local.lock().expect("local state lock");
        let mut next = local.clone();
        let value = change(&mut next)?;
        let store = self.env.store();
        store
            .write(vec![WriteOp::Put(Space::Agent, KEY_LOCAL_STATE.to_vec(), codec::encode(&next))])
            .and_then(|()| store.sync())
            .map_err(|e| format!("cannot persist agent state: {e}"))?;
        *local = next;
        self.checks.local_changed.notify_one();
        Ok(value)
    }

    /// Pushes `commands` to the catalog; a failure is logged and left to anti-entropy, which is told to
    /// run its full pass soon (`ANTI_ENTROPY_RETRY`).
    pub async fn push_to_catalog(&self, commands: Vec<Command>) -> bool {
        for command in commands {
            match self.write_as(command, self.agent_authority()).await {
                Err(e) => {
                    tracing::warn!(target: "conclave::event", error = %e, "catalog sync deferred to anti-entropy");
                    self.catalog_sync_failed.notify_one();
                    return false;
                }
                Ok((_, Response::Denied(why))) => {
                    tracing::warn!(
                        target: "conclave::acl",
                        error = %why,
                        "catalog sync refused: set an agent token (acl.tokens.agent or /v1/agent/token/agent) \
                         that may write this node and its services"
                    );
                    return false;
                }
                Ok(_) => {}
            }
        }
        true
    }

    /// What the catalog lacks or holds in excess of the local state under this node: registrations to
    /// push, and deregistrations of entries the agent no longer has. A server reads its own catalog; a
    /// client agent asks a server (an error when none answers, and the pass is tried again).
    pub async fn local_sync_commands(&self) -> Result<Vec<Command>, String> {
        let reserved_services: &[&str] = if self.config.server { &["consul"] } else { &[] };
        let reserved = Reserved { service_ids: reserved_services, check_ids: &[SERF_HEALTH_CHECK_ID] };
        let node = self.node_spec();
        if self.config.server {
            let local = self.local.lock().expect("local state lock").clone();
            let state = self.state.read();
            return Ok(sync_plan(&local, &state.catalog().of_node(&node.node), &node, reserved));
        }
        let entries = self.fetch_node_entries(&node.node).await?;
        let local = self.local.lock().expect("local state lock").clone();
        Ok(sync_plan(&local, &entries, &node, reserved))
    }

    /// A full anti-entropy pass: brings the catalog's entries under this node in line with the local
    /// state. False when the pass could not finish (it is left to the next one).
    pub async fn sync_all(&self) -> bool {
        match self.local_sync_commands().await {
            Ok(commands) => self.push_to_catalog(commands).await,
            Err(e) => {
                tracing::warn!(target: "conclave::event", error = %e, "catalog sync deferred: cannot read this node's catalog entries");
                false
            }
        }
    }

    /// A client agent: the catalog's entries under `name`, from the first server that answers.
    async fn fetch_node_entries(&self, name: &str) -> Result<NodeEntries, String> {
        let request = Request::NodeEntries { node: name.to_string(), token: self.agent_secret() };
        let servers = self.known_servers.lock().expect("known servers lock").len().max(1);
        let mut last_error = "No known Consul servers".to_string();
        for _ in 0..servers {
            let Some(addr) = self.pick_server().and_then(|a| a.parse().ok()) else { break };
            self.count_client_rpc();
            match self.pool.call(addr, &request, NODE_ENTRIES_TIMEOUT).await {
                Ok(Reply::NodeEntries(Ok(entries))) => return Ok(entries),
                Ok(Reply::NodeEntries(Err(why))) => last_error = why,
                Ok(other) => last_error = format!("unexpected reply from {addr}: {other:?}"),
                Err(e) => last_error = format!("rpc error: {e}"),
            }
        }
        Err(last_error)
    }

    /// The registrations of `service_ids` (`""`: the node's own checks) the catalog does not hold as the
    /// agent has them: what an API call that changed those services pushes, without a pass over the rest.
    pub fn service_sync_commands(&self, service_ids: &BTreeSet<String>) -> Vec<Command> {
        let local = self.local.lock().expect("local state lock");
        let node = self.node_spec();
        let state = self.state.read();
        sync_plan_for(&local, &state.catalog().of_node(&node.node), &node, service_ids)
    }

    /// Pushes the registrations of `service_ids` (see `service_sync_commands`).
    pub async fn push_services(&self, service_ids: &[&str]) -> bool {
        let ids = service_ids.iter().map(|id| id.to_string()).collect();
        self.push_to_catalog(self.service_sync_commands(&ids)).await
    }

    /// The registrations of the services whose checks changed since the last call.
    fn dirty_sync_commands(&self) -> Vec<Command> {
        self.service_sync_commands(&self.checks.take_dirty())
    }
}

/// Pushes the whole local state at start and then on a cluster-size-scaled interval, and the services
/// whose checks changed as soon as the check runner marks them.
pub async fn anti_entropy<E: crate::env::Env>(node: Arc<Node<E>>) {
    let first = Duration::from_secs(1);
    let mut next_full = tokio::time::Instant::now() + first + node.jitter(first / 4);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next_full) => {
                let pushed = node.sync_all().await;
                let nodes = node.state.read().nodes().len();
                let base_ms = ANTI_ENTROPY_INTERVAL.as_millis() as u64;
                let wait = match pushed {
                    true => Duration::from_millis(full_sync_interval_ms(base_ms, nodes)),
                    false => ANTI_ENTROPY_RETRY,
                };
                next_full = tokio::time::Instant::now() + wait + node.jitter(wait / 4);
            }
            _ = node.checks.sync_wanted.notified() => {
                node.push_to_catalog(node.dirty_sync_commands()).await;
            }
            _ = node.catalog_sync_failed.notified() => {
                next_full = next_full.min(tokio::time::Instant::now() + ANTI_ENTROPY_RETRY);
            }
        }
    }
}

/// On a server: the catalog's entries under `name` after a read barrier (a stale answer would hide a
/// registration the agent must remove), for a token that may read the node.
pub async fn serve_node_entries<E: Env>(node: &Node<E>, name: &str, token: &str) -> Result<NodeEntries, String> {
    if !node.config.server {
        return Err("client agents hold no catalog".to_string());
    }
    if node.config.acl.enabled {
        let identity = node.resolve_token(token).await.map_err(|e| e.to_string())?;
        if !identity.authorizer(node.config.acl.default_allow).allows(Resource::Node, name, Need::Read) {
            return Err(format!("Permission denied: token lacks node:read on {name:?}"));
        }
    }
    node.read_barrier().await.map_err(|e| e.to_string())?;
    Ok(node.state.read().catalog().node_entries(name))
}
