//! Server discovery and Raft bootstrap. Until gossip exists, a server contacts its `-join` addresses on the
//! LAN port and exchanges `Hello`s: each side learns every server the other knows. Once `-bootstrap-expect`
//! servers with the same expectation know each other, each of them initializes Raft with the same member
//! set (the `expect` lowest Raft IDs), which openraft accepts on every node because the configurations are
//! identical. A server restarted on its data dir has a membership already and skips the bootstrap. A
//! server that meets a formed cluster is added by the leader as a learner (a non-voter); the leader's
//! autopilot (`autopilot.rs`) promotes it to voter once it has been healthy long enough.
//!
//! Servers are known by Raft ID, not by address: a greeting tells where a server answers now, the Raft
//! network dials that address, and the leader rewrites the server's address in the configuration. So
//! a cluster whose servers all restart on new addresses (with `-join` naming the new ones) elects a
//! leader by itself, which is why a server that belongs to a configuration but knows no leader keeps
//! greeting its join addresses.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, ChangeMembers};

use super::Node;
use crate::env::Env;
use crate::raft::messages::{Reply, Request, ServerInfo};

/// How long one discovery exchange may take.
const HELLO_TIMEOUT: Duration = Duration::from_secs(2);

/// Answers a `Hello`: remember the sender, tell it whom we know, and let the leader add a newcomer.
/// `vouched`: the greeting came over TLS from a certificate naming a server. With TLS on outgoing RPC, a
/// server greeting that is not vouched for is believed only once dialling its RPC address over TLS
/// found that server there (so holding the gossip key alone does not make anyone a Raft voter).
pub fn handle_hello<E: Env>(node: &Arc<Node<E>>, info: ServerInfo, vouched: bool) -> Reply {
    if info.server && info.datacenter == node.config.datacenter && node.config.server {
        match trusted(node, &info, vouched) {
            true => learn_server(node, info),
            false => {
                let node = node.clone();
                tokio::spawn(async move {
                    if verify_server(&node, &info).await {
                        learn_server(&node, info);
                    }
                });
            }
        }
    }
    let mut known: Vec<ServerInfo> = node.known_servers.lock().expect("known servers lock").values().cloned().collect();
    if node.config.server {
        known.push(node.self_info());
    }
    Reply::Hello { known, cluster_formed: node.cluster_formed() }
}

/// Remembers a server of our datacenter and, on a formed cluster, has the leader add it (or record its
/// new address).
fn learn_server<E: Env>(node: &Arc<Node<E>>, info: ServerInfo) {
    remember_server(node, &info, true);
    if node.cluster_formed() {
        let configured = node.raft.as_ref().and_then(|raft| {
            raft.metrics().borrow().membership_config.membership().get_node(&info.raft_id).map(|n| n.addr.clone())
        });
        match configured {
            None => {
                tokio::spawn(admit_server(node.clone(), info));
            }
            Some(addr) if addr != info.rpc_addr && node.is_leader() => {
                tokio::spawn(update_address(node.clone(), info));
            }
            Some(_) => {}
        }
    }
}

/// Notes where a server of our datacenter answers, for discovery and for the Raft network
/// (`first_hand`: the server said so itself).
fn remember_server<E: Env>(node: &Node<E>, info: &ServerInfo, first_hand: bool) {
    if let Ok(addr) = info.rpc_addr.parse::<SocketAddr>() {
        if node.peer_addresses.learn(info.raft_id, addr, first_hand) {
            tracing::debug!(target: "conclave::rpc", server = %info.node_name, %addr, "server address learnt");
        }
    }
    node.known_servers.lock().expect("known servers lock").insert(info.raft_id, info.clone());
}

/// On the leader: rewrite a member's address in the Raft configuration to where it answers now.
async fn update_address<E: Env>(node: Arc<Node<E>>, info: ServerInfo) {
    let Some(raft) = &node.raft else { return };
    let nodes = BTreeMap::from([(info.raft_id, BasicNode { addr: info.rpc_addr.clone() })]);
    match raft.change_membership(ChangeMembers::SetNodes(nodes), false).await {
        Ok(_) => tracing::info!(
            target: "conclave::event",
            server = %info.node_name,
            addr = %info.rpc_addr,
            "server address updated in the raft configuration"
        ),
        Err(e) => {
            tracing::debug!(target: "conclave::event", server = %info.node_name, error = %e, "cannot update server address")
        }
    }
}

/// Whether a server's own word is enough: no TLS on outgoing RPC (as open as Consul without TLS), a
/// server certificate presented, or an earlier check of the same server.
fn trusted<E: Env>(node: &Node<E>, info: &ServerInfo, vouched: bool) -> bool {
    !node.security.rpc.outgoing
        || vouched
        || node.verified_servers.lock().expect("verified lock").contains(&(info.raft_id, info.rpc_addr.clone()))
}

