//! The agent's own services and checks on a running node: kept in `LocalState`, persisted in the data dir
//! (synced before the API answers), pushed to the catalog on every change and re-pushed by a periodic
//! anti-entropy pass, so the catalog converges on what the agent holds even after a failed push.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use conclave_core::agent::LocalState;
use conclave_core::catalog::Command;
use conclave_core::codec;

use super::Node;
use crate::env::{Space, Store, WriteOp};

const KEY_LOCAL_STATE: &[u8] = b"local_state";

/// How often the whole local state is pushed again (Consul scales this with cluster size; a fixed
/// minute is what it uses for small clusters).
const ANTI_ENTROPY_INTERVAL: Duration = Duration::from_secs(60);

/// Loads the agent's services and checks from the data dir. Damaged state is an error naming the key,
/// never an empty agent.
pub fn load_local_state(store: &dyn Store) -> anyhow::Result<LocalState> {
    match store.get(Space::Agent, KEY_LOCAL_STATE).context("reading the agent's services")? {
        None => Ok(LocalState::new()),
        Some(bytes) => codec::decode(&bytes)
            .map_err(|e| anyhow::anyhow!("corrupt agent state in the data dir (agent/local_state): {e}")),
    }
}

impl<E: crate::env::Env> Node<E> {
    /// Applies `change` to the local state and persists it (synced) before returning what it returned.
    /// Nothing changes if `change` fails.
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
        Ok(value)
    }

    /// Pushes `commands` to the catalog; a failure is logged and left to anti-entropy.
    pub async fn push_to_catalog(&self, commands: Vec<Command>) -> bool {
        for command in commands {
            if let Err(e) = self.write(command).await {
                tracing::warn!(target: "conclave::event", error = %e, "catalog sync deferred to anti-entropy");
                return false;
            }
        }
        true
    }

    /// The registrations of the local state that the catalog this node sees does not hold yet.
    pub fn local_sync_commands(&self) -> Vec<Command> {
        let commands = self.local.lock().expect("local state lock").sync_commands(&self.node_spec());
        let catalog = self.catalog.read();
        commands.into_iter().filter(|command| !in_catalog(&catalog, command)).collect()
    }
}

/// Pushes the whole local state at start and then periodically.
pub async fn anti_entropy<E: crate::env::Env>(node: Arc<Node<E>>) {
    let mut wait = Duration::from_secs(1);
    loop {
        tokio::time::sleep(wait + node.jitter(wait / 4)).await;
        let pushed = node.push_to_catalog(node.local_sync_commands()).await;
        wait = if pushed { ANTI_ENTROPY_INTERVAL } else { Duration::from_secs(5) };
    }
}

/// Whether applying `command` would change nothing in `catalog`.
fn in_catalog(catalog: &conclave_core::catalog::Catalog, command: &Command) -> bool {
    let Command::Register(request) = command else { return false };
    let node = &request.node;
    let Some(existing) = catalog.node(&node.node) else { return false };
    if existing.address != node.address || existing.id != node.id || existing.meta != node.meta {
        return false;
    }
    if let Some(spec) = &request.service {
        let Some(instance) = catalog.instance(&node.node, &spec.id) else { return false };
        let same = instance.service == spec.service
            && instance.tags == spec.tags
            && instance.address == spec.address
            && instance.port == spec.port
            && instance.meta == spec.meta
            && instance.weights == spec.weights
            && instance.tagged_addresses == spec.tagged_addresses
            && instance.enable_tag_override == spec.enable_tag_override
            && instance.kind == spec.kind;
        if !same {
            return false;
        }
    }
    let checks = catalog.node_checks(&node.node);
    request.checks.iter().all(|wanted| {
        checks.iter().any(|c| {
            c.check_id == wanted.check_id
                && c.status == wanted.status
                && c.output == wanted.output
                && c.name == wanted.name
                && c.notes == wanted.notes
                && c.service_id == wanted.service_id
                && c.definition == wanted.definition
        })
    })
}
