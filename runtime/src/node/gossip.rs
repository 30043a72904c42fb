//! Gossip on the node: the driver of `conclave_core::gossip::Membership` over the Env's UDP sockets, with
//! timers on `tokio::time` — the LAN pool on the serf LAN port (8301) on every agent, and on servers the
//! WAN pool on the serf WAN port (8302), where servers are named `node.dc` as in Consul. The LAN pool joins
//! the `-join` addresses and, with `-rejoin`, the members remembered in the data dir (retrying every
//! `retry_interval` until another member answers); a server WAN-joins the servers it meets on the LAN.
//! Servers met through gossip are greeted over the LAN port's TCP side, which is how servers find each
//! other for `-bootstrap-expect` and client agents find servers. The member lists back `/v1/agent/members`
//! (`?wan=1`) and `conclave members`; on the leader, `reconcile` turns the LAN list into the catalog as
//! Consul does: an alive member's `serfHealth` passes, a failed member's goes critical (and is reaped after
//! `FAILED_REAP_AFTER`), a member that left is deregistered, and a server that left leaves Raft.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conclave_core::catalog::{CheckSpec, CheckStatus, DeregisterRequest, NodeSpec, RegisterRequest};
use conclave_core::gossip::{
    GossipAction, GossipConfig, GossipTimer, Member, MemberEvent, MemberStatus, Membership, NodeId, Tags,
};
use conclave_core::state::Command;
use openraft::ChangeMembers;
use tokio::sync::mpsc;

use super::self_register::SERF_HEALTH_CHECK_ID;
use super::Node;
use crate::env::{Datagram, Env, Space, WriteOp};
use crate::security::keyring::{Channel, KeyPool};
use conclave_core::catalog::CatalogCommand;

/// Largest datagram read from the gossip socket.
const DATAGRAM_BYTES_MAX: usize = 65_536;
/// How often the leader compares the member list with the catalog.
const RECONCILE_INTERVAL: Duration = Duration::from_secs(1);
/// How long a leaving node keeps gossiping so its leave reaches the others.
pub const LEAVE_PROPAGATION: Duration = Duration::from_secs(1);
const KEY_GENERATION: &[u8] = b"gossip_generation";
/// Consul's `serfHealth` outputs.
const ALIVE_OUTPUT: &str = "Agent alive and reachable";
const FAILED_OUTPUT: &str = "Agent not live or unreachable";

/// Consul's `reconnect_timeout`: a failed member is removed from the catalog after this long.
pub const FAILED_REAP_AFTER: Duration = Duration::from_secs(72 * 3600);
const KEY_LAN_MEMBERS: &[u8] = b"gossip_lan_members";

/// Which gossip pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    Lan,
    Wan,
}

impl Pool {
    /// The `network` label of its metrics.
    pub fn network(self) -> &'static str {
        match self {
            Pool::Lan => "lan",
            Pool::Wan => "wan",
        }
    }

    /// The keyring the pool's traffic is sealed under.
    pub fn keys(self) -> KeyPool {
        match self {
            Pool::Lan => KeyPool::Lan,
            Pool::Wan => KeyPool::Wan,
        }
    }
}

/// Commands from the API to a gossip task.
pub enum GossipCommand {
    Join(SocketAddr, tokio::sync::oneshot::Sender<Result<(), String>>),
    Leave(tokio::sync::oneshot::Sender<()>),
    /// Fire a user event (its ID, name, payload and filters set); the answer says whether gossip took it.
    UserEvent(conclave_core::gossip::UserEvent, tokio::sync::oneshot::Sender<Result<(), String>>),
}

/// One pool as the rest of the node sees it.
#[derive(Default)]
struct PoolHandle {
    /// The member list as of the last gossip input, by name.
    members: Mutex<BTreeMap<String, Member>>,
    commands: Mutex<Option<mpsc::Sender<GossipCommand>>>,
}

/// What the rest of the node sees of gossip.
#[derive(Default)]
pub struct GossipHandle {
    lan: PoolHandle,
    wan: PoolHandle,
    /// When the leader first saw each failed member failed (for reaping), by name.
    failed_since: Mutex<BTreeMap<String, tokio::time::Instant>>,
}

impl GossipHandle {
    fn pool(&self, pool: Pool) -> &PoolHandle {
        match pool {
            Pool::Lan => &self.lan,
            Pool::Wan => &self.wan,
        }
    }