/// Dials the server's RPC address over TLS (which verifies its certificate as outgoing RPC does) and
/// checks that the server there is the one described.
async fn verify_server<E: Env>(node: &Arc<Node<E>>, info: &ServerInfo) -> bool {
    let Ok(addr) = info.rpc_addr.parse::<SocketAddr>() else { return false };
    let confirmed = match node.pool.call(addr, &Request::Hello(node.self_info()), HELLO_TIMEOUT).await {
        Ok(Reply::Hello { known, .. }) => {
            known.iter().any(|k| k.server && k.raft_id == info.raft_id && k.rpc_addr == info.rpc_addr)
        }
        Ok(other) => {
            tracing::debug!(target: "conclave::rpc", server = %info.node_name, reply = ?other, "server check refused");
            false
        }
        Err(e) => {
            tracing::warn!(target: "conclave::rpc", server = %info.node_name, %addr, error = %e, "not trusting a server that fails the TLS check");
            false
        }
    };
    if confirmed {
        node.verified_servers.lock().expect("verified lock").insert((info.raft_id, info.rpc_addr.clone()));
    }
    confirmed
}

/// On the leader: admits every server that gossip shows alive in this datacenter but the Raft
/// configuration lacks (Consul's leader reconcile). A server removed while the leader's gossip still
/// held it failed (the autopilot's dead-server cleanup racing its rejoin) stops its discovery once it
/// belongs to a configuration, so without this pass it would stay out for good.
pub fn admit_alive_servers<E: Env>(node: &Arc<Node<E>>) {
    let Some(raft) = &node.raft else { return };
    if !node.is_leader() {
        return;
    }
    let membership = raft.metrics().borrow().membership_config.membership().clone();
    let known: Vec<ServerInfo> = node.known_servers.lock().expect("known servers lock").values().cloned().collect();
    for member in node.gossip.members() {
        if member.status != conclave_core::gossip::MemberStatus::Alive || member.tags.rpc_port == 0 {
            continue;
        }
        let Some(info) = known.iter().find(|k| k.server && k.node_name == member.name) else { continue };
        if info.datacenter != node.config.datacenter || membership.get_node(&info.raft_id).is_some() {
            continue;
        }
        if node.servers_being_admitted.lock().expect("admitting lock").insert(info.raft_id) {
            tracing::info!(target: "conclave::event", server = %info.node_name, "alive server missing from the raft configuration");
            let (node, info) = (node.clone(), info.clone());
            tokio::spawn(async move {
                let id = info.raft_id;
                admit_server(node.clone(), info).await;
                node.servers_being_admitted.lock().expect("admitting lock").remove(&id);
            });
        }
    }
}

/// On the leader: add a server that is not yet in the configuration. Elsewhere: pass the news to the leader.
async fn admit_server<E: Env>(node: Arc<Node<E>>, info: ServerInfo) {
    if !node.is_leader() {
        if let Some((_, Some(addr))) = node.leader() {
            if let Ok(addr) = addr.parse() {
                let _ = node.pool.call(addr, &Request::Hello(info), HELLO_TIMEOUT).await;
            }
        }
        return;
    }
    let Some(raft) = &node.raft else { return };
    let member = BasicNode { addr: info.rpc_addr.clone() };
    // A new server joins as a non-voter (openraft learner); the autopilot promotes it once it has been
    // healthy for `server_stabilization_time`, as Consul's does.
    match raft.add_learner(info.raft_id, member, true).await {
        Ok(_) => {
            tracing::info!(target: "conclave::event", server = %info.node_name, "server added to the raft configuration as a non-voter")
        }
        Err(e) => {
            tracing::warn!(target: "conclave::event", server = %info.node_name, error = %e, "cannot add server as learner")
        }
    }
}

/// Runs discovery until this server belongs to a Raft configuration.
pub async fn run<E: Env>(node: Arc<Node<E>>) {
    if !node.config.server {
        return discover_servers(node).await;
    }
    if node.config.dev && !node.cluster_formed() {
        let members = BTreeMap::from([(node.raft_id, BasicNode { addr: node.config.rpc_addr().to_string() })]);
        let Some(raft) = &node.raft else { return };
        if let Err(e) = raft.initialize(members).await {
            tracing::warn!(target: "conclave::event", error = %e, "dev bootstrap failed");
        }
        return;
    }
    while !node.cluster_formed() {
        let someone_formed = say_hello_to_joins(&node).await;
        if !someone_formed {
            try_bootstrap(&node).await;
        }
        let interval = node.config.retry_interval;
        tokio::time::sleep(interval + node.jitter(interval / 2)).await;
    }
    tracing::info!(target: "conclave::event", node = %node.config.node_name, "member of a raft configuration");
    greet_while_leaderless(node).await;
}

