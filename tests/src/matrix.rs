//! The machinery of the bad-input matrix (`tests/tests/bad_input_*.rs`): a dev agent per loopback subnet,
//! a failure collector that checks every case of a test and reports the failures together at the end (so
//! one run lists every case the agent gets wrong), and a snapshot of what the agent holds (the catalog's
//! services and nodes, the agent's services, the KV store) to prove that refused input changed nothing and
//! accepted input changed exactly what it should.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{eventually, Agent, Cluster};
use crate::http;
use crate::raw_http::{base64, raw, raw_get, Reply};

// ---------------------------------------------------------------------------------------------------
// Agents, one subnet lock each

/// One lock per loopback subnet 127.0.N.x: a dev agent takes its subnet's ports, so two tests of one test
/// binary on the same subnet must take turns.
static SUBNETS: [Mutex<()>; 256] = [const { Mutex::new(()) }; 256];

/// A dev agent on 127.0.`subnet`.1, with the subnet's lock held for as long as the guard lives. Bind the
/// guard first so the cluster (and its agent) is dropped before the lock is released. Each test file names
/// the subnets it owns in its doc comment; the lock only orders tests within one test binary.
pub fn dev(subnet: u8) -> (MutexGuard<'static, ()>, Cluster) {
    let guard = SUBNETS[usize::from(subnet)].lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let cluster = Cluster::dev(subnet);
    // The server registers itself as `consul` shortly after it starts: let that land before any
    // snapshot, so it does not show up as a change.
    let agent = &cluster.agents[0];
    eventually(Duration::from_secs(20), "the `consul` service in the catalog", || {
        let reply = http::get(&agent.url("/v1/catalog/services")).ok()?;
        (reply.status == 200 && reply.json().get("consul").is_some()).then_some(())
    });
    (guard, cluster)
}

// ---------------------------------------------------------------------------------------------------
// The failure collector

/// Collects failed cases so a test reports all of them at once.
#[derive(Default)]
pub struct Matrix {
    failures: Vec<String>,
    passed: usize,
}

impl Matrix {
    pub fn check(&mut self, case: &str, ok: bool, detail: impl Display) {
        if ok {
            self.passed += 1;
        } else {
            self.failures.push(format!("{case}: {detail}"));
        }
    }

    pub fn fail(&mut self, case: &str, detail: impl Display) {
        self.check(case, false, detail);
    }

    /// Checks the status, and that the body contains `gist` (ignoring case) when one is given.
    pub fn expect(
        &mut self,
        case: &str,
        reply: Result<Reply, String>,
        status: u16,
        gist: Option<&str>,
    ) -> Option<Reply> {
        match reply {
            Err(e) => {
                self.fail(case, format!("no HTTP answer: {e}"));
                None
            }
            Ok(reply) => {
                let gist_ok = gist.is_none_or(|g| reply.body_text().to_lowercase().contains(&g.to_lowercase()));
                self.check(
                    case,
                    reply.status == status && gist_ok,
                    format!(
                        "expected {status}{} but got {} {:?} after {:?}",
                        gist.map(|g| format!(" containing {g:?}")).unwrap_or_default(),
                        reply.status,
                        reply.short_body(),
                        reply.elapsed
                    ),
                );
                Some(reply)
            }
        }
    }

    /// The agent process is alive and answers a plain read promptly.
    pub fn still_serving(&mut self, agent: &mut Agent, after: &str) -> bool {
        if !agent.is_running() {
            self.fail(after, "the agent process died");
            return false;
        }
        let started = Instant::now();
        let reply = http::request("GET", &agent.url("/v1/status/leader"), None, Duration::from_secs(10));
        let ok = matches!(&reply, Ok(r) if r.status == 200) && started.elapsed() < Duration::from_secs(3);
        let detail = match &reply {
            Ok(r) => format!("GET /v1/status/leader answered {} {:?} after {:?}", r.status, r.body, started.elapsed()),
            Err(e) => format!("GET /v1/status/leader failed after {:?}: {e}", started.elapsed()),
        };
        self.check(&format!("still serving after {after}"), ok, detail);
        ok
    }

    pub fn finish(self, test: &str) {
        assert!(
            self.failures.is_empty(),
            "{test}: {} case(s) failed ({} checks passed):\n  - {}",
            self.failures.len(),
            self.passed,
            self.failures.join("\n  - ")
        );
        eprintln!("{test}: all {} checks passed", self.passed);
    }
}

// ---------------------------------------------------------------------------------------------------
// What the agent holds: the catalog's services and nodes, the agent's services and the KV store.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// `/v1/catalog/services`: name → sorted tags.
    pub catalog_services: BTreeMap<String, Vec<String>>,
    /// `/v1/catalog/nodes`: node names.
    pub catalog_nodes: BTreeSet<String>,
    /// `/v1/agent/services`: map key → (ID, Service, Port, sorted Tags).
    pub agent_services: BTreeMap<String, (String, String, u64, Vec<String>)>,
    /// `/v1/kv/?recurse`: key → (base64 Value or "" when null, Flags).
    pub kv: BTreeMap<String, (String, u64)>,
}

