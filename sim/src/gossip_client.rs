//! The gossip scenarios' clients: watchers that poll the real HTTP API of every node — the member list
//! (`/v1/agent/members`), a node's `serfHealth` and its service's `?passing` answer, and the Raft leader and
//! peers (`/v1/status/...`) — and the scripted steps (registering a service on a client agent, a graceful
//! leave, writes and consistent reads while a server is gone). Everything seen goes into the history for
//! `checker::membership`.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use conclave::env::http_client::{self, HttpResponse};

use crate::checker::{
    History, MembersObservation, NodeHealthObservation, Op, OpKind, Outcome, ReadMode, StatusObservation,
};
use crate::client::now_us;

/// How often a watcher polls each node.
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// How long a watcher waits for one answer: short, so a node that stopped (crashed, left) does not hold
/// up the polling of the others.
const POLL_TIMEOUT: Duration = Duration::from_secs(1);
/// The service the client-crash scenario registers on its client agent.
pub const SERVICE: &str = "api";
/// The KV key the leave scenario writes while a server is gone.
pub const PROBE_KEY: &str = "gossip/probe";
/// The client ID under which the scripted writes and reads are recorded.
const SCRIPT_CLIENT: u32 = 100;

/// One HTTP exchange bounded by `POLL_TIMEOUT`; `None` if it did not complete.
pub(crate) async fn get(addr: SocketAddr, method: &str, path: &str, body: Vec<u8>) -> Option<HttpResponse> {
    let exchange = async {
        let stream = turmoil::net::TcpStream::connect(addr).await.ok()?;
        http_client::request(stream, method, &addr.to_string(), path, body).await.ok()
    };
    tokio::time::timeout(POLL_TIMEOUT, exchange).await.ok().flatten()
}

fn sim_now() -> Duration {
    Duration::from_micros(now_us())
}

/// A node to poll: its name and its HTTP address.
pub type Target = (String, SocketAddr);