/// A member that knows no leader greets its join addresses every retry interval: after every server
/// came back on a new address, the greetings are how the servers find each other again.
async fn greet_while_leaderless<E: Env>(node: Arc<Node<E>>) {
    loop {
        let interval = node.config.retry_interval;
        tokio::time::sleep(interval + node.jitter(interval / 2)).await;
        if node.leader().is_none() {
            say_hello_to_joins(&node).await;
        } else if node.is_leader() {
            correct_configured_addresses(&node).await;
        }
    }
}

/// On the leader: every member whose address in the configuration is not where it answers now (itself
/// included, after a restart on a new address) gets its address rewritten.
async fn correct_configured_addresses<E: Env>(node: &Arc<Node<E>>) {
    let Some(raft) = &node.raft else { return };
    let configured: Vec<(u64, String)> =
        raft.metrics().borrow().membership_config.membership().nodes().map(|(id, n)| (*id, n.addr.clone())).collect();
    let mut servers = node.known_servers.lock().expect("known servers lock").clone();
    servers.insert(node.raft_id, node.self_info());
    for (raft_id, addr) in configured {
        if let Some(info) = servers.get(&raft_id).filter(|info| info.rpc_addr != addr) {
            update_address(node.clone(), info.clone()).await;
        }
    }
}

/// Exchanges Hellos with one LAN address and learns the servers it knows; returns whether it belongs
/// to a formed cluster.
pub async fn hello<E: Env>(node: &Arc<Node<E>>, addr: SocketAddr) -> Result<bool, String> {
    match node.lan_pool.call(addr, &Request::Hello(node.self_info()), HELLO_TIMEOUT).await {
        Ok(Reply::Hello { known, cluster_formed }) => {
            for info in known {
                let ours = info.server && info.raft_id != node.raft_id && info.datacenter == node.config.datacenter;
                if ours && (trusted(node, &info, false) || verify_server(node, &info).await) {
                    let first_hand = info.rpc_addr.parse::<SocketAddr>().is_ok_and(|rpc| rpc.ip() == addr.ip());
                    remember_server(node, &info, first_hand);
                }
            }
            Ok(cluster_formed)
        }
        Ok(other) => Err(format!("unexpected reply from {addr}: {other:?}")),
        Err(e) => Err(format!("cannot reach {addr}: {e}")),
    }
}

/// Exchanges Hellos with every `-join` address; true if one of them belongs to a formed cluster.
async fn say_hello_to_joins<E: Env>(node: &Arc<Node<E>>) -> bool {
    let mut someone_formed = false;
    for addr in node.config.join.clone() {
        if addr == node.config.lan_addr() {
            continue;
        }
        match hello(node, addr).await {
            Ok(formed) => someone_formed |= formed,
            Err(e) => tracing::debug!(target: "conclave::rpc", %addr, error = %e, "join address not reachable yet"),
        }
    }
    someone_formed
}

/// Initializes Raft once `bootstrap_expect` servers that agree on the expectation are known.
async fn try_bootstrap<E: Env>(node: &Arc<Node<E>>) {
    let expect = node.config.bootstrap_expect as usize;
    if expect == 0 {
        return;
    }
    let mut servers = node.known_servers.lock().expect("known servers lock").clone();
    servers.insert(node.raft_id, node.self_info());
    if servers.len() < expect {
        return;
    }
    if let Some(other) = servers.values().find(|s| s.bootstrap_expect != 0 && s.bootstrap_expect as usize != expect) {
        tracing::error!(
            target: "conclave::event",
            server = %other.node_name,
            theirs = other.bootstrap_expect,
            ours = expect,
            "refusing to bootstrap: servers disagree on bootstrap_expect"
        );
        return;
    }
    let members: BTreeMap<_, _> =
        servers.values().take(expect).map(|s| (s.raft_id, BasicNode { addr: s.rpc_addr.clone() })).collect();
    if !members.contains_key(&node.raft_id) {
        return; // The chosen servers bootstrap; the leader will add us.
    }
    tracing::info!(target: "conclave::event", node = %node.config.node_name, servers = members.len(), "bootstrapping raft");
    let Some(raft) = &node.raft else { return };
    if let Err(e) = raft.initialize(members).await {
        tracing::debug!(target: "conclave::event", error = %e, "raft initialize refused");
    }
}

/// How often a client agent asks its join addresses for the current servers once it knows some.
const CLIENT_REDISCOVERY_INTERVAL: Duration = Duration::from_secs(30);

/// A client agent learns the servers from its `-join`/`-retry-join` addresses, and keeps asking so that
/// servers added later are found.
async fn discover_servers<E: Env>(node: Arc<Node<E>>) {
    loop {
        say_hello_to_joins(&node).await;
        let known = !node.known_servers.lock().expect("known servers lock").is_empty();
        let interval = if known { CLIENT_REDISCOVERY_INTERVAL } else { node.config.retry_interval };
        tokio::time::sleep(interval + node.jitter(interval / 2)).await;
    }
}
