//! KV benchmark against etcd: starts a 3-server Conclave cluster on loopback (release binary, fsync on),
//! measures KV puts/s (`PUT /v1/kv/bench/<n>`, 100-byte values) and linearizable gets/s
//! (`GET /v1/kv/bench/<n>`, default consistency) with 1 and 64 concurrent clients, then stops it and runs
//! the same workload against a 3-member etcd cluster (`/usr/bin/etcd`, Debian's `etcd-server`, fsync on)
//! through etcd's v3 HTTP/JSON gateway (`POST /v3/kv/put`, `POST /v3/kv/range`, linearizable by
//! default). Both are driven by the same ureq HTTP/1.1 keep-alive clients, spread over the three
//! servers/members, and a side-by-side table is printed at the end. Without etcd only Conclave's
//! figures are printed. A third cluster runs the same workloads with ACLs on (`default_policy = "deny"`,
//! a token holding 10 policies) and its figures are set beside ACLs off. A fourth runs them with TLS on
//! RPC and HTTPS (certificates from `conclave tls`, `verify_incoming`, `verify_outgoing`,
//! `verify_server_hostname`, gossip encryption), the clients over HTTPS with the CLI certificate, set
//! beside plaintext.
//!
//! `cargo run --release -p conclave-tests --bin kvbench [-- SECONDS_PER_PHASE]` (`$ETCD_BIN` overrides
//! `/usr/bin/etcd`).

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use conclave_tests::harness::{eventually, Cluster};
use conclave_tests::pki::{keygen, write, Pki};

/// Bytes in every value written.
const VALUE_BYTES: usize = 100;
/// The ACL phase's token (`?token=` on every request), once set.
static TOKEN_QUERY: OnceLock<String> = OnceLock::new();

fn token_query() -> &'static str {
    TOKEN_QUERY.get().map(String::as_str).unwrap_or("")
}
/// Keys `bench/0..PRELOADED` are written before the get phases, which read them round-robin.
const PRELOADED: u64 = 1000;
/// etcd members listen for clients on 127.0.0.1:ETCD_CLIENT_PORT+i and for peers on ETCD_PEER_PORT+i,
/// clear of the 2379/2380 a packaged etcd service would take.
const ETCD_CLIENT_PORT: u16 = 23791;
const ETCD_PEER_PORT: u16 = 23801;

struct Phase {
    ops: u64,
    errors: u64,
    latencies_us: Vec<u64>,
    elapsed: Duration,
}

impl Phase {
    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank] as f64 / 1000.0
}

type Op = fn(&ureq::Agent, &str, u64) -> bool;

/// The TLS phase's client configuration (its CA and the CLI certificate), once set.
static CLIENT_TLS: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();

/// A keep-alive HTTP client; over HTTPS with the TLS phase's configuration once it is set.
fn new_agent() -> ureq::Agent {
    let builder = ureq::AgentBuilder::new().timeout(Duration::from_secs(30));
    match CLIENT_TLS.get() {
        Some(config) => builder.tls_config(config.clone()).build(),
        None => builder.build(),
    }
}

