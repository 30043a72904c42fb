//! A bad-input matrix against a real `conclave agent -dev` over HTTP: malformed, mistyped, oversized,
//! deeply nested and non-UTF-8 bodies, control characters and `..` in IDs and KV keys, out-of-range
//! ports, bad durations and query values, unsupported methods, slowloris connections and a thousand
//! concurrent blocking queries. Each case asserts what a Consul user would get (status and, where Consul
//! has one, the gist of its message), that the agent still serves afterwards, and that the catalog, the
//! agent's services and the KV store end up exactly as before plus the writes that were accepted.
//!
//! Every case of a test is checked and the failures are reported together at the end, so one run lists
//! every case the agent gets wrong. Subnets 127.0.96.x..127.0.99.x are this file's; tests that share a
//! subnet take its lock and run one after the other.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use conclave_tests::harness::{eventually, Agent, Cluster};
use conclave_tests::http;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------------
// Agents, one subnet lock each

static SUBNETS: [Mutex<()>; 4] = [Mutex::new(()), Mutex::new(()), Mutex::new(()), Mutex::new(())];

/// A dev agent on 127.0.`subnet`.1, with the subnet's lock held for as long as the guard lives. Bind the
/// guard first so the cluster (and its agent) is dropped before the lock is released.
fn dev(subnet: u8) -> (MutexGuard<'static, ()>, Cluster) {
    assert!((96..=99).contains(&subnet), "this file owns 127.0.96.x..127.0.99.x only");
    let guard = SUBNETS[usize::from(subnet - 96)].lock().unwrap_or_else(|poisoned| poisoned.into_inner());
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
struct Matrix {
    failures: Vec<String>,
    passed: usize,
}

impl Matrix {
    fn check(&mut self, case: &str, ok: bool, detail: impl Display) {
        if ok {
            self.passed += 1;
        } else {
            self.failures.push(format!("{case}: {detail}"));
        }
    }

    fn fail(&mut self, case: &str, detail: impl Display) {
        self.check(case, false, detail);
    }

    /// Checks the status, and that the body contains `gist` (ignoring case) when one is given.
    fn expect(&mut self, case: &str, reply: Result<Reply, String>, status: u16, gist: Option<&str>) -> Option<Reply> {
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
    fn still_serving(&mut self, agent: &mut Agent, after: &str) -> bool {
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

    fn finish(self, test: &str) {
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
// A raw HTTP/1.1 client: exact bytes on the wire (no URL normalisation of `..` or `%2E%2E`), non-UTF-8
// bodies, chunked uploads, lying Content-Length headers.

#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
    elapsed: Duration,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn short_body(&self) -> String {
        let text = self.body_text();
        if text.len() > 300 {
            let cut = (0..=300).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            format!("{}… ({} bytes)", &text[..cut], self.body.len())
        } else {
            text
        }
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

fn addr(ip: &str) -> SocketAddr {
    format!("{ip}:8500").parse().expect("agent address")
}

fn connect(ip: &str) -> std::io::Result<TcpStream> {
    TcpStream::connect_timeout(&addr(ip), Duration::from_secs(5))
}

/// Where the head ends and how long the body is, once enough of the answer has arrived.
fn parse_complete(buf: &[u8]) -> Option<(usize, Option<Vec<u8>>)> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let rest = &buf[head_end..];
    if head.contains("transfer-encoding: chunked") {
        return Some((head_end, dechunk(rest)));
    }
    let length = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok());
    match length {
        Some(n) if rest.len() >= n => Some((head_end, Some(rest[..n].to_vec()))),
        Some(_) => Some((head_end, None)),
        // No length and not chunked: the body runs to the close.
        None => Some((head_end, None)),
    }
}

/// A complete chunked body, decoded, or `None` while more is to come.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if rest.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Sends `head` then `body` (from another thread, so an early answer such as a 413 is read while the
/// body is still being written) and reads one answer.
fn raw_exchange(ip: &str, head: Vec<u8>, body: Vec<u8>, timeout: Duration) -> Result<Reply, String> {
    let started = Instant::now();
    let mut stream = connect(ip).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    writer.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let sender = std::thread::spawn(move || {
        // The server may answer and close before taking everything: a failed write is not an answer.
        let _ = writer.write_all(&head).and_then(|()| writer.write_all(&body));
    });
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let outcome = loop {
        if started.elapsed() > timeout {
            break Err(format!("no complete answer within {timeout:?} (got {} bytes)", buf.len()));
        }
        match stream.read(&mut chunk) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if let Some((_, Some(_))) = parse_complete(&buf) {
                    break Ok(());
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if buf.is_empty() && matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break Err(format!("no answer within {timeout:?} (connection still open)"))
            }
            Err(e) if buf.is_empty() => break Err(format!("read after {:?}: {e}", started.elapsed())),
            // Reset after (part of) an answer: parse what came.
            Err(_) => break Ok(()),
        }
    };
    let elapsed = started.elapsed();
    let _ = stream.shutdown(Shutdown::Both);
    let _ = sender.join();
    outcome?;
    let (head_end, body) = parse_complete(&buf)
        .ok_or_else(|| format!("connection closed without an answer head ({} bytes)", buf.len()))?;
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let body = body.unwrap_or_else(|| buf[head_end..].to_vec());
    Ok(Reply { status, head, body, elapsed })
}

/// One request with an exact target (already percent-encoded as wanted) and a body with Content-Length.
fn raw(ip: &str, method: &str, target: &str, body: &[u8]) -> Result<Reply, String> {
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {ip}:8500\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    raw_exchange(ip, head.into_bytes(), body.to_vec(), Duration::from_secs(15))
}

fn raw_get(ip: &str, target: &str) -> Result<Reply, String> {
    let head = format!("GET {target} HTTP/1.1\r\nHost: {ip}:8500\r\nConnection: close\r\n\r\n");
    raw_exchange(ip, head.into_bytes(), Vec::new(), Duration::from_secs(15))
}

/// `body` sent with `Transfer-Encoding: chunked` (no Content-Length), in 64 KiB chunks.
fn raw_chunked(ip: &str, method: &str, target: &str, body: &[u8]) -> Result<Reply, String> {
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {ip}:8500\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let mut encoded = Vec::with_capacity(body.len() + body.len() / 1000 + 16);
    for chunk in body.chunks(64 * 1024) {
        encoded.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        encoded.extend_from_slice(chunk);
        encoded.extend_from_slice(b"\r\n");
    }
    encoded.extend_from_slice(b"0\r\n\r\n");
    raw_exchange(ip, head.into_bytes(), encoded, Duration::from_secs(20))
}

/// Every byte but ASCII letters and digits percent-encoded (so `.` becomes `%2E`).
fn pct(text: &[u8]) -> String {
    text.iter()
        .map(|&b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------
// What the agent holds: the catalog's services and nodes, the agent's services and the KV store.

#[derive(Clone, Debug, PartialEq, Eq)]
struct Snapshot {
    /// `/v1/catalog/services`: name → sorted tags.
    catalog_services: BTreeMap<String, Vec<String>>,
    /// `/v1/catalog/nodes`: node names.
    catalog_nodes: BTreeSet<String>,
    /// `/v1/agent/services`: map key → (ID, Service, Port, sorted Tags).
    agent_services: BTreeMap<String, (String, String, u64, Vec<String>)>,
    /// `/v1/kv/?recurse`: key → (base64 Value or "" when null, Flags).
    kv: BTreeMap<String, (String, u64)>,
}

fn fetch_json(ip: &str, target: &str) -> Value {
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
    fn take(agent: &Agent) -> Snapshot {
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
    fn with_agent_service(mut self, id: &str, name: &str, port: u64) -> Snapshot {
        self.agent_services.insert(id.to_string(), (id.to_string(), name.to_string(), port, Vec::new()));
        self.catalog_services.entry(name.to_string()).or_default();
        self
    }

    fn with_kv(mut self, key: &str, value: &[u8]) -> Snapshot {
        let encoded = if value.is_empty() { String::new() } else { base64(value) };
        self.kv.insert(key.to_string(), (encoded, 0));
        self
    }

    /// Compares with what the agent holds now, naming every difference.
    fn check_against(&self, agent: &Agent, matrix: &mut Matrix) {
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

const REGISTER: &str = "/v1/agent/service/register";
const CATALOG_REGISTER: &str = "/v1/catalog/register";
const CHECK_REGISTER: &str = "/v1/agent/check/register";

fn put_bytes(agent: &Agent, path: &str, body: &[u8]) -> Result<Reply, String> {
    raw(&agent.ip, "PUT", path, body)
}

// ---------------------------------------------------------------------------------------------------
// Malformed JSON, wrong types, unknown fields

#[test]
fn malformed_mistyped_and_unknown_field_bodies_get_400_and_change_nothing() {
    let (_lock, mut cluster) = dev(96);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    let before = Snapshot::take(agent);

    let decode = Some("Request decode failed");
    let cases: &[(&str, &str, Option<&str>)] = &[
        // PUT /v1/agent/service/register
        (REGISTER, "{\"Name\":", decode),
        (REGISTER, "{\"Name\":\"x\",}", decode),
        (REGISTER, "{'Name':'x'}", decode),
        (REGISTER, "", decode),
        (REGISTER, "[]", decode),
        (REGISTER, "\"just a string\"", decode),
        (REGISTER, "null", None),
        (REGISTER, r#"{"Name":"x","Port":"eighty"}"#, Some("Port")),
        (REGISTER, r#"{"Name":"x","Port":"80"}"#, Some("Port")),
        (REGISTER, r#"{"Name":5}"#, Some("Name")),
        (REGISTER, r#"{"Name":"x","Tags":"prod"}"#, Some("Tags")),
        (REGISTER, r#"{"Name":"x","Tags":[1,2]}"#, Some("Tags")),
        (REGISTER, r#"{"Name":"x","Meta":["a"]}"#, Some("Meta")),
        (REGISTER, r#"{"Name":"x","Meta":{"k":1}}"#, Some("Meta")),
        (REGISTER, r#"{"Name":"x","EnableTagOverride":"yes"}"#, Some("EnableTagOverride")),
        (REGISTER, r#"{"Name":"x","Check":"http://x"}"#, Some("Check")),
        (REGISTER, r#"{"Name":"x","Weights":{"Passing":"ten"}}"#, Some("Passing")),
        (REGISTER, r#"{"Name":"x","Bogus":1}"#, Some("unknown field \"Bogus\"")),
        (REGISTER, r#"{"Name":"x","Check":{"TTL":"10s","Bogus":1}}"#, Some("unknown field \"Bogus\"")),
        (REGISTER, r#"{"Name":"x","Weights":{"Passing":1,"Bogus":1}}"#, Some("unknown field \"Bogus\"")),
        // PUT /v1/catalog/register
        (CATALOG_REGISTER, "{\"Node\":", decode),
        (CATALOG_REGISTER, "", decode),
        (CATALOG_REGISTER, "[]", decode),
        (CATALOG_REGISTER, r#"{"Node":5,"Address":"10.0.0.1"}"#, Some("Node")),
        (CATALOG_REGISTER, r#"{"Node":"n","Address":"10.0.0.1","NodeMeta":{"k":1}}"#, Some("NodeMeta")),
        (
            CATALOG_REGISTER,
            r#"{"Node":"n","Address":"10.0.0.1","Service":{"Service":"s","Port":"eighty"}}"#,
            Some("Port"),
        ),
        (CATALOG_REGISTER, r#"{"Node":"n","Address":"10.0.0.1","TaggedAddresses":{"lan":{"Address":"x"}}}"#, None),
        (CATALOG_REGISTER, r#"{"Node":"n","Address":"10.0.0.1","Bogus":1}"#, Some("unknown field \"Bogus\"")),
        (
            CATALOG_REGISTER,
            r#"{"Node":"n","Address":"10.0.0.1","Service":{"Service":"s","Bogus":1}}"#,
            Some("unknown field \"Bogus\""),
        ),
        (
            CATALOG_REGISTER,
            r#"{"Node":"n","Address":"10.0.0.1","Check":{"CheckID":"c","Bogus":1}}"#,
            Some("unknown field \"Bogus\""),
        ),
        // PUT /v1/agent/check/register
        (CHECK_REGISTER, "{\"Name\":", decode),
        (CHECK_REGISTER, r#"{"Name":"c","TTL":"10s","Bogus":1}"#, Some("unknown field \"Bogus\"")),
    ];
    for &(path, body, gist) in cases {
        let case = format!("PUT {path} {body:?}");
        m.expect(&case, put_bytes(agent, path, body.as_bytes()), 400, gist);
        if !m.still_serving(agent, &case) {
            break;
        }
    }
    // The valid writes: one agent service and one external node with a service.
    let valid = r#"{"ID":"good-1","Name":"good","Port":8080}"#;
    m.expect("valid service register", put_bytes(agent, REGISTER, valid.as_bytes()), 200, None);
    let valid_node =
        r#"{"Node":"ext-1","Address":"10.9.9.9","Service":{"ID":"ext-svc-1","Service":"ext-svc","Port":1}}"#;
    let reply =
        m.expect("valid catalog register", put_bytes(agent, CATALOG_REGISTER, valid_node.as_bytes()), 200, None);
    if let Some(reply) = reply {
        m.check("catalog register answers true", reply.body_text().trim() == "true", reply.short_body());
    }

    let mut expected = before.with_agent_service("good-1", "good", 8080);
    expected.catalog_services.entry("ext-svc".into()).or_default();
    expected.catalog_nodes.insert("ext-1".into());
    expected.check_against(agent, &mut m);
    m.finish("malformed_mistyped_and_unknown_field_bodies_get_400_and_change_nothing");
}

// ---------------------------------------------------------------------------------------------------
// Deep nesting

fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
    let mut out = String::with_capacity((open.len() + close.len()) * depth + inner.len());
    for _ in 0..depth {
        out.push_str(open);
    }
    out.push_str(inner);
    for _ in 0..depth {
        out.push_str(close);
    }
    out
}

#[test]
fn deeply_nested_json_gets_400_without_crashing() {
    let (_lock, mut cluster) = dev(96);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    let before = Snapshot::take(agent);

    // Every body stays under 512 KiB, so that it is the nesting that gets refused, not the size.
    let depth = 100_000;
    let arrays = nested("[", "", "]", depth);
    let unclosed = "[".repeat(500_000);
    let in_meta = format!(r#"{{"Name":"deep","Meta":{}}}"#, nested(r#"{"":"#, r#""v""#, "}", depth));
    let in_tags = format!(r#"{{"Name":"deep","Tags":{}}}"#, nested("[", r#""t""#, "]", depth));
    let in_check = format!(r#"{{"Name":"deep","Check":{}}}"#, nested(r#"{"TTL":"#, r#""10s""#, "}", 60_000));
    let in_node_meta =
        format!(r#"{{"Node":"deep","Address":"10.0.0.1","NodeMeta":{}}}"#, nested(r#"{"":"#, "1", "}", depth));
    let objects = nested(r#"{"":"#, "1", "}", depth);
    let decode = Some("Request decode failed");
    let cases: Vec<(&str, &str, &str, Option<&str>)> = vec![
        (REGISTER, "100k nested arrays", &arrays, decode),
        (REGISTER, "500k unclosed arrays", &unclosed, decode),
        (REGISTER, "100k nested objects", &objects, decode),
        (REGISTER, "100k nested objects in Meta", &in_meta, decode),
        (REGISTER, "100k nested arrays in Tags", &in_tags, decode),
        (REGISTER, "60k nested objects in Check", &in_check, decode),
        (CATALOG_REGISTER, "100k nested arrays", &arrays, decode),
        (CATALOG_REGISTER, "100k nested objects in NodeMeta", &in_node_meta, decode),
        (CHECK_REGISTER, "100k nested arrays", &arrays, decode),
        ("/v1/session/create", "100k nested arrays", &arrays, None),
        ("/v1/txn", "100k nested arrays", &arrays, None),
        ("/v1/catalog/deregister", "100k nested objects", &objects, None),
    ];
    for (path, what, body, gist) in cases {
        assert!(body.len() < 512 * 1024, "{what} is {} bytes: over the size limits", body.len());
        let case = format!("PUT {path} with {what}");
        let reply = m.expect(&case, put_bytes(agent, path, body.as_bytes()), 400, gist);
        if let Some(reply) = reply {
            m.check(
                &format!("{case} answers promptly"),
                reply.elapsed < Duration::from_secs(5),
                format!("{:?}", reply.elapsed),
            );
        }
        if !m.still_serving(agent, &case) {
            break;
        }
    }

    // A KV value is opaque bytes: deep JSON in it is stored as is.
    let reply = m.expect(
        "PUT /v1/kv/deep with 100k nested arrays",
        put_bytes(agent, "/v1/kv/deep", arrays.as_bytes()),
        200,
        None,
    );
    if reply.is_some() {
        let read = raw_get(&agent.ip, "/v1/kv/deep?raw");
        let same = matches!(&read, Ok(r) if r.status == 200 && r.body == arrays.as_bytes());
        m.check(
            "kv deep value reads back byte for byte",
            same,
            format!("{:?}", read.map(|r| (r.status, r.body.len()))),
        );
    }
    m.still_serving(agent, "the deep KV value");

    before.with_kv("deep", arrays.as_bytes()).check_against(agent, &mut m);
    m.finish("deeply_nested_json_gets_400_without_crashing");
}

// ---------------------------------------------------------------------------------------------------
// Invalid UTF-8

#[test]
fn invalid_utf8_in_json_bodies_gets_400_while_kv_values_stay_bytes() {
    let (_lock, mut cluster) = dev(96);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    let before = Snapshot::take(agent);

    let cases: &[(&str, &str, &[u8])] = &[
        (REGISTER, "bare 0xFF 0xFE", b"\xff\xfe"),
        (REGISTER, "0xFF outside a string", b"{\"Name\":\"x\",\xff}"),
        (REGISTER, "0xFF 0xFE in Name", b"{\"Name\":\"\xff\xfe\"}"),
        (REGISTER, "truncated sequence in a tag", b"{\"Name\":\"x\",\"Tags\":[\"\xc3\x28\"]}"),
        (REGISTER, "overlong encoding in ID", b"{\"ID\":\"\xc0\xaf\",\"Name\":\"x\"}"),
        (REGISTER, "UTF-16 surrogate bytes in Meta", b"{\"Name\":\"x\",\"Meta\":{\"k\":\"\xed\xa0\x80\"}}"),
        (CATALOG_REGISTER, "0xFF in Node", b"{\"Node\":\"n\xff\",\"Address\":\"10.0.0.1\"}"),
        (CHECK_REGISTER, "0xFF in Name", b"{\"Name\":\"c\xff\",\"TTL\":\"10s\"}"),
    ];
    for &(path, what, body) in cases {
        let case = format!("PUT {path} with {what}");
        m.expect(&case, put_bytes(agent, path, body), 400, None);
        if !m.still_serving(agent, &case) {
            break;
        }
    }

    // KV values are bytes, not text: stored and read back exactly.
    let binary: Vec<u8> = (0..=255u8).rev().chain([0xff, 0xfe, 0x00, 0xc3, 0x28]).collect();
    let reply =
        m.expect("PUT /v1/kv/binary with non-UTF-8 bytes", put_bytes(agent, "/v1/kv/binary", &binary), 200, None);
    if reply.is_some() {
        let read = raw_get(&agent.ip, "/v1/kv/binary?raw");
        let same = matches!(&read, Ok(r) if r.status == 200 && r.body == binary);
        m.check("binary kv value reads back raw, byte for byte", same, format!("{read:?}"));
        let read = raw_get(&agent.ip, "/v1/kv/binary").ok().and_then(|r| r.json());
        let value = read.as_ref().map(|v| v[0]["Value"].clone());
        m.check("binary kv value reads back as base64", value == Some(json!(base64(&binary))), format!("{value:?}"));
    }
    m.still_serving(agent, "the binary KV value");

    before.with_kv("binary", &binary).check_against(agent, &mut m);
    m.finish("invalid_utf8_in_json_bodies_gets_400_while_kv_values_stay_bytes");
}

// ---------------------------------------------------------------------------------------------------
// Ports

#[test]
fn negative_huge_and_fractional_ports_get_400() {
    let (_lock, mut cluster) = dev(96);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    let before = Snapshot::take(agent);

    for port in ["-1", "65536", "70000", "1e20", "99999999999999999999", "80.5", "-9223372036854775809"] {
        let case = format!("agent register Port {port}");
        let body = format!(r#"{{"ID":"p","Name":"ports","Port":{port}}}"#);
        m.expect(&case, put_bytes(agent, REGISTER, body.as_bytes()), 400, Some("port"));
        m.still_serving(agent, &case);

        let case = format!("catalog register Service.Port {port}");
        let body =
            format!(r#"{{"Node":"pn","Address":"10.0.0.1","Service":{{"ID":"p","Service":"ports","Port":{port}}}}}"#);
        m.expect(&case, put_bytes(agent, CATALOG_REGISTER, body.as_bytes()), 400, Some("port"));
        m.still_serving(agent, &case);

        let case = format!("agent register TaggedAddresses.lan.Port {port}");
        let body = format!(
            r#"{{"ID":"p","Name":"ports","Port":1,"TaggedAddresses":{{"lan":{{"Address":"10.0.0.1","Port":{port}}}}}}}"#
        );
        m.expect(&case, put_bytes(agent, REGISTER, body.as_bytes()), 400, Some("port"));
        m.still_serving(agent, &case);
    }
    // The edges of the range are valid.
    for (id, port) in [("p0", 0), ("pmax", 65535)] {
        let body = format!(r#"{{"ID":"{id}","Name":"ports","Port":{port}}}"#);
        m.expect(&format!("agent register Port {port}"), put_bytes(agent, REGISTER, body.as_bytes()), 200, None);
    }

    before.with_agent_service("p0", "ports", 0).with_agent_service("pmax", "ports", 65535).check_against(agent, &mut m);
    m.finish("negative_huge_and_fractional_ports_get_400");
}

// ---------------------------------------------------------------------------------------------------
// Durations

#[test]
fn bad_check_durations_get_400() {
    let (_lock, mut cluster) = dev(96);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    let before = Snapshot::take(agent);

    // (duration, gist): Go's time.ParseDuration refuses all but "-1s", which Consul's check validation
    // refuses as not > 0.
    let durations: &[(&str, &str)] = &[
        ("\"15\"", "invalid duration"),
        ("\"1y\"", "invalid duration"),
        ("\"\"", "invalid duration"),
        ("\"10 s\"", "invalid duration"),
        ("\"ten seconds\"", "invalid duration"),
        ("\"99999999999h\"", "invalid duration"),
        ("\"-1s\"", "must be > 0"),
        ("-1", "must be > 0"),
        ("true", "Interval"),
    ];
    for &(duration, gist) in durations {
        let ttl_gist = if gist == "Interval" { "TTL" } else { gist };
        let bodies = [
            (
                REGISTER,
                format!(r#"{{"ID":"d","Name":"dur","Check":{{"HTTP":"http://127.0.0.1:1/","Interval":{duration}}}}}"#),
                gist,
            ),
            (
                REGISTER,
                format!(r#"{{"ID":"d","Name":"dur","Checks":[{{"TCP":"127.0.0.1:1","Interval":{duration}}}]}}"#),
                gist,
            ),
            (REGISTER, format!(r#"{{"ID":"d","Name":"dur","Check":{{"TTL":{duration}}}}}"#), ttl_gist),
            (REGISTER, format!(r#"{{"ID":"d","Name":"dur","checks":[{{"ttl":{duration}}}]}}"#), ttl_gist),
            (CHECK_REGISTER, format!(r#"{{"Name":"dc","TTL":{duration}}}"#), ttl_gist),
            (CHECK_REGISTER, format!(r#"{{"Name":"dc","HTTP":"http://127.0.0.1:1/","Interval":{duration}}}"#), gist),
        ];
        for (path, body, gist) in bodies {
            let case = format!("PUT {path} {body}");
            m.expect(&case, put_bytes(agent, path, body.as_bytes()), 400, Some(gist));
            if !m.still_serving(agent, &case) {
                break;
            }
        }
    }
    // Timeout and DeregisterCriticalServiceAfter are Go durations too.
    for (field, value) in [("Timeout", "\"15\""), ("Timeout", "\"1y\""), ("DeregisterCriticalServiceAfter", "\"1y\"")] {
        let body = format!(
            r#"{{"ID":"d","Name":"dur","Check":{{"HTTP":"http://127.0.0.1:1/","Interval":"10s","{field}":{value}}}}}"#
        );
        m.expect(
            &format!("PUT {REGISTER} {body}"),
            put_bytes(agent, REGISTER, body.as_bytes()),
            400,
            Some("invalid duration"),
        );
    }
    // The catalog's check definitions parse their durations as well.
    let body = r#"{"Node":"dn","Address":"10.0.0.1","Check":{"CheckID":"c","Name":"c","Definition":{"HTTP":"http://x","Interval":"1y"}}}"#;
    m.expect(
        &format!("PUT {CATALOG_REGISTER} {body}"),
        put_bytes(agent, CATALOG_REGISTER, body.as_bytes()),
        400,
        Some("invalid duration"),
    );
    m.still_serving(agent, "bad durations");

    // Valid durations, as strings and as nanoseconds, are accepted.
    let valid = r#"{"ID":"d-ok","Name":"dur","Checks":[{"TTL":"1m30s"},{"HTTP":"http://127.0.0.1:1/","Interval":15000000000}]}"#;
    m.expect("valid durations", put_bytes(agent, REGISTER, valid.as_bytes()), 200, None);
    let checks = raw_get(&agent.ip, "/v1/agent/checks").ok().and_then(|r| r.json()).unwrap_or(Value::Null);
    let ids: BTreeSet<&String> = checks.as_object().map(|o| o.keys().collect()).unwrap_or_default();
    let want: BTreeSet<String> = ["service:d-ok:1".to_string(), "service:d-ok:2".to_string()].into();
    m.check("only the valid service's checks exist", ids == want.iter().collect(), format!("{ids:?}"));

    before.with_agent_service("d-ok", "dur", 0).check_against(agent, &mut m);
    m.finish("bad_check_durations_get_400");
}

// ---------------------------------------------------------------------------------------------------
// Oversized bodies

#[test]
fn oversized_bodies_get_413() {
    let (_lock, mut cluster) = dev(97);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    let before = Snapshot::take(agent);
    let ip = agent.ip.clone();
    const MIB: usize = 1 << 20;
    const KV_MAX: usize = 512 * 1024;

    // A syntactically valid service definition of exactly `size` bytes (a long Meta value).
    let service_of_size = |size: usize| {
        let frame = r#"{"ID":"big","Name":"big","Meta":{"k":""}}"#;
        format!(r#"{{"ID":"big","Name":"big","Meta":{{"k":"{}"}}}}"#, "x".repeat(size - frame.len()))
    };
    let over = service_of_size(MIB + 1);
    let huge = service_of_size(4 * MIB);
    let kv_over = vec![b'v'; KV_MAX + 1];
    let kv_huge = vec![b'v'; 2 * MIB];

    let cases: Vec<(&str, &str, &[u8], Option<&str>)> = vec![
        ("PUT", REGISTER, over.as_bytes(), None),
        ("PUT", REGISTER, huge.as_bytes(), None),
        ("PUT", CATALOG_REGISTER, huge.as_bytes(), None),
        ("PUT", "/v1/kv/x", &kv_over, Some("too large")),
        ("PUT", "/v1/kv/x", &kv_huge, None),
        ("PUT", "/v1/txn", huge.as_bytes(), None),
    ];
    for (method, path, body, gist) in cases {
        let case = format!("{method} {path} with a {} byte body (Content-Length)", body.len());
        m.expect(&case, raw(&ip, method, path, body), 413, gist);
        m.still_serving(agent, &case);
        let case = format!("{method} {path} with a {} byte body (chunked)", body.len());
        m.expect(&case, raw_chunked(&ip, method, path, body), 413, gist);
        m.still_serving(agent, &case);
    }

    // A Content-Length of 10 GiB is refused from the header, without waiting for a body that never comes.
    for path in [REGISTER, "/v1/kv/x"] {
        let head = format!(
            "PUT {path} HTTP/1.1\r\nHost: {ip}:8500\r\nContent-Length: 10737418240\r\nConnection: close\r\n\r\n{{"
        );
        let case = format!("PUT {path} declaring a 10 GiB Content-Length");
        let reply =
            m.expect(&case, raw_exchange(&ip, head.into_bytes(), Vec::new(), Duration::from_secs(15)), 413, None);
        if let Some(reply) = reply {
            m.check(
                &format!("{case} answers at once"),
                reply.elapsed < Duration::from_secs(3),
                format!("after {:?}", reply.elapsed),
            );
        }
        m.still_serving(agent, &case);
    }

    // The limits themselves are allowed: a 512 KiB value, and a large (256 KiB) service definition.
    let kv_max = vec![b'm'; KV_MAX];
    m.expect("PUT /v1/kv/max with exactly 512 KiB", raw(&ip, "PUT", "/v1/kv/max", &kv_max), 200, None);
    let read = raw_get(&ip, "/v1/kv/max?raw");
    m.check(
        "512 KiB value reads back",
        matches!(&read, Ok(r) if r.body == kv_max),
        format!("{:?}", read.map(|r| r.body.len())),
    );
    let large = service_of_size(256 * 1024);
    m.expect("PUT service register of 256 KiB", raw(&ip, "PUT", REGISTER, large.as_bytes()), 200, None);
    m.still_serving(agent, "the bodies at the limits");

    before.with_kv("max", &kv_max).with_agent_service("big", "big", 0).check_against(agent, &mut m);
    m.finish("oversized_bodies_get_413");
}

// ---------------------------------------------------------------------------------------------------
// index / wait query values

#[test]
fn invalid_index_and_wait_values_get_400_at_once() {
    let (_lock, mut cluster) = dev(97);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    let before = Snapshot::take(agent);
    let ip = agent.ip.clone();

    let cases: &[(&str, &str)] = &[
        ("index=abc", "Invalid index"),
        ("index=-1", "Invalid index"),
        ("index=1.5", "Invalid index"),
        ("index=0x10", "Invalid index"),
        ("index=18446744073709551616", "Invalid index"),
        ("index=1&wait=forever", "Invalid wait time"),
        ("wait=forever", "Invalid wait time"),
        ("index=1&wait=10", "Invalid wait time"),
        ("index=1&wait=1y", "Invalid wait time"),
        ("index=1&wait=-", "Invalid wait time"),
    ];
    for path in ["/v1/catalog/services", "/v1/kv/watched", "/v1/health/service/consul", "/v1/catalog/nodes"] {
        for &(query, gist) in cases {
            let target = format!("{path}?{query}");
            let case = format!("GET {target}");
            let reply = m.expect(&case, raw_get(&ip, &target), 400, Some(gist));
            if let Some(reply) = reply {
                m.check(
                    &format!("{case} answers at once"),
                    reply.elapsed < Duration::from_secs(2),
                    format!("{:?}", reply.elapsed),
                );
            }
        }
        m.still_serving(agent, &format!("bad index/wait on {path}"));
    }

    before.check_against(agent, &mut m);
    m.finish("invalid_index_and_wait_values_get_400_at_once");
}

// ---------------------------------------------------------------------------------------------------
// Unsupported methods

#[test]
fn unsupported_methods_get_405_naming_the_method() {
    let (_lock, mut cluster) = dev(97);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    assert_eq!(http::put(&agent.url("/v1/kv/x"), "keep").unwrap().status, 200);
    let before = Snapshot::take(agent);
    let ip = agent.ip.clone();

    // (method, path, a method the path does allow)
    let cases: &[(&str, &str, &str)] = &[
        ("DELETE", "/v1/agent/services", "GET"),
        ("PUT", "/v1/agent/services", "GET"),
        ("POST", "/v1/catalog/services", "GET"),
        ("DELETE", "/v1/catalog/services", "GET"),
        ("PATCH", "/v1/kv/x", "PUT"),
        ("POST", "/v1/kv/x", "PUT"),
        ("POST", REGISTER, "PUT"),
        ("GET", REGISTER, "PUT"),
        ("DELETE", REGISTER, "PUT"),
        ("PUT", "/v1/status/leader", "GET"),
        ("POST", "/v1/catalog/register", "PUT"),
        ("PATCH", "/v1/health/service/consul", "GET"),
    ];
    for &(method, path, allowed) in cases {
        let case = format!("{method} {path}");
        let body: &[u8] = if matches!(method, "GET" | "DELETE") { b"" } else { b"{}" };
        let gist = format!("method {method} not allowed");
        let reply = m.expect(&case, raw(&ip, method, path, body), 405, Some(&gist));
        if let Some(reply) = reply {
            let allow = reply.header("allow").unwrap_or_default().to_string();
            m.check(
                &format!("{case} names the allowed methods in Allow"),
                allow.contains(allowed),
                format!("Allow: {allow:?}"),
            );
        }
        m.still_serving(agent, &case);
    }

    before.check_against(agent, &mut m);
    m.finish("unsupported_methods_get_405_naming_the_method");
}

// ---------------------------------------------------------------------------------------------------
// Control characters and `..` in service IDs and KV keys

#[test]
fn control_characters_and_dot_dot_in_ids_and_keys_are_kept_exactly_or_refused() {
    let (_lock, mut cluster) = dev(97);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    let before = Snapshot::take(agent);
    let ip = agent.ip.clone();
    let mut expected = before.clone();

    // Service IDs: registered and read back exactly (list, by ID, catalog), or refused with 400.
    let ids = [
        "nul\u{0}byte",
        "line\nbreak",
        "carriage\rreturn",
        "tab\there",
        "bell\u{7}",
        "..",
        ".",
        "../../etc/passwd",
        "a/../b",
        "a/b",
        "with space",
        "percent%2Fliteral",
        "q?x=1#frag",
        "unicode-✓-ü",
    ];
    let mut accepted = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        let case = format!("register service ID {id:?}");
        let body = json!({"ID": id, "Name": "weird", "Port": 1000 + i}).to_string();
        match put_bytes(agent, REGISTER, body.as_bytes()) {
            Err(e) => m.fail(&case, format!("no HTTP answer: {e}")),
            Ok(reply) if reply.status == 400 => m.check(&case, true, ""),
            Ok(reply) if reply.status == 200 => {
                accepted.insert(id.to_string());
                expected = expected.with_agent_service(id, "weird", 1000 + i as u64);
                let target = format!("/v1/agent/service/{}", pct(id.as_bytes()));
                let read = raw_get(&ip, &target);
                let got = read.as_ref().ok().and_then(|r| r.json()).map(|v| v["ID"].clone());
                m.check(
                    &format!("{case}: GET {target} reads it back exactly"),
                    got == Some(json!(id)),
                    format!("{:?}", read.map(|r| (r.status, r.short_body()))),
                );
            }
            Ok(reply) => m.fail(&case, format!("expected 200 or 400, got {} {:?}", reply.status, reply.short_body())),
        }
        m.still_serving(agent, &case);
    }
    let rows = raw_get(&ip, "/v1/catalog/service/weird").ok().and_then(|r| r.json()).unwrap_or(json!([]));
    let in_catalog: BTreeSet<String> =
        rows.as_array().into_iter().flatten().filter_map(|r| r["ServiceID"].as_str().map(str::to_string)).collect();
    m.check(
        "the catalog holds exactly the accepted IDs",
        in_catalog == accepted,
        format!("{in_catalog:?} vs {accepted:?}"),
    );
    let agent_ids: BTreeSet<String> = fetch_json(&ip, "/v1/agent/services")
        .as_object()
        .map(|o| {
            o.values()
                .filter(|s| s["Service"] == "weird")
                .filter_map(|s| s["ID"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    m.check(
        "/v1/agent/services holds exactly the accepted IDs",
        agent_ids == accepted,
        format!("{agent_ids:?} vs {accepted:?}"),
    );
    eprintln!(
        "service IDs accepted: {accepted:?}; refused: {:?}",
        ids.iter().filter(|id| !accepted.contains(**id)).collect::<Vec<_>>()
    );

    // KV keys are the percent-decoded path, taken exactly: `..` is part of the key, not a step up.
    let keys: &[(&str, &str)] = &[
        ("/v1/kv/a/%2E%2E/b", "a/../b"),
        ("/v1/kv/%2E%2E", ".."),
        ("/v1/kv/%2E%2E/%2E%2E/etc/passwd", "../../etc/passwd"),
        ("/v1/kv/c/%2E/d", "c/./d"),
        ("/v1/kv/ctl%00nul", "ctl\u{0}nul"),
        ("/v1/kv/ctl%0Anewline", "ctl\nnewline"),
        ("/v1/kv/ctl%0D%0Acrlf", "ctl\r\ncrlf"),
        ("/v1/kv/ctl%09tab", "ctl\ttab"),
        ("/v1/kv/sp%20ace", "sp ace"),
    ];
    for &(target, key) in keys {
        let value = format!("value of {key:?}");
        let case = format!("PUT {target}");
        let reply = m.expect(&case, raw(&ip, "PUT", target, value.as_bytes()), 200, Some("true"));
        if reply.is_some() {
            expected = expected.with_kv(key, value.as_bytes());
            let read = raw_get(&ip, target);
            let entry = read.as_ref().ok().and_then(|r| r.json()).map(|v| v[0].clone()).unwrap_or(Value::Null);
            m.check(
                &format!("GET {target} reads back key {key:?}"),
                entry["Key"] == json!(key) && entry["Value"] == json!(base64(value.as_bytes())),
                format!("{:?}", read.map(|r| (r.status, r.short_body()))),
            );
        }
        m.still_serving(agent, &case);
    }
    // Nothing was written at the normalised paths.
    for normalised in ["/v1/kv/b", "/v1/kv/etc/passwd", "/v1/kv/c/d"] {
        let read = raw_get(&ip, normalised);
        m.check(
            &format!("GET {normalised} (the normalised key) is 404"),
            matches!(&read, Ok(r) if r.status == 404),
            format!("{:?}", read.map(|r| (r.status, r.short_body()))),
        );
    }
    // A key that is not UTF-8 once decoded: stored and read back at the same path, or 400.
    let case = "PUT /v1/kv/bad%FFutf8";
    match raw(&ip, "PUT", "/v1/kv/bad%FFutf8", b"v") {
        Ok(r) if r.status == 400 => m.check(case, true, ""),
        Ok(r) if r.status == 200 => {
            let read = raw_get(&ip, "/v1/kv/bad%FFutf8?raw");
            m.check(&format!("{case} reads back"), matches!(&read, Ok(r) if r.body == b"v"), format!("{read:?}"));
            // Whatever text the agent shows for that key, it is one new key holding "v".
            let now = Snapshot::take(agent);
            let new: Vec<(&String, &(String, u64))> =
                now.kv.iter().filter(|(k, _)| !expected.kv.contains_key(*k)).collect();
            m.check(
                &format!("{case} adds one key holding \"v\""),
                new.len() == 1 && new[0].1 .0 == base64(b"v"),
                format!("{new:?}"),
            );
            if let Some((key, _)) = new.first() {
                expected = expected.with_kv(key, b"v");
            }
        }
        other => m.fail(case, format!("expected 200 or 400, got {other:?}")),
    }
    m.still_serving(agent, case);

    // Raw control bytes in the request line are not HTTP: 400.
    for (what, target) in
        [("0x01", "/v1/kv/ctl\u{1}raw"), ("DEL", "/v1/kv/ctl\u{7f}raw"), ("NUL", "/v1/kv/ctl\u{0}raw")]
    {
        let case = format!("raw {what} byte in the request target");
        m.expect(&case, raw_get(&ip, target), 400, None);
        m.still_serving(agent, &case);
    }

    expected.check_against(agent, &mut m);
    m.finish("control_characters_and_dot_dot_in_ids_and_keys_are_kept_exactly_or_refused");
}

// ---------------------------------------------------------------------------------------------------
// Slowloris

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slow {
    /// Connects and sends nothing.
    Idle,
    /// Sends half a request line and stops.
    Stalled,
    /// Sends the request line and a header, then one byte of a header value every second, forever.
    Trickle,
}

struct SlowConn {
    kind: Slow,
    stream: TcpStream,
    opened: Instant,
    closed_after: Option<Duration>,
    answer: Vec<u8>,
}

impl SlowConn {
    /// Whether the server has closed the connection (reading whatever it sent first).
    fn poll_closed(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => self.answer.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
    }
}

#[test]
fn slowloris_connections_neither_starve_the_agent_nor_stay_open_forever() {
    let (_lock, mut cluster) = dev(98);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    let before = Snapshot::take(agent);
    let ip = agent.ip.clone();
    // Consul (Go's net/http with a ReadHeaderTimeout) closes these; a bound of a minute is generous.
    let bound = Duration::from_secs(60);

    // 140 connections: under Consul's default of 200 concurrent connections per client address.
    let mut conns = Vec::new();
    for (kind, count) in [(Slow::Trickle, 100), (Slow::Idle, 20), (Slow::Stalled, 20)] {
        for _ in 0..count {
            let mut stream = connect(&ip).expect("connect a slow connection");
            let start: &[u8] = match kind {
                Slow::Idle => b"",
                Slow::Stalled => b"GET /v1/status/le",
                Slow::Trickle => b"GET /v1/status/leader HTTP/1.1\r\nHost: slow\r\nX-Slow: ",
            };
            stream.write_all(start).expect("start a slow request");
            stream.set_nonblocking(true).expect("non-blocking");
            conns.push(SlowConn { kind, stream, opened: Instant::now(), closed_after: None, answer: Vec::new() });
        }
    }
    let conns = Arc::new(Mutex::new(conns));

    // One thread trickles a byte a second into every open trickle connection and notes when each closes.
    let started = Instant::now();
    let watcher = {
        let conns = conns.clone();
        std::thread::spawn(move || {
            let mut last_trickle = Instant::now();
            while started.elapsed() < bound + Duration::from_secs(15) {
                let mut conns = conns.lock().unwrap();
                let trickle = last_trickle.elapsed() >= Duration::from_secs(1);
                for conn in conns.iter_mut().filter(|c| c.closed_after.is_none()) {
                    let mut closed = conn.poll_closed();
                    if !closed && trickle && conn.kind == Slow::Trickle {
                        closed = matches!(conn.stream.write(b"a"), Err(e) if e.kind() != ErrorKind::WouldBlock);
                    }
                    if closed {
                        conn.closed_after = Some(conn.opened.elapsed());
                    }
                }
                if trickle {
                    last_trickle = Instant::now();
                }
                if conns.iter().all(|c| c.closed_after.is_some()) {
                    return;
                }
                drop(conns);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    // Meanwhile ordinary clients are served promptly.
    let mut slowest = Duration::ZERO;
    let mut served = 0;
    for i in 0..40 {
        let t = Instant::now();
        let reply = http::request("GET", &agent.url("/v1/status/leader"), None, Duration::from_secs(10));
        let took = t.elapsed();
        slowest = slowest.max(took);
        let ok = matches!(&reply, Ok(r) if r.status == 200) && took < Duration::from_secs(2);
        m.check(
            &format!("GET /v1/status/leader #{i} during the slowloris"),
            ok,
            format!("{:?} after {took:?}", reply.map(|r| r.status)),
        );
        served += usize::from(ok);
        if i == 20 {
            let reply = http::put(&agent.url("/v1/kv/during-slowloris"), "ok");
            m.check(
                "a KV write during the slowloris",
                matches!(&reply, Ok(r) if r.status == 200),
                format!("{:?}", reply.map(|r| r.status)),
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("slowloris: {served}/40 status reads served, slowest {slowest:?}");

    watcher.join().expect("watcher thread");
    let conns = conns.lock().unwrap();
    for kind in [Slow::Idle, Slow::Stalled, Slow::Trickle] {
        let of_kind: Vec<&SlowConn> = conns.iter().filter(|c| c.kind == kind).collect();
        let times: Vec<Duration> = of_kind.iter().filter_map(|c| c.closed_after).collect();
        let open = of_kind.len() - times.len();
        let answers: BTreeSet<String> = of_kind
            .iter()
            .filter(|c| !c.answer.is_empty())
            .map(|c| String::from_utf8_lossy(&c.answer).lines().next().unwrap_or_default().to_string())
            .collect();
        let within = times.iter().filter(|t| **t <= bound).count();
        let summary = format!(
            "{} connections: {} closed (earliest {:?}, latest {:?}), {} still open after {:?}; answers sent: {:?}",
            of_kind.len(),
            times.len(),
            times.iter().min(),
            times.iter().max(),
            open,
            started.elapsed(),
            answers
        );
        eprintln!("slowloris {kind:?}: {summary}");
        m.check(
            &format!("{kind:?} slowloris connections closed by the server within {bound:?}"),
            within == of_kind.len(),
            summary,
        );
    }
    drop(conns);
    m.still_serving(agent, "the slowloris");

    before.with_kv("during-slowloris", b"ok").check_against(agent, &mut m);
    m.finish("slowloris_connections_neither_starve_the_agent_nor_stay_open_forever");
}

// ---------------------------------------------------------------------------------------------------
// A thousand concurrent blocking queries

#[test]
fn a_thousand_blocking_queries_all_wake_on_one_write_and_the_agent_keeps_answering() {
    let (_lock, mut cluster) = dev(99);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    let ip = agent.ip.clone();
    const WATCHERS: usize = 1000;

    assert_eq!(http::put(&agent.url("/v1/kv/watched"), "v0").unwrap().status, 200);
    let before = Snapshot::take(agent);
    let index = http::get(&agent.url("/v1/kv/watched")).unwrap().index();
    assert!(index > 0);

    // Open every connection and send its blocking query.
    let request =
        format!("GET /v1/kv/watched?index={index}&wait=30s HTTP/1.1\r\nHost: {ip}:8500\r\nConnection: close\r\n\r\n");
    let opening = Instant::now();
    let mut streams = Vec::with_capacity(WATCHERS);
    let mut open_errors = Vec::new();
    for _ in 0..WATCHERS {
        match connect(&ip).and_then(|mut s| s.write_all(request.as_bytes()).map(|()| s)) {
            Ok(stream) => streams.push(stream),
            Err(e) => open_errors.push(e.to_string()),
        }
    }
    let sent_after = opening.elapsed();
    m.check(
        &format!("open {WATCHERS} blocking queries"),
        open_errors.is_empty(),
        format!("{} failed: {:?}", open_errors.len(), open_errors.first()),
    );
    eprintln!("blocking: {} queries sent in {sent_after:?}", streams.len());

    // None answers before the key changes, not even when another key does.
    let early = |streams: &[TcpStream]| -> Vec<String> {
        let mut early = Vec::new();
        let mut buf = [0u8; 512];
        for stream in streams {
            stream.set_nonblocking(true).expect("non-blocking");
            match stream.peek(&mut buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Ok(0) => early.push("closed".into()),
                Ok(n) => early.push(String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_string()),
                Err(e) => early.push(e.to_string()),
            }
            stream.set_nonblocking(false).expect("blocking");
        }
        early
    };
    std::thread::sleep(Duration::from_secs(2));
    let answered = early(&streams);
    m.check(
        "no blocking query answers before a change",
        answered.is_empty(),
        format!("{} answered early: {:?}", answered.len(), answered.iter().take(3).collect::<Vec<_>>()),
    );

    // The agent keeps answering everything else meanwhile.
    let mut slowest = Duration::ZERO;
    for (method, path, body) in [
        ("GET", "/v1/status/leader", None),
        ("GET", "/v1/catalog/services", None),
        ("PUT", "/v1/kv/other", Some(b"noise".as_slice())),
        ("GET", "/v1/kv/other", None),
        ("GET", "/v1/agent/self", None),
        ("GET", "/v1/health/service/consul", None),
    ] {
        let t = Instant::now();
        let reply = http::request(method, &agent.url(path), body, Duration::from_secs(10));
        let took = t.elapsed();
        slowest = slowest.max(took);
        m.check(
            &format!("{method} {path} with {WATCHERS} queries parked"),
            matches!(&reply, Ok(r) if r.status == 200) && took < Duration::from_secs(2),
            format!("{:?} after {took:?}", reply.map(|r| (r.status, r.body))),
        );
    }
    eprintln!("blocking: other requests answered, slowest {slowest:?}");
    std::thread::sleep(Duration::from_secs(1));
    let answered = early(&streams);
    m.check(
        "a write to another key wakes none of them",
        answered.is_empty(),
        format!("{} answered: {:?}", answered.len(), answered.iter().take(3).collect::<Vec<_>>()),
    );

    // One write wakes them all.
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    stream.set_read_timeout(Some(Duration::from_secs(45))).expect("read timeout");
                    let mut buf = Vec::new();
                    let result = stream.read_to_end(&mut buf);
                    (Instant::now(), result.map(|_| buf).map_err(|e| e.to_string()))
                })
                .expect("spawn a reader")
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let written = Instant::now();
    let reply = http::put(&agent.url("/v1/kv/watched"), "v1");
    m.check("the waking write", matches!(&reply, Ok(r) if r.status == 200), format!("{:?}", reply.map(|r| r.status)));

    let mut latencies = Vec::new();
    let mut wrong = Vec::new();
    for reader in readers {
        let (at, result) = reader.join().expect("reader thread");
        match result {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let status_ok = text.starts_with("HTTP/1.1 200");
                let new_index = text
                    .lines()
                    .find_map(|l| l.to_lowercase().strip_prefix("x-consul-index:").map(|v| v.trim().to_string()))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                if status_ok && new_index > index && text.contains(&base64(b"v1")) {
                    latencies.push(at.saturating_duration_since(written));
                } else {
                    wrong.push(text.lines().next().unwrap_or("empty answer").to_string());
                }
            }
            Err(e) => wrong.push(e),
        }
    }
    latencies.sort();
    let woken = latencies.len();
    let last = latencies.last().copied().unwrap_or_default();
    let median = latencies.get(woken / 2).copied().unwrap_or_default();
    eprintln!(
        "blocking: {woken}/{WATCHERS} woken with the new value, median {median:?}, last {last:?}; wrong: {}",
        wrong.len()
    );
    m.check(
        &format!("all {WATCHERS} blocking queries answer the new value"),
        woken == WATCHERS && wrong.is_empty(),
        format!("{woken} did; {} wrong, e.g. {:?}", wrong.len(), wrong.iter().take(3).collect::<Vec<_>>()),
    );
    m.check(
        "all of them within 5 s of the write",
        last < Duration::from_secs(5),
        format!("last after {last:?}, median {median:?}"),
    );
    m.still_serving(agent, "waking the blocking queries");

    before.with_kv("watched", b"v1").with_kv("other", b"noise").check_against(agent, &mut m);
    m.finish("a_thousand_blocking_queries_all_wake_on_one_write_and_the_agent_keeps_answering");
}
