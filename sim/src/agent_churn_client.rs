//! The `client-agent-churn` clients: one churner per client agent that registers and deregisters services
//! (each with a TTL check it sometimes passes) through that agent's own HTTP API until the heal, and an
//! observer that, after the heal, keeps reading each agent's own services and checks and what a server's
//! catalog holds under the agent's node, for `checker::agents`.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::checker::{AgentView, History};
use crate::client::{call, now_us};
use crate::scenarios::agents::SERVICE_IDS;

/// The service name every churned instance shares.
const SERVICE: &str = "churn";
/// The TTL of each instance's check: long enough that it does not lapse between passes in the run.
const CHECK_TTL: &str = "60s";
/// How often the observer looks at every agent.
const OBSERVE_EVERY: Duration = Duration::from_millis(500);

fn service_id(index: usize) -> String {
    format!("svc-{index}")
}

/// Registers or deregisters a random service on `agent` every 0.2–1 s until `stop_at`; one in four steps
/// passes the TTL check of a service it holds instead.
pub async fn churn(agent: SocketAddr, mut rng: ChaCha8Rng, stop_at: Duration) {
    let mut held: BTreeSet<usize> = BTreeSet::new();
    while now_us() < stop_at.as_micros() as u64 {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..1000))).await;
        let index = rng.gen_range(0..SERVICE_IDS);
        let id = service_id(index);
        let (path, body, holds_after) = if held.contains(&index) && rng.gen_ratio(1, 4) {
            (format!("/v1/agent/check/pass/service:{id}"), Vec::new(), true)
        } else if held.contains(&index) {
            (format!("/v1/agent/service/deregister/{id}"), Vec::new(), false)
        } else {
            let body = serde_json::json!({
                "ID": id,
                "Name": SERVICE,
                "Port": 8000 + index,
                "Check": { "TTL": CHECK_TTL },
            });
            ("/v1/agent/service/register".to_string(), body.to_string().into_bytes(), true)
        };
        if let Ok(response) = call(agent, "PUT", &path, body).await {
            if response.status == 200 {
                match holds_after {
                    true => held.insert(index),
                    false => held.remove(&index),
                };
            }
        }
    }
}

/// The keys of a JSON object (an agent's services or checks), None if it is not one.
fn object_keys(value: &serde_json::Value) -> Option<BTreeSet<String>> {
    Some(value.as_object()?.keys().cloned().collect())
}

/// Reads an agent's own services and checks.
async fn local_view(agent: SocketAddr) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    let services = call(agent, "GET", "/v1/agent/services", Vec::new()).await.ok().filter(|r| r.status == 200)?;
    let checks = call(agent, "GET", "/v1/agent/checks", Vec::new()).await.ok().filter(|r| r.status == 200)?;
    Some((object_keys(&services.json().ok()?)?, object_keys(&checks.json().ok()?)?))
}

/// Reads what `server`'s catalog holds under `node` (the node's `serfHealth` aside).
async fn catalog_view(server: SocketAddr, node: &str) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    let path = format!("/v1/catalog/node/{node}");
    let services = call(server, "GET", &path, Vec::new()).await.ok().filter(|r| r.status == 200)?.json().ok()?;
    let services = match &services["Services"] {
        serde_json::Value::Null => BTreeSet::new(),
        listed => object_keys(listed)?,
    };
    let path = format!("/v1/health/node/{node}");
    let checks = call(server, "GET", &path, Vec::new()).await.ok().filter(|r| r.status == 200)?.json().ok()?;
    let checks = checks
        .as_array()?
        .iter()
        .filter_map(|c| c["CheckID"].as_str())
        .filter(|id| *id != "serfHealth")
        .map(str::to_string)
        .collect();
    Some((services, checks))
}

/// Looks at every agent in turn (`agents`: name and HTTP address), asking the servers in turn, until
/// `stop_at`. A look counts only when the agent and a server both answered, the agent first.
pub async fn observe(
    agents: Vec<(String, SocketAddr)>,
    servers: Vec<SocketAddr>,
    history: Rc<RefCell<History>>,
    stop_at: Duration,
) {
    let mut turn = 0usize;
    while now_us() < stop_at.as_micros() as u64 {
        for (name, agent) in &agents {
            turn += 1;
            let Some((local_services, local_checks)) = local_view(*agent).await else { continue };
            let server = servers[turn % servers.len()];
            let Some((catalog_services, catalog_checks)) = catalog_view(server, name).await else { continue };
            history.borrow_mut().agent_views.push(AgentView {
                agent: name.clone(),
                at_us: now_us(),
                local_services,
                catalog_services,
                local_checks,
                catalog_checks,
            });
        }
        tokio::time::sleep(OBSERVE_EVERY).await;
    }
}
