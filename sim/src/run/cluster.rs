//! The hosts of a run: each server or client agent starts through the production agent entry on a
//! simulated disk; its handle is kept so faults can find the leader and the checker can sample Raft.

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use conclave::config::{FaultSwitches, NodeConfig};
use conclave::node::Node;

use super::derive_seed;
use crate::checker::{self, History};
use crate::disk::SimDisk;
use crate::env::SimEnv;

/// How one host starts: after a delay (`bootstrap-expect`), reading the wall clock through `clock`.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct HostStart {
    pub(super) delay: Duration,
    pub(super) clock: crate::env::HostClock,
}

/// A server, or a client agent (gossip scenarios; after the servers).
pub(super) struct ServerSlot {
    pub(super) name: String,
    pub(super) disk: Arc<SimDisk>,
    pub(super) node: Rc<RefCell<Option<Arc<Node<SimEnv>>>>>,
    pub(super) crashed: bool,
}

/// What every host of a run is configured with beyond the defaults: ACLs (`acl-revocation`) and gossip
/// encryption (`gossip-key-rotation`: the same initial `encrypt` key on every host).
#[derive(Clone, Debug, Default)]
pub(super) struct HostSecurity {
    pub(super) acl: bool,
    pub(super) encrypt: Option<String>,
}

fn server_config(name: &str, names: &[String], faults: FaultSwitches, security: &HostSecurity) -> NodeConfig {
    let mut config = NodeConfig::new(name);
    config.security.encrypt.key = security.encrypt.clone();
    if security.acl {
        config.acl.enabled = true;
        config.acl.default_allow = false;
        config.acl.tokens.initial_management = crate::acl_client::ROOT_SECRET.to_string();
    }
    config.server = true;
    config.bootstrap_expect = names.len() as u32;
    config.bind_addr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    config.advertise_addr = turmoil::lookup(name);
    config.client_addr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    config.join = names.iter().map(|n| SocketAddr::new(turmoil::lookup(n.as_str()), config.ports.serf_lan)).collect();
    config.faults = faults;
    // Snapshots every few dozen entries, so each run builds snapshots, purges the log and sends
    // InstallSnapshot to a follower that crashed or was cut off (the defaults, 5000 and 1000, are never
    // reached in a run of a few hundred writes).
    config.raft.snapshot_after_entries = SIM_SNAPSHOT_AFTER_ENTRIES;
    config.raft.trailing_log_entries = SIM_TRAILING_LOG_ENTRIES;
    config
}

/// `raft_snapshot_threshold` and `raft_trailing_logs` of every simulated server.
pub const SIM_SNAPSHOT_AFTER_ENTRIES: u64 = 16;
pub const SIM_TRAILING_LOG_ENTRIES: u64 = 4;

/// A client agent: no Raft, joins the servers' LAN addresses.
fn agent_config(name: &str, servers: &[String], faults: FaultSwitches, security: &HostSecurity) -> NodeConfig {
    let mut config = server_config(name, servers, faults, security);
    config.server = false;
    config.bootstrap_expect = 0;
    config
}

/// Starts every host through the agent entry the binary uses (`conclave::agent`), on a simulated disk
/// that survives crashes; a restarted host starts again on the same disk with a fresh seed.
pub(super) fn start_hosts(
    sim: &mut turmoil::Sim<'_>,
    seed: u64,
    faults: FaultSwitches,
    security: &HostSecurity,
    all_names: &[String],
    names: &Rc<Vec<String>>,
    starts: &[HostStart],
) -> Vec<ServerSlot> {
    let mut slots = Vec::new();
    for (index, name) in all_names.iter().enumerate() {
        let disk = Arc::new(SimDisk::new());
        let registry: Rc<RefCell<Option<Arc<Node<SimEnv>>>>> = Rc::new(RefCell::new(None));
        let incarnation = Rc::new(Cell::new(0u64));
        let (host_disk, host_registry, host_names, host_name) =
            (disk.clone(), registry.clone(), names.clone(), name.clone());
        let HostStart { delay: start_delay, clock } = starts[index];
        let security = security.clone();
        sim.host(name.as_str(), move || {
            let (disk, registry, names, name, security) =
                (host_disk.clone(), host_registry.clone(), host_names.clone(), host_name.clone(), security.clone());
            let generation = incarnation.get();
            incarnation.set(generation + 1);
            async move {
                if generation == 0 && !start_delay.is_zero() {
                    tokio::time::sleep(start_delay).await;
                }
                let env = SimEnv::new(disk, derive_seed(seed, 2, (index as u64) << 16 | generation)).with_clock(clock);
                let config = match index < names.len() {
                    true => server_config(&name, &names, faults, &security),
                    false => agent_config(&name, &names, faults, &security),
                };
                let node =
                    conclave::agent::start(env, config).await.map_err(|e| format!("{name} failed to start: {e:#}"))?;
                *registry.borrow_mut() = Some(node.clone());
                conclave::agent::run(node).await.map_err(|e| format!("{name} stopped: {e:#}"))?;
                Ok(())
            }
        });
        slots.push(ServerSlot { name: name.clone(), disk, node: registry, crashed: false });
    }

    slots
}

/// Records each server's Raft term, leadership and voters whenever they change.
pub(super) fn sample_raft(slots: &[ServerSlot], now: Duration, history: &mut History) {
    for slot in slots {
        let Some(node) = slot.node.borrow().clone() else { continue };
        let Some(raft) = &node.raft else { continue };
        let (term, voters) = {
            let metrics = raft.metrics();
            let metrics = metrics.borrow();
            (metrics.current_term, metrics.membership_config.membership().voter_ids().collect::<Vec<u64>>())
        };
        let sample = checker::RaftSample {
            node: slot.name.clone(),
            at_us: now.as_micros() as u64,
            term,
            is_leader: node.is_leader(),
            voters,
        };
        let last = history.raft.iter().rev().find(|s| s.node == sample.node);
        if last.is_none_or(|l| (l.term, l.is_leader, &l.voters) != (sample.term, sample.is_leader, &sample.voters)) {
            history.raft.push(sample);
        }
    }
}
