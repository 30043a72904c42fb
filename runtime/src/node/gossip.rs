//! LAN gossip on the node: the driver of `conclave_core::gossip::Membership` over the Env's UDP socket on
//! the serf LAN port (8301), with timers on `tokio::time`. It joins the `-join` addresses (retrying every
//! `retry_interval` until another member answers), keeps a copy of the member list for the API
//! (`/v1/agent/members`, `conclave members`), and on the leader reconciles membership into the catalog as
//! Consul does: an alive member's `serfHealth` passes, a failed member's goes critical, a member that left
//! is deregistered (and a server that left is removed from the Raft configuration).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conclave_core::catalog::{CheckSpec, CheckStatus, Command, DeregisterRequest, NodeSpec, RegisterRequest};
use conclave_core::gossip::{GossipAction, GossipConfig, GossipTimer, Member, MemberStatus, Membership, NodeId, Tags};
use openraft::ChangeMembers;
use tokio::sync::mpsc;

use super::self_register::SERF_HEALTH_CHECK_ID;
use super::Node;
use crate::env::{Datagram, Env, Space, WriteOp};

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

/// Commands from the API to the gossip task.
pub enum GossipCommand {
    Join(SocketAddr, tokio::sync::oneshot::Sender<Result<(), String>>),
    Leave(tokio::sync::oneshot::Sender<()>),
}

/// What the rest of the node sees of gossip.
#[derive(Default)]
pub struct GossipHandle {
    /// The member list as of the last gossip input, by name.
    members: Mutex<BTreeMap<String, Member>>,
    commands: Mutex<Option<mpsc::Sender<GossipCommand>>>,
}

impl GossipHandle {
    pub fn members(&self) -> Vec<Member> {
        self.members.lock().expect("members lock").values().cloned().collect()
    }

    /// Sends `command` to the gossip task; false if gossip is not running.
    pub async fn send(&self, command: GossipCommand) -> bool {
        let sender = self.commands.lock().expect("commands lock").clone();
        match sender {
            Some(sender) => sender.send(command).await.is_ok(),
            None => false,
        }
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

fn identity<E: Env>(node: &Node<E>, generation: u32) -> NodeId {
    let config = &node.config;
    let tags = match config.server {
        true => Tags::server(&config.datacenter, config.ports.server, config.bootstrap_expect.min(255) as u8),
        false => Tags::client(&config.datacenter),
    };
    let addr = SocketAddr::new(config.advertise_addr, config.ports.serf_lan);
    NodeId::new(&config.node_name, addr, generation, tags)
}

/// Runs LAN gossip until the node stops. `socket` is bound on the serf LAN port.
pub async fn run<E: Env>(node: Arc<Node<E>>, socket: E::Datagram) {
    let generation = next_generation(&node);
    let seed = node.env.rng_seed() ^ 0x676f_7373_6970; // "gossip"
    let mut membership = Membership::new(identity(&node, generation), GossipConfig::lan(), seed);
    let (sender, mut commands) = mpsc::channel(16);
    *node.gossip.commands.lock().expect("commands lock") = Some(sender);
    let socket = Arc::new(socket);
    let started = tokio::time::Instant::now();
    let now_ms = move || started.elapsed().as_millis() as u64;
    let mut timers: BTreeMap<(u64, u64), GossipTimer> = BTreeMap::new();
    let mut timer_seq = 0u64;
    let mut buf = vec![0u8; DATAGRAM_BYTES_MAX];
    let mut next_join = tokio::time::Instant::now();
    loop {
        let mut actions = Vec::new();
        if membership.active_len() == 0 && tokio::time::Instant::now() >= next_join && !node.config.join.is_empty() {
            for addr in &node.config.join {
                if *addr != membership.identity().addr() {
                    actions.extend(membership.join(*addr, now_ms()).unwrap_or_default());
                }
            }
            next_join = tokio::time::Instant::now() + node.config.retry_interval;
        }
        let next_timer = timers.keys().next().map(|&(at, _)| started + Duration::from_millis(at));
        let wake =
            next_timer.unwrap_or(next_join + Duration::from_secs(3600)).min(next_join.max(tokio::time::Instant::now()));
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, from)) => actions.extend(membership.handle_packet(from, &buf[..len], now_ms())),
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
                Some(GossipCommand::Leave(reply)) => {
                    actions.extend(membership.leave(now_ms()).unwrap_or_default());
                    perform(&node, &socket, actions, &mut timers, &mut timer_seq).await;
                    publish(&node, &membership);
                    tokio::time::sleep(LEAVE_PROPAGATION).await;
                    let _ = reply.send(());
                    return;
                }
                None => return,
            },
        }
        perform(&node, &socket, actions, &mut timers, &mut timer_seq).await;
        publish(&node, &membership);
    }
}

async fn perform<E: Env>(
    node: &Node<E>,
    socket: &E::Datagram,
    actions: Vec<GossipAction>,
    timers: &mut BTreeMap<(u64, u64), GossipTimer>,
    timer_seq: &mut u64,
) {
    for action in actions {
        match action {
            GossipAction::Send { to, bytes } => {
                if let Err(e) = socket.send_to(&bytes, to).await {
                    tracing::debug!(%to, error = %e, "gossip send failed");
                }
            }
            GossipAction::SetTimer { at_ms, timer } => {
                *timer_seq += 1;
                timers.insert((at_ms, *timer_seq), timer);
            }
            GossipAction::Event(event) => {
                tracing::info!(target: "conclave::event", node = %node.config.node_name, ?event, "gossip");
            }
        }
    }
}

fn publish<E: Env>(node: &Node<E>, membership: &Membership) {
    let members = membership.members().map(|m| (m.name.clone(), m.clone())).collect();
    *node.gossip.members.lock().expect("members lock") = members;
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
    }
}

fn reconcile_commands<E: Env>(node: &Node<E>) -> Vec<Command> {
    let catalog = node.catalog.read();
    let mut commands = Vec::new();
    for member in node.gossip.members() {
        if member.tags.dc != node.config.datacenter {
            continue;
        }
        let serf = catalog.check(&member.name, SERF_HEALTH_CHECK_ID);
        let (status, output) = match member.status {
            MemberStatus::Alive | MemberStatus::Leaving => (CheckStatus::Passing, ALIVE_OUTPUT),
            MemberStatus::Failed => (CheckStatus::Critical, FAILED_OUTPUT),
            MemberStatus::Left => {
                if catalog.node(&member.name).is_some() {
                    commands.push(Command::Deregister(DeregisterRequest {
                        node: member.name.clone(),
                        service_id: None,
                        check_id: None,
                    }));
                }
                continue;
            }
        };
        if serf.is_some_and(|c| c.status == status) {
            continue;
        }
        // A member the catalog does not know yet registers itself; only its health is ours to keep.
        let Some(existing) = catalog.node(&member.name) else { continue };
        commands.push(Command::Register(RegisterRequest {
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
        }));
    }
    commands
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
