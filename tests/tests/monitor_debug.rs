//! Logs for people: `/v1/agent/monitor` streams the lines logged after it started at its own level
//! (above the agent's), as text or JSON; `conclave monitor` prints them; `log_level` changes at a reload;
//! `conclave debug` writes Consul's archive. Agents on 127.0.211.x.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use conclave_tests::harness::{binary, eventually, Agent};
use conclave_tests::http;

/// Generous: a loaded machine may take seconds to log and flush a line.
const LINE_WAIT: Duration = Duration::from_secs(30);

/// Reads `source` line by line on a thread of its own; the lines come out of the channel.
fn lines_of(source: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(source).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

/// Opens `/v1/agent/monitor` with `query` and returns its lines as they come.
fn monitor(agent: &Agent, query: &str) -> mpsc::Receiver<String> {
    let response = ureq::get(&agent.url(&format!("/v1/agent/monitor?{query}")))
        .call()
        .unwrap_or_else(|e| panic!("monitor with {query:?} refused: {e}"));
    assert_eq!(response.status(), 200);
    lines_of(response.into_reader())
}

/// Keeps `trigger`ing (a request that logs) until a line that `wanted` accepts arrives: the first
/// request may be served before the stream's headers reach the client, so one request is not enough to
/// prove anything, and no timing is assumed.
fn wait_for_line(
    lines: &mpsc::Receiver<String>,
    what: &str,
    trigger: impl Fn(),
    wanted: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + LINE_WAIT;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        trigger();
        while let Ok(line) = lines.recv_timeout(Duration::from_millis(500)) {
            if wanted(&line) {
                return line;
            }
            seen.push(line);
        }
    }
    let tail = seen.iter().rev().take(20).rev().cloned().collect::<Vec<_>>().join("\n");
    panic!("no line showing {what} within {LINE_WAIT:?}; last lines seen:\n{tail}");
}

/// A `-dev` agent on 127.0.211.`host`, its log printed if the test fails.
struct Dev {
    agent: Agent,
    dir: tempfile::TempDir,
}

impl Drop for Dev {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("===== agent log =====\n{}", self.agent.log());
        }
    }
}

fn dev(host: u8, extra: &[String], dir: tempfile::TempDir) -> Dev {
    let ip = format!("127.0.211.{host}");
    let mut args: Vec<String> =
        vec!["agent".into(), "-dev".into(), "-node=dev".into(), format!("-bind={ip}"), "-client".into(), ip.clone()];
    args.extend(extra.iter().cloned());
    let agent = Agent::launch("dev", &ip, args, dir.path());
    agent.wait_http();
    Dev { agent, dir }
}

fn put_kv(agent: &Agent, key: &str) {
    let reply = http::put(&agent.url(&format!("/v1/kv/{key}")), "v").expect("KV write");
    assert_eq!(reply.status, 200, "KV write of {key}: {}", reply.body);
}

#[test]
fn the_monitor_streams_debug_lines_of_requests_made_after_it_started_while_the_agent_logs_at_info() {
    let dev = dev(1, &[], tempfile::tempdir().unwrap());
    let agent = &dev.agent;
    let reply = http::get(&agent.url("/v1/agent/monitor?loglevel=loud")).expect("monitor request");
    assert_eq!((reply.status, reply.body.trim()), (400, "Unknown log level: loud"));

    let lines = monitor(agent, "loglevel=debug");
    let line = wait_for_line(
        &lines,
        "the debug line of a KV write",
        || put_kv(agent, "monitored"),
        |line| line.contains("[DEBUG]") && line.contains("url=/v1/kv/monitored"),
    );
    assert!(line.contains("Request finished") && line.contains("method=PUT"), "{line}");
    // The agent's own output stays at info: the same line is not in its log.
    assert!(!agent.log().contains("url=/v1/kv/monitored"), "the agent at info logged a debug line");

    let json_lines = monitor(agent, "loglevel=DEBUG&logjson");
    let line = wait_for_line(
        &json_lines,
        "a JSON line of a KV write",
        || put_kv(agent, "as-json"),
        |line| line.contains("/v1/kv/as-json"),
    );
    let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert_eq!(value["@level"], "debug", "{line}");
    assert_eq!(value["@message"], "Request finished", "{line}");
    assert_eq!(value["url"], "/v1/kv/as-json", "{line}");
    assert!(value["@timestamp"].as_str().is_some_and(|t| !t.is_empty()), "{line}");

    // At the default level (info), debug lines stay out.
    let info_lines = monitor(agent, "");
    put_kv(agent, "not-at-info");
    let reload = http::put(&agent.url("/v1/agent/reload"), "").expect("reload");
    assert_eq!(reload.status, 200, "{}", reload.body);
    // Lines come in order: every line before the reload's is checked on the way.
    let line = wait_for_line(
        &info_lines,
        "the reload's info line",
        || {},
        |line| {
            assert!(!line.contains("not-at-info"), "an info monitor got a debug line: {line}");
            line.contains("configuration reloaded")
        },
    );
    assert!(line.contains("[INFO]"), "{line}");
}