    /// The LAN member list.
    pub fn members(&self) -> Vec<Member> {
        self.members_of(Pool::Lan)
    }

    pub fn members_of(&self, pool: Pool) -> Vec<Member> {
        self.pool(pool).members.lock().expect("members lock").values().cloned().collect()
    }

    /// Sends `command` to the LAN gossip task; false if gossip is not running.
    pub async fn send(&self, command: GossipCommand) -> bool {
        self.send_to(Pool::Lan, command).await
    }

    pub async fn send_to(&self, pool: Pool, command: GossipCommand) -> bool {
        let sender = self.pool(pool).commands.lock().expect("commands lock").clone();
        match sender {
            Some(sender) => sender.send(command).await.is_ok(),
            None => false,
        }
    }
}

/// The LAN addresses remembered from the last run (for `-rejoin`).
fn remembered_members<E: Env>(node: &Node<E>) -> Vec<SocketAddr> {
    let stored = node.env.store().get(Space::Agent, KEY_LAN_MEMBERS).ok().flatten().unwrap_or_default();
    String::from_utf8_lossy(&stored).split(',').filter_map(|a| a.parse().ok()).collect()
}

fn remember_members<E: Env>(node: &Node<E>, addrs: &BTreeSet<SocketAddr>) {
    let text = addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",");
    let store = node.env.store();
    if let Err(e) = store.write(vec![WriteOp::Put(Space::Agent, KEY_LAN_MEMBERS.to_vec(), text.into_bytes())]) {
        tracing::debug!(error = %e, "cannot remember gossip members");
    }
}

/// The generation of this run of the node: one more than the last, kept in the data dir, so that peers
/// tell a restarted node from the life that died.
fn next_generation<E: Env>(node: &Node<E>) -> u32 {
    let store = node.env.store();
    let last = store
        .get(Space::Agent, KEY_GENERATION)
        .ok()
        .flatten()
        .and_then(|bytes| bytes.try_into().ok().map(u32::from_be_bytes))
        .unwrap_or(0);
    let next = last.wrapping_add(1);
    let written = store.write(vec![WriteOp::Put(Space::Agent, KEY_GENERATION.to_vec(), next.to_be_bytes().to_vec())]);
    if let Err(e) = written.and_then(|()| store.sync()) {
        tracing::warn!(error = %e, "cannot persist the gossip generation");
    }
    next
}

fn identity<E: Env>(node: &Node<E>, generation: u32, pool: Pool) -> NodeId {
    let config = &node.config;
    let tags = match config.server {
        true => Tags::server(&config.datacenter, config.ports.server, config.bootstrap_expect.min(255) as u8),
        false => Tags::client(&config.datacenter),
    };
    match pool {
        Pool::Lan => NodeId::new(
            &config.node_name,
            SocketAddr::new(config.advertise_addr, config.ports.serf_lan),
            generation,
            tags,
        ),
        Pool::Wan => {
            let name = format!("{}.{}", config.node_name, config.datacenter);
            NodeId::new(&name, SocketAddr::new(config.advertise_addr, config.ports.serf_wan), generation, tags)
        }
    }
}

/// Where a pool first looks for members.
fn join_targets<E: Env>(node: &Node<E>, pool: Pool) -> Vec<SocketAddr> {
    match pool {
        Pool::Lan => {
            let mut targets = node.config.join.clone();
            if node.config.rejoin {
                targets.extend(remembered_members(node));
            }
            targets
        }
        // Servers WAN-join the servers they meet on the LAN.
        Pool::Wan => node
            .gossip
            .members_of(Pool::Lan)
            .iter()
            .filter(|m| m.tags.rpc_port != 0 && m.status == MemberStatus::Alive)
            .map(|m| SocketAddr::new(m.addr.ip(), node.config.ports.serf_wan))
            .collect(),
    }
}