/// GET `target` and its JSON; a KV read that finds nothing is an empty list.
pub fn fetch_json(ip: &str, target: &str) -> Value {
    let reply = raw_get(ip, target).unwrap_or_else(|e| panic!("GET {target}: {e}"));
    if reply.status == 404 && target.starts_with("/v1/kv/") {
        return json!([]);
    }
    assert_eq!(reply.status, 200, "GET {target}: {}", reply.short_body());
    reply.json().unwrap_or_else(|| panic!("GET {target}: not JSON: {}", reply.short_body()))
}

fn strings(value: &Value) -> Vec<String> {
    let mut out: Vec<String> =
        value.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect();
    out.sort();
    out
}

impl Snapshot {
    /// What the agent holds now.
    pub fn take(agent: &Agent) -> Snapshot {
        let ip = agent.ip.as_str();
        let catalog_services = fetch_json(ip, "/v1/catalog/services")
            .as_object()
            .expect("catalog services is an object")
            .iter()
            .map(|(name, tags)| (name.clone(), strings(tags)))
            .collect();
        let catalog_nodes = fetch_json(ip, "/v1/catalog/nodes")
            .as_array()
            .expect("catalog nodes is an array")
            .iter()
            .map(|n| n["Node"].as_str().unwrap_or_default().to_string())
            .collect();
        let agent_services = fetch_json(ip, "/v1/agent/services")
            .as_object()
            .expect("agent services is an object")
            .iter()
            .map(|(key, s)| {
                let id = s["ID"].as_str().unwrap_or_default().to_string();
                let name = s["Service"].as_str().unwrap_or_default().to_string();
                (key.clone(), (id, name, s["Port"].as_u64().unwrap_or(u64::MAX), strings(&s["Tags"])))
            })
            .collect();
        let kv = fetch_json(ip, "/v1/kv/?recurse")
            .as_array()
            .expect("kv recurse is an array")
            .iter()
            .map(|e| {
                let key = e["Key"].as_str().unwrap_or_default().to_string();
                (key, (e["Value"].as_str().unwrap_or_default().to_string(), e["Flags"].as_u64().unwrap_or(0)))
            })
            .collect();
        Snapshot { catalog_services, catalog_nodes, agent_services, kv }
    }

    /// The snapshot plus a service registered on the agent.
    pub fn with_agent_service(mut self, id: &str, name: &str, port: u64) -> Snapshot {
        self.agent_services.insert(id.to_string(), (id.to_string(), name.to_string(), port, Vec::new()));
        self.catalog_services.entry(name.to_string()).or_default();
        self
    }

    /// The snapshot plus a KV entry (flags 0).
    pub fn with_kv(mut self, key: &str, value: &[u8]) -> Snapshot {
        let encoded = if value.is_empty() { String::new() } else { base64(value) };
        self.kv.insert(key.to_string(), (encoded, 0));
        self
    }

    /// Compares with what the agent holds now, naming every difference.
    pub fn check_against(&self, agent: &Agent, matrix: &mut Matrix) {
        let now = Snapshot::take(agent);
        if now == *self {
            matrix.check("final state", true, "");
            return;
        }
        let diff = |what: &str, expected: &dyn std::fmt::Debug, got: &dyn std::fmt::Debug| {
            format!("{what}: expected {expected:?}\n      got {got:?}")
        };
        if now.catalog_services != self.catalog_services {
            matrix.fail("final state", diff("catalog services", &self.catalog_services, &now.catalog_services));
        }
        if now.catalog_nodes != self.catalog_nodes {
            matrix.fail("final state", diff("catalog nodes", &self.catalog_nodes, &now.catalog_nodes));
        }
        if now.agent_services != self.agent_services {
            matrix.fail("final state", diff("agent services", &self.agent_services, &now.agent_services));
        }
        if now.kv != self.kv {
            let show = |kv: &BTreeMap<String, (String, u64)>| -> BTreeMap<String, String> {
                kv.iter().map(|(k, (v, f))| (k.clone(), format!("{} b64 chars, flags {f}", v.len()))).collect()
            };
            matrix.fail("final state", diff("kv", &show(&self.kv), &show(&now.kv)));
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Request helpers for the matrix

pub const REGISTER: &str = "/v1/agent/service/register";
pub const CATALOG_REGISTER: &str = "/v1/catalog/register";
pub const CHECK_REGISTER: &str = "/v1/agent/check/register";

/// A PUT with exactly these body bytes.
pub fn put_bytes(agent: &Agent, path: &str, body: &[u8]) -> Result<Reply, String> {
    raw(&agent.ip, "PUT", path, body)
}