#[test]
fn conclave_monitor_prints_the_agents_lines_until_stopped() {
    let dev = dev(2, &[], tempfile::tempdir().unwrap());
    let agent = &dev.agent;
    let mut child = Command::new(binary())
        .args(["monitor", &format!("-http-addr={}:8500", agent.ip), "-log-level=debug"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start conclave monitor");
    let lines = lines_of(child.stdout.take().expect("piped stdout"));
    let line = wait_for_line(
        &lines,
        "the monitor command printing a KV write",
        || put_kv(agent, "from-cli"),
        |line| line.contains("url=/v1/kv/from-cli"),
    );
    assert!(line.contains("[DEBUG]"), "{line}");
    assert!(child.try_wait().expect("monitor status").is_none(), "conclave monitor stopped by itself");
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let status =
        eventually(Duration::from_secs(10), "conclave monitor to stop on SIGINT", || child.try_wait().ok().flatten());
    assert!(status.success(), "conclave monitor exits 0 when interrupted: {status:?}");

    let refused = Command::new(binary())
        .args(["monitor", &format!("-http-addr={}:8500", agent.ip), "-log-level=loud"])
        .output()
        .expect("run conclave monitor");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("Unknown log level: loud"), "{stderr}");
}

#[test]
fn log_level_changes_at_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.hcl");
    let log_file = dir.path().join("agent-file.log");
    std::fs::write(&config, "log_level = \"info\"\n").unwrap();
    let extra = [format!("-config-file={}", config.display()), format!("-log-file={}", log_file.display())];
    let dev = dev(3, &extra, dir);
    let agent = &dev.agent;
    let file_log = || std::fs::read_to_string(&log_file).unwrap_or_default();

    // At info, a request's debug line is not written (it would be before the answer, so none comes later).
    put_kv(agent, "before-reload");
    assert!(!file_log().contains("url=/v1/kv/before-reload"), "debug line at info:\n{}", file_log());

    std::fs::write(&config, "log_level = \"debug\"\n").unwrap();
    let reload = Command::new(binary())
        .args(["reload", &format!("-http-addr={}:8500", agent.ip)])
        .output()
        .expect("run conclave reload");
    assert!(reload.status.success(), "conclave reload: {}", String::from_utf8_lossy(&reload.stderr));
    eventually(LINE_WAIT, "a debug line in the log file after the reload", || {
        put_kv(agent, "after-reload");
        file_log().contains("url=/v1/kv/after-reload").then_some(())
    });
    assert!(!file_log().contains("url=/v1/kv/before-reload"), "the line from before the reload appeared");

    // Back to info through SIGHUP: debug lines stop again.
    std::fs::write(&config, "log_level = \"info\"\n").unwrap();
    agent.signal("HUP");
    eventually(LINE_WAIT, "the SIGHUP reload to be logged", || {
        let log = file_log();
        let at = log.rfind("caught SIGHUP")?;
        log[at..].contains("log level is info").then_some(())
    });
    put_kv(agent, "after-sighup");
    assert!(!file_log().contains("url=/v1/kv/after-sighup"), "debug line after going back to info");
}

