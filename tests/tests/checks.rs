//! Checks that run: a real agent probes a real HTTP server and TCP port, expires TTL checks, runs scripts
//! only when allowed, reaps services critical for too long, and anti-entropy keeps the catalog equal to
//! what the agent holds. Each test takes its own loopback subnet (120–125, 127).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conclave_tests::harness::{eventually, Cluster};
use conclave_tests::http;
use serde_json::Value;

/// A tiny HTTP server answering every request with `status` and a short body, until `stop`.
struct Target {
    port: u16,
    status: Arc<AtomicU16>,
    stopped: Arc<AtomicBool>,
}

impl Target {
    fn start(ip: &str) -> Target {
        let listener = TcpListener::bind((ip, 0)).expect("bind the check target");
        let port = listener.local_addr().unwrap().port();
        let status = Arc::new(AtomicU16::new(200));
        let stopped = Arc::new(AtomicBool::new(false));
        let (status_in, stopped_in) = (status.clone(), stopped.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped_in.load(Ordering::SeqCst) {
                    return; // dropping the listener: connections are refused from now on
                }
                let Ok(mut stream) = stream else { continue };
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let code = status_in.load(Ordering::SeqCst);
                let body = format!("node_exporter says {code}");
                let reply = format!(
                    "HTTP/1.1 {code} Whatever\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes());
                let _ = stream.shutdown(Shutdown::Write);
            }
        });
        Target { port, status, stopped }
    }

    /// Stops serving: the next connection is the last one accepted, then the port is closed.
    fn stop(&self, ip: &str) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect((ip, self.port));
    }
}

fn check_status(agent_url: &str, check_id: &str) -> Option<(String, String)> {
    let checks = http::get(&format!("{agent_url}/v1/health/state/any")).ok()?.json();
    let check = checks.as_array()?.iter().find(|c| c["CheckID"] == check_id)?.clone();
    Some((check["Status"].as_str()?.to_string(), check["Output"].as_str()?.to_string()))
}

fn passing_instances(agent_url: &str, service: &str) -> Vec<String> {
    let reply = http::get(&format!("{agent_url}/v1/health/service/{service}?passing")).unwrap();
    reply.json().as_array().unwrap().iter().map(|e| e["Service"]["ID"].as_str().unwrap().to_string()).collect()
}

fn wait_status(agent_url: &str, check_id: &str, want: &str, within: Duration) -> String {
    eventually(within, &format!("{check_id} {want}"), || {
        check_status(agent_url, check_id).filter(|(status, _)| status == want).map(|(_, output)| output)
    })
}

#[test]
fn http_check_follows_a_real_server_up_and_down() {
    let cluster = Cluster::dev(120);
    let agent = cluster.agents[0].http();
    let target = Target::start("127.0.120.9");
    let payload = format!(
        r#"{{"ID":"node-exporter-1","Name":"node-exporter","Tags":["prometheus"],"Address":"127.0.120.9",
        "Port":{port},"checks":[{{"http":"http://127.0.120.9:{port}/metrics","interval":"1s"}}]}}"#,
        port = target.port
    );
    let reply = http::put(&format!("{agent}/v1/agent/service/register"), &payload).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let check = "service:node-exporter-1";
    let output = wait_status(&agent, check, "passing", Duration::from_secs(5));
    assert!(output.starts_with("HTTP GET http://127.0.120.9:"), "{output}");
    assert!(
        output.contains(": 200 Whatever Output: node_exporter says 200") || output.contains(": 200 OK"),
        "{output}"
    );
    assert_eq!(passing_instances(&agent, "node-exporter"), ["node-exporter-1"]);

    target.status.store(429, Ordering::SeqCst);
    wait_status(&agent, check, "warning", Duration::from_secs(3));
    assert_eq!(passing_instances(&agent, "node-exporter"), Vec::<String>::new(), "?passing leaves out warning");

    target.status.store(200, Ordering::SeqCst);
    wait_status(&agent, check, "passing", Duration::from_secs(3));
    target.stop("127.0.120.9");
    // Critical within one interval (1 s) of the server going away, plus a probe's time.
    let output = wait_status(&agent, check, "critical", Duration::from_secs(3));
    assert!(output.contains("HTTP GET"), "{output}");
    assert!(passing_instances(&agent, "node-exporter").is_empty());
    let agent_checks = http::get(&format!("{agent}/v1/agent/checks")).unwrap().json();
    assert_eq!(agent_checks[check]["Status"], "critical", "the agent's own view agrees");
}

#[test]
fn tcp_check_passes_while_the_port_is_open() {
    let cluster = Cluster::dev(121);
    let agent = cluster.agents[0].http();
    let listener = TcpListener::bind("127.0.121.9:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = format!(
        r#"{{"Name":"db","Port":{port},"Check":{{"TCP":"127.0.121.9:{port}","Interval":"1s","Timeout":"500ms"}}}}"#
    );
    assert_eq!(http::put(&format!("{agent}/v1/agent/service/register"), &body).unwrap().status, 200);
    let output = wait_status(&agent, "service:db", "passing", Duration::from_secs(5));
    assert_eq!(output, format!("TCP connect 127.0.121.9:{port}: Success"));
    drop(listener);
    let output = wait_status(&agent, "service:db", "critical", Duration::from_secs(4));
    assert!(output.starts_with(&format!("dial tcp 127.0.121.9:{port}:")), "{output}");
}