/// Runs one gossip pool until the node stops or leaves it. `socket` is bound on the pool's port.
pub async fn run<E: Env>(node: Arc<Node<E>>, socket: E::Datagram, pool: Pool) {
    let generation = match pool {
        Pool::Lan => next_generation(&node),
        Pool::Wan => 1,
    };
    let (config, salt) = match pool {
        Pool::Lan => (GossipConfig::lan(), 0x006c_616e),
        Pool::Wan => (GossipConfig::wan(), 0x0077_616e),
    };
    let seed = node.env.rng_seed() ^ 0x676f_7373_6970 ^ salt; // "gossip"
    let mut membership = Membership::new(identity(&node, generation, pool), config, seed);
    // The agent lists itself from the start, as Consul's does, not only after its first gossip round.
    publish(&node, &membership, pool);
    let (sender, mut commands) = mpsc::channel(16);
    *node.gossip.pool(pool).commands.lock().expect("commands lock") = Some(sender);
    let mut remembered = BTreeSet::new();
    let socket = Arc::new(socket);
    let started = tokio::time::Instant::now();
    let now_ms = move || started.elapsed().as_millis() as u64;
    let mut timers: BTreeMap<(u64, u64), GossipTimer> = BTreeMap::new();
    let mut timer_seq = 0u64;
    let mut buf = vec![0u8; DATAGRAM_BYTES_MAX];
    let mut next_join = tokio::time::Instant::now();
    loop {
        let mut actions = Vec::new();
        if membership.active_len() == 0 && tokio::time::Instant::now() >= next_join {
            for addr in join_targets(&node, pool) {
                if addr != membership.identity().addr() {
                    actions.extend(membership.join(addr, now_ms()).unwrap_or_default());
                }
            }
            next_join = tokio::time::Instant::now() + node.config.retry_interval;
        }
        let next_timer = timers.keys().next().map(|&(at, _)| started + Duration::from_millis(at));
        // Joining is retried only while alone; otherwise only timers wake the loop.
        let retry_join = (membership.active_len() == 0).then_some(next_join);
        let idle = tokio::time::Instant::now() + Duration::from_secs(3600);
        let wake = [next_timer, retry_join].into_iter().flatten().min().unwrap_or(idle);
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, from)) => {
                    node.telemetry.counter("memberlist.udp.received", len as u64, &[("network", pool.network())]);
                    if let Some(packet) = node.security.gossip.unwrap(pool.keys(), Channel::Datagram, &buf[..len], from) {
                        actions.extend(membership.handle_packet(from, &packet, now_ms()));
                    }
                }
                Err(e) => tracing::debug!(error = %e, "gossip receive failed"),
            },
            _ = tokio::time::sleep_until(wake) => {
                let now = now_ms();
                while let Some(entry) = timers.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    let timer = entry.remove();
                    actions.extend(membership.handle_timer(timer, now));
                }
            }
            command = commands.recv() => match command {
                Some(GossipCommand::Join(addr, reply)) => {
                    let result = membership.join(addr, now_ms()).map_err(|e| e.to_string());
                    let _ = reply.send(result.as_ref().map(|_| ()).map_err(Clone::clone));
                    actions.extend(result.unwrap_or_default());
                }
                Some(GossipCommand::UserEvent(event, reply)) => {
                    let result = membership.user_event(event, now_ms()).map_err(|e| e.to_string());
                    let _ = reply.send(result.as_ref().map(|_| ()).map_err(Clone::clone));
                    actions.extend(result.unwrap_or_default());
                }
                Some(GossipCommand::Leave(reply)) => {
                    actions.extend(membership.leave(now_ms()).unwrap_or_default());
                    perform(&node, &socket, pool, actions, &mut timers, &mut timer_seq).await;
                    publish(&node, &membership, pool);
                    tokio::time::sleep(LEAVE_PROPAGATION).await;
                    let _ = reply.send(());
                    return;
                }
                None => return,
            },
        }
        perform(&node, &socket, pool, actions, &mut timers, &mut timer_seq).await;
        publish(&node, &membership, pool);
        if pool == Pool::Lan {
            let alive: BTreeSet<SocketAddr> = membership
                .members()
                .filter(|m| m.status == MemberStatus::Alive && m.name != node.config.node_name)
                .map(|m| m.addr)
                .collect();
            if !alive.is_empty() && alive != remembered {
                remember_members(&node, &alive);
                remembered = alive;
            }
        }
    }
}