/// Runs `poll` for every target at once (one task each, so a node that stopped answering does not slow
/// down the polling of the others), every `POLL_EVERY` until `done(history)` or `stop_at`.
async fn poll_each<P, F>(
    targets: Vec<Target>,
    history: Rc<RefCell<History>>,
    stop_at: Duration,
    done: impl Fn(&History) -> bool + 'static,
    poll: P,
) where
    P: Fn(Target, Rc<RefCell<History>>) -> F + 'static,
    F: std::future::Future<Output = ()> + 'static,
{
    let done = Rc::new(done);
    let poll = Rc::new(poll);
    let tasks: Vec<_> = targets
        .into_iter()
        .map(|target| {
            let (history, done, poll) = (history.clone(), done.clone(), poll.clone());
            tokio::task::spawn_local(async move {
                while sim_now() < stop_at && !done(&history.borrow()) {
                    poll(target.clone(), history.clone()).await;
                    tokio::time::sleep(POLL_EVERY).await;
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}

/// Polls every node's `/v1/agent/members` until `done(history)` says so or `stop_at`.
pub async fn watch_members(
    nodes: Vec<Target>,
    history: Rc<RefCell<History>>,
    stop_at: Duration,
    done: impl Fn(&History) -> bool + 'static,
) {
    poll_each(nodes, history, stop_at, done, |(name, addr), history| async move {
        let invoke_us = now_us();
        let Some(response) = get(addr, "GET", "/v1/agent/members", Vec::new()).await else { return };
        let complete_us = now_us();
        let Some(members) = parse_members(&response) else { return };
        history.borrow_mut().members.push(MembersObservation { node: name, invoke_us, complete_us, members });
    })
    .await;
}

pub(crate) fn parse_members(response: &HttpResponse) -> Option<Vec<(String, u8)>> {
    if response.status != 200 {
        return None;
    }
    let rows = response.json().ok()?;
    rows.as_array()?
        .iter()
        .map(|row| Some((row["Name"].as_str()?.to_string(), u8::try_from(row["Status"].as_u64()?).ok()?)))
        .collect()
}

/// Registers `SERVICE` (with a TTL check that starts passing and outlives the run) on the agent at
/// `agent`, retrying until it takes it.
pub async fn register_service(agent: SocketAddr, history: &Rc<RefCell<History>>) {
    let body = serde_json::json!({
        "ID": SERVICE,
        "Name": SERVICE,
        "Port": 9000,
        "Check": { "CheckID": "api-ttl", "TTL": "1h", "Status": "passing" },
    })
    .to_string()
    .into_bytes();
    loop {
        if let Some(response) = get(agent, "PUT", "/v1/agent/service/register", body.clone()).await {
            if response.status == 200 {
                history.borrow_mut().marks.push((now_us(), "registered".to_string()));
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Asks the servers in turn for `node`'s `serfHealth` and for `SERVICE`'s passing instances, every
/// `POLL_EVERY` until `stop_at`.
pub async fn watch_node_health(
    servers: Vec<(u32, SocketAddr)>,
    node: String,
    history: Rc<RefCell<History>>,
    stop_at: Duration,
) {
    let mut turn = 0usize;
    while sim_now() < stop_at {
        let (server, addr) = servers[turn % servers.len()];
        turn += 1;
        let invoke_us = now_us();
        let serf = get(addr, "GET", &format!("/v1/health/node/{node}"), Vec::new()).await;
        let passing = get(addr, "GET", &format!("/v1/health/service/{SERVICE}?passing"), Vec::new()).await;
        let complete_us = now_us();
        let (Some(serf), Some(passing)) = (serf, passing) else { continue };
        let serf_health = serf.json().ok().and_then(|rows| {
            rows.as_array()?
                .iter()
                .find(|c| c["CheckID"] == "serfHealth")
                .and_then(|c| c["Status"].as_str().map(str::to_string))
        });
        let service_passing = passing.json().ok().and_then(|rows| {
            Some(
                rows.as_array()?
                    .iter()
                    .any(|row| row["Node"]["Node"] == node.as_str() && row["Service"]["ID"] == SERVICE),
            )
        });
        let (200, 200, Some(service_passing)) = (serf.status, passing.status, service_passing) else { continue };
        history.borrow_mut().node_health.push(NodeHealthObservation {
            server,
            invoke_us,
            complete_us,
            serf_health,
            service_passing,
        });
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Polls every server's `/v1/status/leader` and `/v1/status/peers` until `done` or `stop_at`.
pub async fn watch_status(
    servers: Vec<Target>,
    history: Rc<RefCell<History>>,
    stop_at: Duration,
    done: impl Fn(&History) -> bool + 'static,
) {
    poll_each(servers, history, stop_at, done, |(name, addr), history| async move {
        let invoke_us = now_us();
        let leader = get(addr, "GET", "/v1/status/leader", Vec::new()).await;
        let peers = get(addr, "GET", "/v1/status/peers", Vec::new()).await;
        let complete_us = now_us();
        let (Some(leader), Some(peers)) = (leader, peers) else { return };
        let leader = leader.json().ok().and_then(|v| v.as_str().map(str::to_string));
        let peers = peers
            .json()
            .ok()
            .and_then(|v| v.as_array()?.iter().map(|p| p.as_str().map(str::to_string)).collect::<Option<Vec<_>>>());
        let (Some(leader), Some(peers)) = (leader, peers) else { return };
        history.borrow_mut().status.push(StatusObservation { node: name, invoke_us, complete_us, leader, peers });
    })
    .await;
}

/// `PUT /v1/agent/leave` on `server` at `at`; marks `left:<name>` when the agent answered.
pub async fn leave(server: Target, at: Duration, history: &Rc<RefCell<History>>) {
    tokio::time::sleep(at.saturating_sub(sim_now())).await;
    // The agent answers once its leave has propagated through each pool (a second per pool, so not with
    // the watchers' short timeout); then its process ends. Sent once: a second leave would find it gone.
    if let Ok(response) = crate::client::call(server.1, "PUT", "/v1/agent/leave", Vec::new()).await {
        if response.status == 200 {
            history.borrow_mut().marks.push((now_us(), format!("left:{}", server.0)));
        }
    }
}

/// Writes `PROBE_KEY` through `server` (value `w<n>`) and records the write as a register of the key.
pub async fn write_probe(server: (u32, SocketAddr), n: u32, history: &Rc<RefCell<History>>) -> bool {
    let value = format!("w{n}");
    let invoke_us = now_us();
    let result = crate::client::call(server.1, "PUT", &format!("/v1/kv/{PROBE_KEY}"), value.clone().into_bytes()).await;
    let complete_us = now_us();
    let outcome = match result {
        Ok(response) if response.status == 200 && response.body.starts_with(b"true") => Outcome::WriteOk,
        Ok(response) if (400..500).contains(&response.status) => Outcome::Failed,
        Ok(_) | Err(true) => Outcome::Unknown,
        Err(false) => Outcome::Failed,
    };
    let ok = outcome == Outcome::WriteOk;
    history.borrow_mut().push(Op {
        client: SCRIPT_CLIENT,
        server: server.0,
        key: PROBE_KEY.to_string(),
        kind: OpKind::Register { value },
        invoke_us,
        complete_us,
        outcome,
    });
    ok
}

/// Reads `PROBE_KEY` consistently through `server` (recorded); the value when answered.
pub async fn read_probe(server: (u32, SocketAddr), history: &Rc<RefCell<History>>) -> Option<Option<String>> {
    crate::cas_client::read_key(history, SCRIPT_CLIENT, server, PROBE_KEY, ReadMode::Consistent).await.map(|(v, _)| v)
}

/// The leave scenario's writer: from the leave until `stop_at`, every second, a write of `PROBE_KEY` and a
/// consistent read through the servers in turn — skipping the one that left while it is gone, and
/// including it again after its restart.
pub async fn write_through_leave(
    servers: Vec<(u32, SocketAddr)>,
    leaver: usize,
    leave_at: Duration,
    restart_at: Duration,
    stop_at: Duration,
    history: Rc<RefCell<History>>,
) {
    tokio::time::sleep(leave_at.saturating_sub(sim_now())).await;
    let mut n = 0u32;
    while sim_now() < stop_at {
        let gone = sim_now() < restart_at;
        let candidates: Vec<_> = servers.iter().enumerate().filter(|(i, _)| !gone || *i != leaver).collect();
        let (_, &server) = candidates[n as usize % candidates.len()];
        n += 1;
        write_probe(server, n, &history).await;
        read_probe(server, &history).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
