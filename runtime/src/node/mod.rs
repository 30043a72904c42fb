//! The node driver: the one async program that runs a Conclave node — identity, Raft over the Env's
//! store and network, the RPC server, server discovery and bootstrap, gossip, checks, anti-entropy,
//! sessions, forwarding and self-registration in the catalog. It has no HTTP, DNS or CLI: those faces
//! sit above it and call its methods (`agent/` starts both). It is generic over the `Env`: the
//! `conclave` binary runs it on tokio + fjall, the simulator on turmoil, with no other difference.

pub mod acl;
pub mod admission;
pub mod agent_state;
pub mod auto_encrypt;
pub mod autopilot;
pub mod bootstrap;
pub mod checks;
pub mod disk_watchdog;
pub mod events;
pub mod forward;
pub mod gauges;
pub mod gossip;
pub mod identity;
pub mod keyring_ops;
pub mod leave;
pub mod raft_recover;
pub mod requests;
pub mod rpc_server;
pub mod self_register;
pub mod sessions;
pub mod step_down;
pub mod tombstone_gc;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use openraft::ServerState;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::NodeConfig;
use crate::env::Env;
use crate::raft::disk_syncs::DiskSyncs;
use crate::raft::log_store::LogStore;
use crate::raft::messages::ServerInfo;
use crate::raft::network::{Network, PeerAddresses};
use crate::raft::seeded_runtime::seed_election_rng;
use crate::raft::state_machine::{SharedState, StateMachine};
use crate::raft::{NodeId, Raft};
use crate::rpc::link::Link;
use crate::rpc::pool::RpcPool;

/// A running node: what every task of the driver and every HTTP handler shares.
pub struct Node<E: Env> {
    pub config: NodeConfig,
    pub env: E,
    /// Consul's node ID (a UUID), kept in the data dir.
    pub node_id: String,
    /// The Raft ID, derived from `node_id`.
    pub raft_id: NodeId,
    /// Raft, on servers only: a client agent keeps no Raft state and forwards to servers.
    pub raft: Option<Raft>,
    /// How a server answers the API requests client agents forward (installed by the HTTP face).
    pub forwarded_request_handler: std::sync::OnceLock<Arc<dyn forward::ForwardedRequestHandler>>,
    /// Rotates the server a client agent forwards to.
    pub next_server: std::sync::atomic::AtomicUsize,
    pub state: Arc<SharedState>,
    /// Connections to servers' RPC port (TLS when configured).
    pub pool: Arc<RpcPool<E>>,
    /// Connections to agents' LAN port (discovery, keyring operations; sealed under the gossip key).
    pub lan_pool: Arc<RpcPool<E>>,
    /// TLS contexts and gossip keyrings.
    pub security: crate::security::Security,
    /// Servers met through discovery, by Raft ID.
    pub known_servers: Mutex<BTreeMap<NodeId, ServerInfo>>,
    /// Where each server answers now (from discovery), shared with the Raft network.
    pub peer_addresses: Arc<PeerAddresses>,
    /// Servers (Raft ID, RPC address) whose TLS identity this node checked by dialling them.
    pub verified_servers: Mutex<std::collections::BTreeSet<(NodeId, String)>>,
    /// The node's own rng for jitter (blocking-query waits, retry intervals).
    pub rng: Mutex<ChaCha8Rng>,
    /// When this follower last heard from its leader (for `X-Consul-LastContact`).
    pub last_leader_contact: Mutex<Option<tokio::time::Instant>>,
    /// The services and checks registered on this agent.
    pub local: Mutex<conclave_core::agent::LocalState>,
    /// Servers the leader is adding to the Raft configuration now (`bootstrap::admit_alive_servers`).
    pub servers_being_admitted: Mutex<std::collections::BTreeSet<NodeId>>,
    /// Told when a push to the catalog failed: anti-entropy then runs its full pass soon.
    pub catalog_sync_failed: tokio::sync::Notify,
    /// Notified by `/v1/agent/leave`: the driver stops.
    pub shutdown: tokio::sync::Notify,
    /// The leader's session TTL deadlines.
    pub session_timers: sessions::SessionTimers,
    /// The checks this agent runs.
    pub checks: checks::CheckRunners,
    /// LAN gossip: the member list and the way to join or leave.
    pub gossip: gossip::GossipHandle,
    /// The agent's ACL tokens and its cache of resolved tokens.
    pub acl: acl::AclAgent,
    /// The user events this agent recorded (`/v1/event/list`).
    pub events: events::UserEvents,
    /// The node's metrics (`/v1/agent/metrics` and the configured sinks).
    pub telemetry: crate::telemetry::Telemetry,
    /// The leader's autopilot: its last observation of the servers.
    pub autopilot: autopilot::AutopilotView,
    /// The Raft store's durable syncs in flight (the disk watchdog reads them).
    pub disk_syncs: Arc<DiskSyncs>,
    /// Raised while this leader hands over (stalled disk, leadership transfer); shared with the network.
    pub fence: Arc<crate::raft::leader_fence::LeaderFence>,
}