async fn perform<E: Env>(
    node: &Arc<Node<E>>,
    socket: &E::Datagram,
    pool: Pool,
    actions: Vec<GossipAction>,
    timers: &mut BTreeMap<(u64, u64), GossipTimer>,
    timer_seq: &mut u64,
) {
    for action in actions {
        match action {
            GossipAction::Send { to, bytes } => {
                let packet = node.security.gossip.wrap(pool.keys(), Channel::Datagram, &bytes);
                match socket.send_to(&packet, to).await {
                    Ok(_) => node.telemetry.counter(
                        "memberlist.udp.sent",
                        packet.len() as u64,
                        &[("network", pool.network())],
                    ),
                    Err(e) => tracing::debug!(%to, error = %e, "gossip send failed"),
                }
            }
            GossipAction::SetTimer { at_ms, timer } => {
                *timer_seq += 1;
                timers.insert((at_ms, *timer_seq), timer);
            }
            GossipAction::Event(event) => {
                if let MemberEvent::User(event) = event {
                    // User events are the LAN pool's, as in Consul.
                    if pool == Pool::Lan {
                        super::events::receive(node, event);
                    }
                    continue;
                }
                tracing::info!(target: "conclave::event", node = %node.config.node_name, ?event, "gossip");
                count_member_event(node, pool, &event);
                if let MemberEvent::MemberJoin(member) = &event {
                    greet_server(node, member);
                }
            }
        }
    }
}

/// A server of our datacenter joined the LAN: greet it over the LAN port's TCP side so that its Raft ID
/// and RPC address become known (bootstrap, forwarding from client agents).
fn greet_server<E: Env>(node: &Arc<Node<E>>, member: &Member) {
    let ours = member.tags.dc == node.config.datacenter && member.name != node.config.node_name;
    if member.tags.rpc_port == 0 || !ours || member.addr.port() != node.config.ports.serf_lan {
        return;
    }
    let (node, addr) = (node.clone(), member.addr);
    tokio::spawn(async move {
        if let Err(e) = super::bootstrap::hello(&node, addr).await {
            tracing::debug!(%addr, error = %e, "cannot greet a server met through gossip");
        }
    });
}

fn publish<E: Env>(node: &Node<E>, membership: &Membership, pool: Pool) {
    let members = membership.members().map(|m| (m.name.clone(), m.clone())).collect();
    *node.gossip.pool(pool).members.lock().expect("members lock") = members;
}

/// On the leader: makes the catalog's nodes and `serfHealth` checks follow the member list.
pub async fn reconcile<E: Env>(node: Arc<Node<E>>) {
    loop {
        tokio::time::sleep(RECONCILE_INTERVAL).await;
        if !node.is_leader() {
            continue;
        }
        for command in reconcile_commands(&node) {
            if let Err(e) = node.write(command).await {
                tracing::debug!(error = %e, "member reconciliation deferred");
                break;
            }
        }
        remove_left_servers(&node).await;
        super::bootstrap::admit_alive_servers(&node);
    }
}

/// Whether `name` has been failed, as this leader saw it, for longer than `FAILED_REAP_AFTER`.
fn failed_too_long<E: Env>(node: &Node<E>, name: &str) -> bool {
    let failed_since = node.gossip.failed_since.lock().expect("failed lock");
    failed_since.get(name).is_some_and(|since| since.elapsed() > FAILED_REAP_AFTER)
}

fn note_failures<E: Env>(node: &Node<E>) {
    let members = node.gossip.members();
    let mut failed_since = node.gossip.failed_since.lock().expect("failed lock");
    failed_since.retain(|name, _| members.iter().any(|m| &m.name == name && m.status == MemberStatus::Failed));
    for member in members.iter().filter(|m| m.status == MemberStatus::Failed) {
        failed_since.entry(member.name.clone()).or_insert_with(tokio::time::Instant::now);
    }
}

