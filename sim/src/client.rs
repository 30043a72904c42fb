//! Simulated clients: hosts that call the real HTTP API of the servers — register, deregister and read
//! service instances in every consistency mode — and record each operation with its invoke and complete
//! times and what came back, for the checker.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use conclave::env::http_client::{self, HttpResponse};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::checker::{History, Op, OpKind, Outcome, ReadMode};

/// The node every simulated registration goes to (catalog register), so instance keys are node-independent.
pub const WORKLOAD_NODE: &str = "ext-1";
/// The service name all workload instances share; a read lists them all.
pub const WORKLOAD_SERVICE: &str = "web";
/// How long a client waits for an answer before it records the operation as unknown.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

pub fn instance_key(id: &str) -> String {
    format!("{WORKLOAD_NODE}/{id}")
}

/// Microseconds of simulated time.
pub fn now_us() -> u64 {
    turmoil::sim_elapsed().map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// One HTTP exchange with a server, bounded by `CLIENT_TIMEOUT`. `Err(true)` means the request may have
/// reached the server (outcome unknown), `Err(false)` that it certainly did not (connection refused).
pub async fn call(server: SocketAddr, method: &str, path: &str, body: Vec<u8>) -> Result<HttpResponse, bool> {
    let exchange = async {
        let stream = match turmoil::net::TcpStream::connect(server).await {
            Ok(stream) => stream,
            Err(_) => return Err(false),
        };
        http_client::request(stream, method, &server.to_string(), path, body).await.map_err(|_| true)
    };
    match tokio::time::timeout(CLIENT_TIMEOUT, exchange).await {
        Ok(result) => result,
        Err(_) => Err(true),
    }
}

/// What a client does, given to it by the scenario.
#[derive(Clone)]
pub struct Workload {
    pub client: u32,
    pub servers: Vec<(u32, SocketAddr)>,
    pub instance_ids: Vec<String>,
    /// Upper bound on operations.
    pub ops_max: usize,
    /// No new operation starts after this much simulated time.
    pub stop_at: Duration,
    pub pause_max: Duration,
}

fn register_body(id: &str, value: &str) -> Vec<u8> {
    serde_json::json!({
        "Node": WORKLOAD_NODE,
        "Address": "10.1.0.1",
        "Service": { "ID": id, "Service": WORKLOAD_SERVICE, "Port": 8080, "Meta": { "v": value } },
    })
    .to_string()
    .into_bytes()
}

/// Reads every workload instance from one response: (key, value) for each instance present.
fn instances_in(response: &HttpResponse) -> Option<Vec<(String, String)>> {
    let rows = response.json().ok()?;
    let mut out = Vec::new();
    for row in rows.as_array()? {
        let node = row.get("Node")?.as_str()?;
        let id = row.get("ServiceID")?.as_str()?;
        let value = row.get("ServiceMeta").and_then(|m| m.get("v")).and_then(|v| v.as_str()).unwrap_or("");
        if node == WORKLOAD_NODE {
            out.push((instance_key(id), value.to_string()));
        }
    }
    Some(out)
}

/// Reads all workload instances in `mode` and records one read per key (a read of the list is a read of
/// every instance at once; the checker verifies each key's projection).
pub async fn read_all(
    history: &Rc<RefCell<History>>,
    client: u32,
    server: (u32, SocketAddr),
    ids: &[String],
    mode: ReadMode,
) -> bool {
    let query = match mode {
        ReadMode::Default => "",
        ReadMode::Consistent => "?consistent",
        ReadMode::Stale => "?stale",
    };
    let invoke_us = now_us();
    let result = call(server.1, "GET", &format!("/v1/catalog/service/{WORKLOAD_SERVICE}{query}"), Vec::new()).await;
    let complete_us = now_us();
    let Ok(response) = result else { return false };
    if response.status != 200 {
        return false;
    }
    let Some(present) = instances_in(&response) else {
        return false;
    };
    let index = response.header("x-consul-index").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut history = history.borrow_mut();
    for id in ids {
        let key = instance_key(id);
        let value = present.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
        history.push(Op {
            client,
            server: server.0,
            key,
            kind: OpKind::Read { mode: mode.clone() },
            invoke_us,
            complete_us,
            outcome: Outcome::ReadOk { value, index },
        });
    }
    true
}

/// Runs a client's operations: random writes and reads against random servers, with random pauses.
pub async fn run(workload: Workload, mut rng: ChaCha8Rng, history: Rc<RefCell<History>>) {
    for op_number in 0..workload.ops_max {
        let pause = rng.gen_range(0..=workload.pause_max.as_millis() as u64);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        if turmoil::sim_elapsed().unwrap_or_default() >= workload.stop_at {
            break;
        }
        let server = workload.servers[rng.gen_range(0..workload.servers.len())];
        let id = workload.instance_ids[rng.gen_range(0..workload.instance_ids.len())].clone();
        let dice = rng.gen_range(0..100);
        if dice < 40 {
            let mode = match rng.gen_range(0..3) {
                0 => ReadMode::Default,
                1 => ReadMode::Consistent,
                _ => ReadMode::Stale,
            };
            read_all(&history, workload.client, server, &workload.instance_ids, mode).await;
            continue;
        }
        let (kind, method, path, body) = if dice < 85 {
            let value = format!("c{}-w{}", workload.client, op_number);
            let body = register_body(&id, &value);
            (OpKind::Register { value }, "PUT", "/v1/catalog/register".to_string(), body)
        } else {
            let body = serde_json::json!({ "Node": WORKLOAD_NODE, "ServiceID": id }).to_string().into_bytes();
            (OpKind::Deregister, "PUT", "/v1/catalog/deregister".to_string(), body)
        };
        let invoke_us = now_us();
        let result = call(server.1, method, &path, body).await;
        let complete_us = now_us();
        let outcome = match result {
            Ok(response) if response.status == 200 => Outcome::WriteOk,
            Ok(response) if (400..500).contains(&response.status) => Outcome::Failed,
            Ok(_) => Outcome::Unknown,
            Err(false) => Outcome::Failed,
            Err(true) => Outcome::Unknown,
        };
        tracing::debug!(target: "sim::client", client = workload.client, key = %instance_key(&id), outcome = ?outcome, "write");
        history.borrow_mut().push(Op {
            client: workload.client,
            server: server.0,
            key: instance_key(&id),
            kind,
            invoke_us,
            complete_us,
            outcome,
        });
    }
}