impl<E: Env> Node<E> {
    pub fn self_info(&self) -> ServerInfo {
        ServerInfo {
            raft_id: self.raft_id,
            node_name: self.config.node_name.clone(),
            rpc_addr: self.config.rpc_addr().to_string(),
            datacenter: self.config.datacenter.clone(),
            bootstrap_expect: self.config.bootstrap_expect,
            server: self.config.server,
        }
    }

    /// The leader this node knows of: its Raft ID and RPC address.
    pub fn leader(&self) -> Option<(NodeId, Option<String>)> {
        let metrics = self.raft.as_ref()?.metrics();
        let metrics = metrics.borrow();
        let leader = metrics.current_leader?;
        if leader == self.raft_id && self.fence.is_raised() {
            return None; // handing over: no longer a leader to send anyone to
        }
        let learnt = self.peer_addresses.get(leader).map(|addr| addr.to_string());
        let addr = learnt.or_else(|| metrics.membership_config.membership().get_node(&leader).map(|n| n.addr.clone()));
        Some((leader, addr))
    }

    /// Whether this server leads and serves as leader: a leader behind its fence (handing over) does not.
    pub fn is_leader(&self) -> bool {
        !self.fence.is_raised()
            && self.raft.as_ref().is_some_and(|raft| raft.metrics().borrow().state == ServerState::Leader)
    }

    /// Whether `id` (hex, as `/v1/operator/raft/configuration` lists `ID`, with or without `0x`) names
    /// the server with Raft ID `raft_id`.
    pub fn server_id_matches(&self, raft_id: NodeId, id: &str) -> bool {
        u64::from_str_radix(id.trim().trim_start_matches("0x"), 16).is_ok_and(|parsed| parsed == raft_id)
    }

    /// Whether Raft has a membership (bootstrapped, or restored from the data dir).
    pub fn cluster_formed(&self) -> bool {
        let Some(raft) = &self.raft else { return false };
        raft.metrics().borrow().membership_config.membership().voter_ids().next().is_some()
    }

    /// The RPC addresses of the voters, in Raft ID order (`/v1/status/peers`).
    pub fn peers(&self) -> Vec<String> {
        let Some(raft) = &self.raft else { return Vec::new() };
        let metrics = raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        membership.voter_ids().filter_map(|id| membership.get_node(&id).map(|n| n.addr.clone())).collect()
    }

    /// Milliseconds since the leader was last heard from; 0 on the leader itself.
    pub fn last_contact_ms(&self) -> u64 {
        if self.is_leader() {
            return 0;
        }
        match *self.last_leader_contact.lock().expect("contact lock") {
            Some(at) => at.elapsed().as_millis() as u64,
            None => 0,
        }
    }

    pub fn jitter(&self, max: std::time::Duration) -> std::time::Duration {
        use rand::Rng;
        if max.is_zero() {
            return max;
        }
        let nanos = self.rng.lock().expect("rng lock").gen_range(0..max.as_nanos() as u64);
        std::time::Duration::from_nanos(nanos)
    }
}

fn raft_config(config: &NodeConfig) -> anyhow::Result<openraft::Config> {
    let timings = &config.raft;
    let raft = openraft::Config {
        cluster_name: format!("conclave-{}", config.datacenter),
        heartbeat_interval: timings.heartbeat_interval.as_millis() as u64,
        election_timeout_min: timings.election_timeout_min.as_millis() as u64,
        election_timeout_max: timings.election_timeout_max.as_millis() as u64,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(timings.snapshot_after_entries),
        max_in_snapshot_log_to_keep: timings.trailing_log_entries,
        ..Default::default()
    };
    Ok(raft.validate()?)
}