fn reconcile_commands<E: Env>(node: &Node<E>) -> Vec<Command> {
    note_failures(node);
    let catalog = node.state.read();
    let mut commands = Vec::new();
    for member in node.gossip.members() {
        if member.tags.dc != node.config.datacenter {
            continue;
        }
        let serf = catalog.check(&member.name, SERF_HEALTH_CHECK_ID);
        let (status, output) = match member.status {
            MemberStatus::Alive | MemberStatus::Leaving => (CheckStatus::Passing, ALIVE_OUTPUT),
            MemberStatus::Failed if failed_too_long(node, &member.name) => {
                if catalog.node(&member.name).is_some() {
                    commands.push(Command::Catalog(CatalogCommand::Deregister(DeregisterRequest {
                        node: member.name.clone(),
                        service_id: None,
                        check_id: None,
                    })));
                }
                continue;
            }
            MemberStatus::Failed => (CheckStatus::Critical, FAILED_OUTPUT),
            MemberStatus::Left => {
                if catalog.node(&member.name).is_some() {
                    commands.push(Command::Catalog(CatalogCommand::Deregister(DeregisterRequest {
                        node: member.name.clone(),
                        service_id: None,
                        check_id: None,
                    })));
                }
                continue;
            }
        };
        if serf.is_some_and(|c| c.status == status) {
            continue;
        }
        // A member the catalog does not know yet registers itself; only its health is ours to keep.
        let Some(existing) = catalog.node(&member.name) else { continue };
        commands.push(Command::Catalog(CatalogCommand::Register(RegisterRequest {
            node: NodeSpec {
                id: existing.id.clone(),
                node: existing.node.clone(),
                address: existing.address.clone(),
                datacenter: existing.datacenter.clone(),
                meta: existing.meta.clone(),
                ..NodeSpec::default()
            },
            skip_node_update: true,
            service: None,
            checks: vec![CheckSpec {
                check_id: SERF_HEALTH_CHECK_ID.to_string(),
                name: "Serf Health Status".to_string(),
                status,
                output: output.to_string(),
                ..CheckSpec::default()
            }],
        })));
    }
    commands
}

/// `force-leave` of a server: take it out of the Raft configuration (on the leader; elsewhere the
/// request is refused by Raft and only the catalog entry goes).
pub async fn remove_server_named<E: Env>(node: &Node<E>, name: &str) {
    let Some(raft) = &node.raft else { return };
    let Some(member) = node.gossip.members().into_iter().find(|m| m.name == name && m.tags.rpc_port != 0) else {
        return;
    };
    let rpc_addr = SocketAddr::new(member.addr.ip(), member.tags.rpc_port).to_string();
    let doomed: BTreeSet<u64> = {
        let metrics = raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        membership.nodes().filter(|(_, n)| n.addr == rpc_addr).map(|(id, _)| *id).collect()
    };
    if doomed.is_empty() || doomed.contains(&node.raft_id) {
        return;
    }
    if let Err(e) = raft.change_membership(ChangeMembers::RemoveVoters(doomed), false).await {
        tracing::warn!(target: "conclave::event", server = name, error = %e, "cannot remove the server from raft");
    }
}

/// A server that left on purpose leaves the Raft configuration too (a failed one stays until it comes
/// back or is force-left).
async fn remove_left_servers<E: Env>(node: &Node<E>) {
    let Some(raft) = &node.raft else { return };
    let left: BTreeSet<String> = node
        .gossip
        .members()
        .into_iter()
        .filter(|m| m.status == MemberStatus::Left && m.tags.rpc_port != 0)
        .map(|m| SocketAddr::new(m.addr.ip(), m.tags.rpc_port).to_string())
        .collect();
    if left.is_empty() {
        return;
    }
    let doomed: BTreeSet<u64> = {
        let metrics = raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        membership.nodes().filter(|(_, n)| left.contains(&n.addr)).map(|(id, _)| *id).collect()
    };
    if doomed.is_empty() || doomed.contains(&node.raft_id) {
        return;
    }
    match raft.change_membership(ChangeMembers::RemoveVoters(doomed.clone()), false).await {
        Ok(_) => {
            tracing::info!(target: "conclave::event", servers = ?doomed, "left servers removed from the raft configuration")
        }
        Err(e) => tracing::debug!(error = %e, "cannot remove left servers yet"),
    }
}

/// `serf.member.join|failed|left|update|flap` as Serf counts them, labelled with the pool.
fn count_member_event<E: Env>(node: &Node<E>, pool: Pool, event: &MemberEvent) {
    let name = match event {
        MemberEvent::MemberJoin(_) => "serf.member.join",
        MemberEvent::MemberFailed(_) => "serf.member.failed",
        MemberEvent::MemberLeave(_) => "serf.member.left",
        MemberEvent::SelfRejoined { .. } => "serf.member.flap",
        _ => return,
    };
    node.telemetry.counter(name, 1, &[("network", pool.network())]);
}