#[test]
fn ttl_check_expires_unless_updated() {
    let cluster = Cluster::dev(122);
    let agent = cluster.agents[0].http();
    let body = r#"{"Name":"batch","Check":{"CheckID":"batch-ttl","TTL":"2s","Status":"passing"}}"#;
    assert_eq!(http::put(&format!("{agent}/v1/agent/service/register"), body).unwrap().status, 200);
    wait_status(&agent, "batch-ttl", "passing", Duration::from_secs(3));
    // Updated every second for five seconds: stays passing past its 2 s TTL.
    for i in 0..5 {
        let reply = http::put(&format!("{agent}/v1/agent/check/pass/batch-ttl?note=tick-{i}"), "").unwrap();
        assert_eq!(reply.status, 200);
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(check_status(&agent, "batch-ttl").unwrap().0, "passing", "round {i}");
    }
    let output = wait_status(&agent, "batch-ttl", "critical", Duration::from_secs(4));
    assert_eq!(output, "TTL expired (last output before timeout follows): tick-4");
    http::put(&format!("{agent}/v1/agent/check/pass/batch-ttl"), "").unwrap();
    wait_status(&agent, "batch-ttl", "passing", Duration::from_secs(2));
}

#[test]
fn script_checks_run_only_when_enabled() {
    let disabled = Cluster::dev(123);
    let body = r#"{"Name":"cron","Check":{"Args":["sh","-c","echo degraded; exit 1"],"Interval":"1s"}}"#;
    let reply = http::put(&format!("{}/v1/agent/service/register", disabled.agents[0].http()), body).unwrap();
    assert_eq!(reply.status, 500);
    assert!(reply.body.contains("Scripts are disabled on this agent"), "{}", reply.body);
    drop(disabled);

    let enabled = Cluster::dev_with(124, &["-enable-script-checks"]);
    let agent = enabled.agents[0].http();
    assert_eq!(http::put(&format!("{agent}/v1/agent/service/register"), body).unwrap().status, 200);
    let output = wait_status(&agent, "service:cron", "warning", Duration::from_secs(5));
    assert_eq!(output.trim(), "degraded");
}

#[test]
fn critical_services_are_reaped_and_strays_removed_by_anti_entropy() {
    let cluster = Cluster::dev(125);
    let agent = cluster.agents[0].http();
    let body =
        r#"{"Name":"flaky","Check":{"TCP":"127.0.125.9:1","Interval":"1s","DeregisterCriticalServiceAfter":"2s"}}"#;
    assert_eq!(http::put(&format!("{agent}/v1/agent/service/register"), body).unwrap().status, 200);
    eventually(Duration::from_secs(10), "flaky reaped", || {
        let services = http::get(&format!("{agent}/v1/agent/services")).ok()?.json();
        services.get("flaky").is_none().then_some(())
    });
    let instances = http::get(&format!("{agent}/v1/catalog/service/flaky")).unwrap().json();
    assert_eq!(instances, Value::Array(vec![]), "the catalog forgets it too");

    // A service put in the catalog under this agent's node behind its back is removed by the next sync.
    let node = http::get(&format!("{agent}/v1/agent/self")).unwrap().json()["Config"]["NodeName"].clone();
    let stray =
        format!(r#"{{"Node":{node},"Address":"127.0.125.1","Service":{{"ID":"stray","Service":"stray","Port":1}}}}"#);
    assert_eq!(http::put(&format!("{agent}/v1/catalog/register"), &stray).unwrap().status, 200);
    assert_eq!(http::get(&format!("{agent}/v1/catalog/service/stray")).unwrap().json().as_array().unwrap().len(), 1);
    assert_eq!(http::put(&format!("{agent}/v1/agent/reload"), "").unwrap().status, 200);
    eventually(Duration::from_secs(5), "stray removed", || {
        let rows = http::get(&format!("{agent}/v1/catalog/service/stray")).ok()?.json();
        rows.as_array()?.is_empty().then_some(())
    });
    let consul = http::get(&format!("{agent}/v1/catalog/service/consul")).unwrap().json();
    assert_eq!(consul.as_array().unwrap().len(), 1, "the server's own registration stays");
}

/// `openssl s_server -www` on a self-signed certificate: an HTTPS target.
struct TlsTarget {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl TlsTarget {
    fn start(ip: &str) -> TlsTarget {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let made = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=check-target"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("run openssl");
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        let port = TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new("openssl")
            .args(["s_server", "-www", "-quiet", "-accept"])
            .arg(format!("{ip}:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start openssl s_server");
        eventually(Duration::from_secs(10), "s_server listening", || std::net::TcpStream::connect((ip, port)).ok());
        TlsTarget { child, port, _dir: dir }
    }
}

impl Drop for TlsTarget {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn https_checks_verify_certificates_unless_told_to_skip() {
    let cluster = Cluster::dev(127);
    let agent = cluster.agents[0].http();
    let target = TlsTarget::start("127.0.127.9");
    let url = format!("https://127.0.127.9:{}/", target.port);
    let skip = format!(
        r#"{{"Name":"tls-skip","Check":{{"CheckID":"skip","HTTP":"{url}","Interval":"1s","TLSSkipVerify":true}}}}"#
    );
    let verify = format!(r#"{{"Name":"tls-verify","Check":{{"CheckID":"verify","HTTP":"{url}","Interval":"1s"}}}}"#);
    assert_eq!(http::put(&format!("{agent}/v1/agent/service/register"), &skip).unwrap().status, 200);
    assert_eq!(http::put(&format!("{agent}/v1/agent/service/register"), &verify).unwrap().status, 200);
    let output = wait_status(&agent, "skip", "passing", Duration::from_secs(5));
    assert!(output.starts_with(&format!("HTTP GET {url}: 200")), "{output}");
    std::thread::sleep(Duration::from_secs(2));
    let (status, output) = check_status(&agent, "verify").unwrap();
    assert_eq!(status, "critical", "a self-signed certificate is refused when verifying: {output}");
    assert!(output.contains("certificate") || output.contains("Certificate"), "{output}");
}