/// Everything that must succeed before the node reports itself started.
pub async fn start_node<E: Env>(env: E, config: NodeConfig) -> anyhow::Result<Arc<Node<E>>> {
    seed_election_rng(env.rng_seed());
    let store = env.store();
    let node_id = identity::load_or_create_node_id(&*store, env.rng_seed(), config.node_id.as_deref())?;
    let raft_id = identity::raft_id_of(&node_id);
    let local = agent_state::load_local_state(&*store)?;
    let persisted_tokens = acl::load_persisted_tokens(&*store, config.acl.enable_token_persistence)?;
    let acl = acl::AclAgent::new(&config.acl.tokens, persisted_tokens);
    let state = SharedState::new();
    let state_machine = StateMachine::open(store.clone(), state.clone(), &config.node_name)?;
    let security =
        crate::security::Security::load(&config, store.clone(), env.rng_seed()).map_err(|e| anyhow::anyhow!(e))?;
    let pool = Arc::new(RpcPool::new(env.clone(), Link::Rpc(security.rpc.clone())));
    let lan_pool = Arc::new(RpcPool::new(env.clone(), Link::Lan(security.gossip.clone())));
    let peer_addresses = Arc::new(PeerAddresses::default());
    let disk_syncs = DiskSyncs::new();
    let fence = Arc::new(crate::raft::leader_fence::LeaderFence::default());
    let raft = if config.server {
        let raft = Raft::new(
            raft_id,
            Arc::new(raft_config(&config)?),
            Network::new(pool.clone(), peer_addresses.clone(), fence.clone()),
            LogStore::new(store, disk_syncs.clone()).skipping_append_sync(config.faults.skip_log_fsync),
            state_machine,
        )
        .await
        .context("starting raft")?;
        Some(raft)
    } else {
        None
    };
    tracing::info!(target: "conclave::event", node = %config.node_name, %node_id, raft_id, "node started");
    let rng = Mutex::new(ChaCha8Rng::seed_from_u64(env.rng_seed() ^ 0x6a69_7474_6572)); // "jitter"
    let faults = config.faults;
    let clock = env.clone();
    let telemetry = crate::telemetry::Telemetry::new(&config.telemetry, Box::new(move || clock.unix_time_ms()))
        .map_err(|e| anyhow::anyhow!(e))?;
    let node = Arc::new(Node {
        config,
        env,
        node_id,
        raft_id,
        raft,
        forwarded_request_handler: std::sync::OnceLock::new(),
        next_server: std::sync::atomic::AtomicUsize::new(0),
        state,
        pool,
        lan_pool,
        security,
        known_servers: Mutex::new(BTreeMap::new()),
        peer_addresses,
        verified_servers: Mutex::new(std::collections::BTreeSet::new()),
        rng,
        last_leader_contact: Mutex::new(None),
        local: Mutex::new(local),
        shutdown: tokio::sync::Notify::new(),
        session_timers: sessions::SessionTimers::new(faults.session_ttl_early),
        checks: checks::CheckRunners::default(),
        catalog_sync_failed: tokio::sync::Notify::new(),
        servers_being_admitted: Mutex::new(std::collections::BTreeSet::new()),
        gossip: gossip::GossipHandle::default(),
        acl,
        events: events::UserEvents::default(),
        telemetry,
        autopilot: autopilot::AutopilotView::default(),
        disk_syncs,
        fence,
    });
    load_config_services(&node).map_err(|e| anyhow::anyhow!(e))?;
    Ok(node)
}

/// Binds a TCP listener, naming what it is for in the error.
pub async fn bind<E: Env>(env: &E, addr: SocketAddr, what: &str) -> anyhow::Result<E::Listener> {
    env.bind_tcp(addr).await.with_context(|| format!("cannot listen for {what} on {addr}"))
}

/// The sockets of the node's own protocols: server RPC, LAN discovery, LAN and WAN gossip.
pub struct NodeSockets<E: Env> {
    rpc: Option<E::Listener>,
    lan: E::Listener,
    gossip_lan: E::Datagram,
    gossip_wan: Option<E::Datagram>,
}

/// Binds every port of the node's own protocols; an address in use is an error naming it.
pub async fn bind_sockets<E: Env>(node: &Node<E>) -> anyhow::Result<NodeSockets<E>> {
    let bind_any = |port| SocketAddr::new(node.config.bind_addr, port);
    // Only servers take server RPC; client agents reach servers, not the other way round.
    let rpc = match node.config.server {
        true => Some(bind(&node.env, bind_any(node.config.ports.server), "server RPC").await?),
        false => None,
    };
    let lan = bind(&node.env, node.config.lan_addr(), "LAN discovery").await?;
    let lan_addr = node.config.lan_addr();
    let gossip_lan =
        node.env.bind_udp(lan_addr).await.with_context(|| format!("cannot listen for gossip on {lan_addr}/udp"))?;
    let wan_addr = bind_any(node.config.ports.serf_wan);
    let gossip_wan = match node.config.server {
        true => Some(
            node.env
                .bind_udp(wan_addr)
                .await
                .with_context(|| format!("cannot listen for WAN gossip on {wan_addr}/udp"))?,
        ),
        false => None,
    };
    Ok(NodeSockets { rpc, lan, gossip_lan, gossip_wan })
}