#[test]
fn conclave_debug_writes_an_archive_of_the_agent_its_members_its_host_and_its_log() {
    let dev = dev(4, &[], tempfile::tempdir().unwrap());
    let agent = &dev.agent;
    let output = dev.dir.path().join("capture");
    // The agent lists itself once its gossip has started, a moment after HTTP answers.
    eventually(LINE_WAIT, "the agent among its own members", || {
        http::get(&agent.url("/v1/agent/members")).ok()?.body.contains("\"dev\"").then_some(())
    });
    let run = Command::new(binary())
        .args(["debug", &format!("-http-addr={}:8500", agent.ip), "-duration", "3s", "-interval", "1s", "-output"])
        .arg(&output)
        .output()
        .expect("run conclave debug");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "conclave debug failed:\n{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("Saved debug archive"), "{stdout}");
    let archive = dev.dir.path().join("capture.tar.gz");
    assert!(!output.exists(), "the directory is removed once archived");

    let file = std::fs::File::open(&archive).unwrap_or_else(|e| panic!("no archive at {}: {e}", archive.display()));
    let mut files = std::collections::BTreeMap::new();
    for entry in tar::Archive::new(flate2::read::GzDecoder::new(file)).entries().expect("a tar.gz archive") {
        let mut entry = entry.expect("an archive entry");
        let name = entry.path().expect("an entry name").to_string_lossy().into_owned();
        let mut text = String::new();
        if entry.header().entry_type().is_file() {
            entry.read_to_string(&mut text).expect("a text file");
            files.insert(name, text);
        }
    }
    let names: Vec<&String> = files.keys().collect();
    let json = |name: &str| -> serde_json::Value {
        let text = files.get(&format!("capture/{name}")).unwrap_or_else(|| panic!("no {name} in {names:?}"));
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{name} is not JSON ({e}): {text}"))
    };
    assert_eq!(json("agent.json")["Config"]["NodeName"], "dev");
    let members = json("members.json");
    assert!(members.as_array().is_some_and(|m| m.iter().any(|m| m["Name"] == "dev")), "{members}");
    let host = json("host.json");
    assert!(host["Host"]["kernelVersion"].as_str().is_some_and(|k| !k.is_empty()), "{host}");
    assert!(host["CPU"].as_array().is_some_and(|cpus| !cpus.is_empty()), "{host}");
    assert!(host["Memory"]["total"].as_u64().is_some_and(|t| t > 0), "{host}");
    assert!(host["Disk"]["total"].as_u64().is_some_and(|t| t > 0), "{host}");
    assert_eq!(json("index.json")["Version"], 1);
    // metrics.json: one /v1/agent/metrics document per interval, concatenated.
    let metrics = files.get("capture/metrics.json").unwrap_or_else(|| panic!("no metrics.json in {names:?}"));
    let samples: Vec<serde_json::Value> = serde_json::Deserializer::from_str(metrics)
        .into_iter::<serde_json::Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("metrics.json is not a stream of JSON documents ({e}): {metrics}"));
    assert!(samples.len() >= 2, "fewer than two metrics samples: {metrics}");
    assert!(samples.iter().all(|s| s["Gauges"].is_array() && s["Samples"].is_array()), "{metrics}");
    // The capture's own metrics requests, made while the log was followed at debug, are in the log.
    let log = files.get("capture/consul.log").unwrap_or_else(|| panic!("no consul.log in {names:?}"));
    assert!(log.lines().any(|l| l.contains("[DEBUG]") && l.contains("Request finished")), "consul.log:\n{log}");

    let refused = Command::new(binary())
        .args(["debug", &format!("-http-addr={}:8500", agent.ip), "-duration=3s", "-interval=5s"])
        .output()
        .expect("run conclave debug");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("duration (3s) must be longer than interval (5s)"), "{stderr}");
}

#[test]
fn the_monitor_needs_agent_read_on_the_agents_node() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("acl.hcl");
    std::fs::write(&config, "acl {\n  enabled = true\n  default_policy = \"deny\"\n}\n").unwrap();
    let dev = dev(5, &[format!("-config-file={}", config.display())], dir);
    let agent = &dev.agent;
    let root = eventually(LINE_WAIT, "ACL bootstrap", || {
        let reply = http::put(&agent.url("/v1/acl/bootstrap"), "").ok()?;
        (reply.status == 200).then(|| reply.json()["SecretID"].as_str().expect("a SecretID").to_string())
    });
    let refused = http::get(&agent.url("/v1/agent/monitor")).expect("monitor request");
    assert_eq!(refused.status, 403, "anonymous monitor: {}", refused.body);
    assert!(refused.body.contains("agent:read"), "{}", refused.body);
    let lines = monitor(agent, &format!("loglevel=debug&token={root}"));
    let line = wait_for_line(
        &lines,
        "a line for the management token",
        || put_kv_as(agent, &root),
        |l| l.contains("/v1/kv/acl"),
    );
    // The secret in the URL never reaches the stream.
    assert!(line.contains("token=<hidden>") && !line.contains(&root), "{line}");
}

fn put_kv_as(agent: &Agent, token: &str) {
    let reply = http::put(&agent.url(&format!("/v1/kv/acl?token={token}")), "v").expect("KV write");
    assert_eq!(reply.status, 200, "KV write: {}", reply.body);
}
