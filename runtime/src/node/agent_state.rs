//! The agent's own services and checks on a running node: kept in `LocalState`, persisted in the data dir
//! (synced before the API answers), pushed to the catalog on every change and re-pushed by a periodic
//! anti-entropy pass, so the catalog converges on what the agent holds even after a failed push. Check
//! results reach the catalog through the same task as soon as the check runner marks them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use conclave_core::agent::anti_entropy::{full_sync_interval_ms, sync_plan, sync_plan_for, Reserved};
use conclave_core::agent::LocalState;
use conclave_core::codec;
use conclave_core::state::{Command, Response};

use super::self_register::SERF_HEALTH_CHECK_ID;
use super::Node;
use crate::env::{Space, Store, WriteOp};

const KEY_LOCAL_STATE: &[u8] = b"local_state";

/// How often the whole local state is pushed again in a cluster of up to 128 nodes (Consul's base
/// anti-entropy interval); larger clusters stretch it (`full_sync_interval_ms`).
const ANTI_ENTROPY_INTERVAL: Duration = Duration::from_secs(60);
/// How soon a pass that could not reach the catalog is tried again.
const ANTI_ENTROPY_RETRY: Duration = Duration::from_secs(5);

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

    /// Pushes `commands` to the catalog; a failure is logged and left to anti-entropy.
    pub async fn push_to_catalog(&self, commands: Vec<Command>) -> bool {
        for command in commands {
            match self.write_as(command, self.agent_authority()).await {
                Err(e) => {
                    tracing::warn!(target: "conclave::event", error = %e, "catalog sync deferred to anti-entropy");
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

    /// What the catalog this node sees lacks or holds in excess of the local state: registrations to
    /// push, and deregistrations of entries under this node the agent no longer has (a client agent,
    /// which sees no catalog, sends every registration and leaves removals to its deregistrations).
    pub fn local_sync_commands(&self) -> Vec<Command> {
        let local = self.local.lock().expect("local state lock").clone();
        let catalog = self.state.read();
        let reserved_services: &[&str] = if self.config.server { &["consul"] } else { &[] };
        let reserved = Reserved { service_ids: reserved_services, check_ids: &[SERF_HEALTH_CHECK_ID] };
        sync_plan(&local, &catalog, &self.node_spec(), reserved)
    }

    /// The registrations of `service_ids` (`""`: the node's own checks) the catalog does not hold as the
    /// agent has them: what an API call that changed those services pushes, without a pass over the rest.
    pub fn service_sync_commands(&self, service_ids: &BTreeSet<String>) -> Vec<Command> {
        let local = self.local.lock().expect("local state lock");
        let catalog = self.state.read();
        sync_plan_for(&local, &catalog, &self.node_spec(), service_ids)
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
                let pushed = node.push_to_catalog(node.local_sync_commands()).await;
                let nodes = node.state.read().nodes().len();
                let base_ms = ANTI_ENTROPY_INTERVAL.as_millis() as u64;
                let wait = match pushed {
                    true => Duration::from_millis(full_sync_interval_ms(base_ms, nodes)),
                    false => ANTI_ENTROPY_RETRY,
                };
                next_full = tokio::time::Instant::now() + wait + node.jitter(wait / 4);
            }
            _ = node.checks.sync_wanted.notified() => {
                if !node.push_to_catalog(node.dirty_sync_commands()).await {
                    next_full = next_full.min(tokio::time::Instant::now() + ANTI_ENTROPY_RETRY);
                }
            }
        }
    }
}