/// `clients` threads, client `i` talking to `urls[i % urls.len()]`, each looping `op` until `duration`
/// has passed. Only successful operations count (and have their latency recorded).
fn run_phase(urls: &[String], clients: usize, duration: Duration, op: Op) -> Phase {
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|client| {
            let (stop, errors, url) = (stop.clone(), errors.clone(), urls[client % urls.len()].clone());
            std::thread::spawn(move || {
                let agent = new_agent();
                let mut latencies = Vec::new();
                let mut sequence = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let begin = Instant::now();
                    if op(&agent, &url, (client as u64) << 32 | sequence) {
                        latencies.push(begin.elapsed().as_micros() as u64);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    sequence += 1;
                }
                latencies
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let mut latencies_us: Vec<u64> = workers.into_iter().flat_map(|w| w.join().expect("worker")).collect();
    latencies_us.sort_unstable();
    Phase {
        ops: latencies_us.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        latencies_us,
        elapsed: started.elapsed(),
    }
}

/// The key a get reads: spread over the preloaded keys, different clients starting at different keys.
fn read_key(id: u64) -> u64 {
    ((id >> 32) * 7919 + (id & 0xffff_ffff)) % PRELOADED
}

fn value() -> String {
    "v".repeat(VALUE_BYTES)
}

/// Standard base64 with padding (etcd's JSON gateway carries bytes fields as base64).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// Every op reads the whole reply body, so ureq returns the connection to its pool (keep-alive) for both
// systems alike.

fn conclave_put_key(agent: &ureq::Agent, url: &str, key: u64) -> bool {
    match agent.put(&format!("{url}/v1/kv/bench/{key}{}", token_query())).send_string(&value()) {
        Ok(response) => response.into_string().is_ok_and(|body| body.trim() == "true"),
        Err(_) => false,
    }
}

fn conclave_put(agent: &ureq::Agent, url: &str, id: u64) -> bool {
    conclave_put_key(agent, url, id)
}

fn conclave_get(agent: &ureq::Agent, url: &str, id: u64) -> bool {
    match agent.get(&format!("{url}/v1/kv/bench/{}{}", read_key(id), token_query())).call() {
        Ok(response) => response.into_string().is_ok_and(|body| body.contains("\"Value\"")),
        Err(_) => false,
    }
}

fn etcd_put_key(agent: &ureq::Agent, url: &str, key: u64) -> bool {
    let body = format!(
        r#"{{"key":"{}","value":"{}"}}"#,
        base64(format!("bench/{key}").as_bytes()),
        base64(value().as_bytes())
    );
    match agent.post(&format!("{url}/v3/kv/put")).set("Content-Type", "application/json").send_string(&body) {
        Ok(response) => response.into_string().is_ok_and(|body| body.contains("\"header\"")),
        Err(_) => false,
    }
}

fn etcd_put(agent: &ureq::Agent, url: &str, id: u64) -> bool {
    etcd_put_key(agent, url, id)
}

fn etcd_get(agent: &ureq::Agent, url: &str, id: u64) -> bool {
    let body = format!(r#"{{"key":"{}"}}"#, base64(format!("bench/{}", read_key(id)).as_bytes()));
    match agent.post(&format!("{url}/v3/kv/range")).set("Content-Type", "application/json").send_string(&body) {
        // A linearizable range (no "serializable") answers "kvs" only when the key exists.
        Ok(response) => response.into_string().is_ok_and(|body| body.contains("\"kvs\"")),
        Err(_) => false,
    }
}

/// Writes `bench/0..PRELOADED` with 8 clients spread over `urls`, so every get finds its key.
fn preload(urls: &[String], put: fn(&ureq::Agent, &str, u64) -> bool) {
    let workers: Vec<_> = (0..8u64)
        .map(|worker| {
            let url = urls[worker as usize % urls.len()].clone();
            std::thread::spawn(move || {
                let agent = new_agent();
                for key in (worker..PRELOADED).step_by(8) {
                    assert!(put(&agent, &url, key), "preloading bench/{key} through {url} failed");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("preload worker");
    }
}

const WORKLOADS: [(&str, usize); 4] = [("put", 1), ("put", 64), ("get", 1), ("get", 64)];

/// Runs the four workloads against `urls`, printing each phase as it finishes.
fn run_all(system: &str, urls: &[String], duration: Duration, put: Op, get: Op, put_key: Op) -> Vec<Phase> {
    let mut phases = Vec::new();
    for (workload, clients) in WORKLOADS {
        if workload == "get" && phases.len() == 2 {
            preload(urls, put_key);
        }
        let op = if workload == "put" { put } else { get };
        let phase = run_phase(urls, clients, duration, op);
        println!(
            "  {system:<8} {workload:<4} {clients:>3} clients: {:>7.0} ops/s  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}",
            phase.ops_per_sec(),
            percentile(&phase.latencies_us, 0.50),
            percentile(&phase.latencies_us, 0.99),
            phase.errors
        );
        phases.push(phase);
    }
    phases
}

/// Three etcd members on 127.0.0.1, each with its own data dir and log in `dir`; killed and removed on
/// drop (panics included).
struct Etcd {
    children: Vec<Child>,
    urls: Vec<String>,
    dir: tempfile::TempDir,
}

impl Etcd {
    fn start(binary: &PathBuf) -> Etcd {
        let dir = tempfile::tempdir().expect("temp dir");
        let members = 3u16;
        let peer = |i: u16| format!("http://127.0.0.1:{}", ETCD_PEER_PORT + i);
        let client = |i: u16| format!("http://127.0.0.1:{}", ETCD_CLIENT_PORT + i);
        let initial_cluster: Vec<String> = (0..members).map(|i| format!("e{}={}", i + 1, peer(i))).collect();
        let mut etcd = Etcd { children: Vec::new(), urls: (0..members).map(client).collect(), dir };
        for i in 0..members {
            let name = format!("e{}", i + 1);
            let log = File::create(etcd.dir.path().join(format!("{name}.log"))).expect("log file");
            let child = Command::new(binary)
                .args(["--name", &name])
                .arg("--data-dir")
                .arg(etcd.dir.path().join(&name))
                .args(["--listen-client-urls", &client(i), "--advertise-client-urls", &client(i)])
                .args(["--listen-peer-urls", &peer(i), "--initial-advertise-peer-urls", &peer(i)])
                .args(["--initial-cluster", &initial_cluster.join(",")])
                .args(["--initial-cluster-state", "new", "--initial-cluster-token", "kvbench"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .expect("start etcd");
            etcd.children.push(child);
        }
        // /health answers true only once the member sees a leader and a linearizable read through it works.
        for url in &etcd.urls {
            eventually(Duration::from_secs(30), &format!("etcd at {url} to be healthy"), || {
                let reply = conclave_tests::http::get(&format!("{url}/health")).ok()?;
                reply.body.contains("\"true\"").then_some(())
            });
        }
        etcd
    }

    /// Which member (1-based) leads, from `/v3/maintenance/status` (member ids are JSON strings there).
    fn leader(&self) -> Option<usize> {
        let statuses: Vec<serde_json::Value> = self
            .urls
            .iter()
            .map(|url| {
                let reply = conclave_tests::http::request(
                    "POST",
                    &format!("{url}/v3/maintenance/status"),
                    Some(b"{}"),
                    Duration::from_secs(5),
                )
                .ok()?;
                serde_json::from_str(&reply.body).ok()
            })
            .collect::<Option<_>>()?;
        let leader = statuses.first()?.get("leader")?.clone();
        statuses.iter().position(|s| s["header"]["member_id"] == leader).map(|i| i + 1)
    }

    fn dump_logs(&self) {
        for i in 1..=self.children.len() {
            let log = std::fs::read_to_string(self.dir.path().join(format!("e{i}.log"))).unwrap_or_default();
            eprintln!("===== etcd e{i} log =====\n{log}");
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn main() {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let duration = Duration::from_secs(seconds);
    println!("KV benchmark: {seconds}s per phase, {VALUE_BYTES}-byte values, HTTP/1.1 JSON keep-alive clients");

    // Conclave first, stopped before etcd starts so the two never share the CPUs.
    let conclave = {
        let mut cluster = Cluster::servers(61, 3);
        let leader = cluster.wait_leader();
        let urls: Vec<String> = cluster.agents.iter().map(|a| a.http()).collect();
        println!("Conclave: 3 servers on 127.0.61.1-3:8500, leader s{}", leader + 1);
        let phases = run_all("conclave", &urls, duration, conclave_put, conclave_get, conclave_put_key);
        for agent in &mut cluster.agents {
            agent.stop();
        }
        phases
    };

    let with_tls = tls_phases(duration);
    let with_acl = acl_phases(duration);

    let etcd_binary = PathBuf::from(std::env::var("ETCD_BIN").unwrap_or_else(|_| "/usr/bin/etcd".into()));
    let etcd = if etcd_binary.exists() {
        let version = Command::new(&etcd_binary)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").to_string())
            .unwrap_or_default();
        let cluster = Etcd::start(&etcd_binary);
        println!(
            "etcd: {version}, 3 members on 127.0.0.1:{}-{}, v3 JSON gateway, leader e{}",
            ETCD_CLIENT_PORT,
            ETCD_CLIENT_PORT + 2,
            cluster.leader().map_or("?".to_string(), |i| i.to_string())
        );
        let phases = run_all("etcd", &cluster.urls, duration, etcd_put, etcd_get, etcd_put_key);
        drop(cluster);
        Some(phases)
    } else {
        println!(
            "etcd not found at {} (install Debian's etcd-server or set ETCD_BIN): printing Conclave's figures only",
            etcd_binary.display()
        );
        None
    };

    println!();
    println!(
        "{:<10} {:>7} | {:>9} {:>8} {:>8} | {:>9} {:>8} {:>8} | {:>8}",
        "workload", "clients", "conclave", "p50 ms", "p99 ms", "etcd", "p50 ms", "p99 ms", "ratio"
    );
    for (i, (workload, clients)) in WORKLOADS.iter().enumerate() {
        let c = &conclave[i];
        let conclave_cols = format!(
            "{:>9.0} {:>8.2} {:>8.2}",
            c.ops_per_sec(),
            percentile(&c.latencies_us, 0.50),
            percentile(&c.latencies_us, 0.99)
        );
        let (etcd_cols, ratio) = match &etcd {
            Some(phases) => {
                let e = &phases[i];
                let cols = format!(
                    "{:>9.0} {:>8.2} {:>8.2}",
                    e.ops_per_sec(),
                    percentile(&e.latencies_us, 0.50),
                    percentile(&e.latencies_us, 0.99)
                );
                let ratio = if e.ops > 0 { format!("{:.2}x", c.ops_per_sec() / e.ops_per_sec()) } else { "-".into() };
                (cols, ratio)
            }
            None => (format!("{:>9} {:>8} {:>8}", "-", "-", "-"), "-".into()),
        };
        println!("{workload:<10} {clients:>7} | {conclave_cols} | {etcd_cols} | {ratio:>8}");
    }
    println!("(ops/s; ratio = conclave ops/s / etcd ops/s)");
    println!();
    println!("ACLs on (default_policy deny, a token with {ACL_POLICIES} policies) against ACLs off, same run:");
    println!("{:<10} {:>7} | {:>9} {:>9} | {:>8}", "workload", "clients", "acl off", "acl on", "on/off");
    for (i, (workload, clients)) in WORKLOADS.iter().enumerate() {
        let (off, on) = (conclave[i].ops_per_sec(), with_acl[i].ops_per_sec());
        println!("{workload:<10} {clients:>7} | {off:>9.0} {on:>9.0} | {:>7.2}x", on / off.max(1.0));
    }
    println!();
    println!("TLS on RPC and HTTPS (verify_incoming, client certificates, gossip encryption) against plaintext:");
    println!("{:<10} {:>7} | {:>9} {:>9} | {:>8}", "workload", "clients", "plain", "tls", "tls/plain");
    for (i, (workload, clients)) in WORKLOADS.iter().enumerate() {
        let (plain, tls) = (conclave[i].ops_per_sec(), with_tls[i].ops_per_sec());
        println!("{workload:<10} {clients:>7} | {plain:>9.0} {tls:>9.0} | {:>7.2}x", tls / plain.max(1.0));
    }
}

/// The same workloads on a 3-server cluster secured as `tests/tests/tls_cluster.rs` secures one, the
/// clients on the HTTPS port (8501) presenting the CLI certificate.
fn tls_phases(duration: Duration) -> Vec<Phase> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = tempfile::tempdir().expect("temp dir");
    let ips: Vec<String> = (1..=3).map(|i| format!("127.0.63.{i}")).collect();
    let pki = Pki::create(dir.path(), &ips);
    let key = keygen(dir.path());
    let (cert, cert_key) = pki.pair("server");
    let config = write(dir.path(), "server.hcl", &pki.server_config((&cert, &cert_key), &key));
    let mut cluster = Cluster::servers_with(63, 3, &["-config-file", &config]);
    let leader = cluster.wait_leader();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(pki.ca()).expect("CA PEM")).expect("CA root");
    let (cli_cert, cli_key) = pki.pair("cli");
    let chain = CertificateDer::pem_file_iter(&cli_cert).expect("cli cert").collect::<Result<Vec<_>, _>>().unwrap();
    let client_key = PrivateKeyDer::from_pem_file(&cli_key).expect("cli key");
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, client_key)
        .expect("client certificate");
    CLIENT_TLS.set(Arc::new(client)).expect("set once");
    let urls: Vec<String> = ips.iter().map(|ip| format!("https://{ip}:8501")).collect();
    println!("Conclave with TLS: 3 servers on https://127.0.63.1-3:8501, leader s{}", leader + 1);
    let phases = run_all("tls", &urls, duration, conclave_put, conclave_get, conclave_put_key);
    for agent in &mut cluster.agents {
        agent.stop();
    }
    phases
}

/// Policies on the ACL phase's token: one grants `bench/`, the others speak about other prefixes.
const ACL_POLICIES: usize = 10;

/// The same workloads on a 3-server cluster with `default_policy = "deny"`, through a token holding
/// `ACL_POLICIES` policies.
fn acl_phases(duration: Duration) -> Vec<Phase> {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("acl.hcl");
    std::fs::write(&config, "acl {\n  enabled = true\n  default_policy = \"deny\"\n}\n").expect("write config");
    let config = config.display().to_string();
    let mut cluster = Cluster::servers_with(62, 3, &["-config-file", &config]);
    let leader = cluster.wait_leader();
    let urls: Vec<String> = cluster.agents.iter().map(|a| a.http()).collect();
    let root = eventually(Duration::from_secs(30), "ACL bootstrap", || {
        let response = ureq::put(&format!("{}/v1/acl/bootstrap", urls[leader])).call().ok()?;
        let body: serde_json::Value = response.into_json().ok()?;
        body["SecretID"].as_str().map(str::to_string)
    });
    let mut links = Vec::new();
    for i in 0..ACL_POLICIES {
        let rules = if i == ACL_POLICIES - 1 {
            "key_prefix \"bench/\" { policy = \"write\" }".to_string()
        } else {
            format!("key_prefix \"other-{i}/\" {{ policy = \"write\" }}\nservice_prefix \"svc-{i}\" {{ policy = \"read\" }}")
        };
        let body = serde_json::json!({ "Name": format!("bench-{i}"), "Rules": rules });
        ureq::put(&format!("{}/v1/acl/policy?token={root}", urls[leader])).send_json(body).expect("create policy");
        links.push(serde_json::json!({ "Name": format!("bench-{i}") }));
    }
    let token: serde_json::Value = ureq::put(&format!("{}/v1/acl/token?token={root}", urls[leader]))
        .send_json(serde_json::json!({ "Policies": links }))
        .expect("create token")
        .into_json()
        .expect("token JSON");
    let secret = token["SecretID"].as_str().expect("SecretID").to_string();
    TOKEN_QUERY.set(format!("?token={secret}")).expect("set once");
    println!("Conclave with ACLs: 3 servers on 127.0.62.1-3:8500, leader s{}", leader + 1);
    let phases = run_all("acl", &urls, duration, conclave_put, conclave_get, conclave_put_key);
    for agent in &mut cluster.agents {
        agent.stop();
    }
    phases
}