/// Spawns the driver's tasks on the bound sockets; they run until the runtime stops.
pub fn spawn_tasks<E: Env>(node: &Arc<Node<E>>, sockets: NodeSockets<E>) {
    if let Some(listener) = sockets.rpc {
        tokio::spawn(rpc_server::serve(node.clone(), listener, rpc_server::Port::Rpc));
    }
    tokio::spawn(rpc_server::serve(node.clone(), sockets.lan, rpc_server::Port::Lan));
    tokio::spawn(gossip::run(node.clone(), sockets.gossip_lan, gossip::Pool::Lan));
    if let Some(socket) = sockets.gossip_wan {
        tokio::spawn(gossip::run(node.clone(), socket, gossip::Pool::Wan));
    }
    tokio::spawn(log_leadership_changes(node.clone()));
    tokio::spawn(gauges::run(node.clone()));
    tokio::spawn(bootstrap::run(node.clone()));
    tokio::spawn(self_register::run(node.clone()));
    tokio::spawn(auto_encrypt::run(node.clone()));
    tokio::spawn(agent_state::anti_entropy(node.clone()));
    tokio::spawn(checks::run(node.clone()));
    if node.config.server {
        tokio::spawn(sessions::run(node.clone()));
        tokio::spawn(gossip::reconcile(node.clone()));
        tokio::spawn(autopilot::run(node.clone()));
        tokio::spawn(disk_watchdog::run(node.clone()));
        tokio::spawn(tombstone_gc::run(node.clone()));
    }
}

/// Puts the services and checks of the configuration files into the local state, replacing those the
/// files defined before (a reload); services registered through the API stay.
fn load_config_services<E: Env>(node: &Node<E>) -> Result<Vec<String>, String> {
    if node.config.config_files.is_empty() && node.config.config_dirs.is_empty() {
        return Ok(Vec::new());
    }
    let paths = crate::config::config_files(&node.config.config_dirs, &node.config.config_files)?;
    let files = crate::config::load(&paths)?;
    let node_spec = node.node_spec();
    node.change_local(|local| {
        let removed = local.forget_config_services();
        for (definition, source) in &files.services {
            let request = definition.to_register_request(&node_spec);
            let spec = request.service.clone().expect("a service definition registers a service");
            local.register_service(spec, definition.to_local_checks(), source, true)?;
        }
        for (check, service_id, _) in &files.checks {
            local.register_check(check.to_local_check(service_id))?;
        }
        Ok(removed)
    })
}

/// `conclave reload`, `/v1/agent/reload` and SIGHUP: apply the log level of the files (through the hook
/// the process installed, `env::logs`), read the services and checks again and push the changes to the
/// catalog. An unreadable level fails the reload before anything else changes.
pub async fn reload_config<E: Env>(node: &Arc<Node<E>>) -> Result<(), String> {
    crate::env::logs::reload_level()?;
    let removed = load_config_services(node)?;
    let gone: Vec<String> = {
        let local = node.local.lock().expect("local state lock");
        removed.into_iter().filter(|id| local.service(id).is_none()).collect()
    };
    let deregistrations = gone
        .iter()
        .map(|id| conclave_core::agent::LocalState::deregister_command(&node.config.node_name, Some(id), None))
        .collect();
    node.push_to_catalog(deregistrations).await;
    node.sync_all().await;
    tracing::info!(target: "conclave::event", node = %node.config.node_name, "configuration reloaded");
    Ok(())
}

/// Records leader and term changes as trace events (the simulator hashes them).
async fn log_leadership_changes<E: Env>(node: Arc<Node<E>>) {
    let Some(raft) = &node.raft else { return };
    let mut metrics = raft.metrics();
    let mut last = (0u64, None::<NodeId>);
    let mut last_state = ServerState::Learner;
    loop {
        let (now, state) = {
            let m = metrics.borrow_and_update();
            ((m.current_term, m.current_leader), m.state)
        };
        if state != last_state {
            gauges::count_state_change(&node, state);
            last_state = state;
        }
        if now != last {
            tracing::info!(target: "conclave::event", node = %node.config.node_name, term = now.0, leader = ?now.1, "leadership");
            last = now;
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
