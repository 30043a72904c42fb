//! `conclave operator raft recover`: the offline half of recovering from a lost quorum. Run on a stopped
//! surviving server's data dir, it makes the survivors the whole Raft configuration (see
//! `node/raft_recover.rs`); the agent is started afterwards. The online equivalent is Consul's `peers.json`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;

use crate::env::{FjallStore, Store};
use crate::node::raft_recover as recover;

#[derive(Args, Debug)]
pub struct RaftRecoverArgs {
    /// The data dir of this server; its agent must be stopped.
    #[arg(long = "data-dir")]
    pub data_dir: PathBuf,
    /// A peers.json file (Consul's format version 3) naming every surviving server, this one included.
    /// Without it this server becomes the only voter.
    #[arg(long)]
    pub peers: Option<PathBuf>,
}

pub fn run(args: RaftRecoverArgs) -> anyhow::Result<()> {
    let dir = &args.data_dir;
    // Checked before opening: opening creates a store, and an empty one would only hide a wrong path.
    if !FjallStore::exists(dir) {
        bail!("{} has no Raft state (no store/ in it): not the data dir of a Conclave server", dir.display());
    }
    let peers = match &args.peers {
        None => None,
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            Some(recover::parse_peers_json(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?)
        }
    };
    let store: Arc<dyn Store> = Arc::new(FjallStore::open(dir)?);
    let Some(node_id) = crate::node::identity::stored_node_id(&*store)? else {
        bail!("{} has no node ID: no agent has run on it, nothing to recover", dir.display());
    };
    let self_id = crate::node::identity::raft_id_of(&node_id);
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let recovered = runtime.block_on(recover::recover(store, self_id, peers))?;
    eprintln!("{}", recover::warning(&recovered));
    println!(
        "Recovered the Raft configuration of {} (node ID {node_id}) at index {}: {} voter(s). Start the agent now.",
        dir.display(),
        recovered.last_log_id.index,
        recovered.after.iter().filter(|p| p.voter).count()
    );
    Ok(())
}
