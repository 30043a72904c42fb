//! The agent as a process, started the way client libraries' test helpers start Consul: `-bootstrap`,
//! `-pid-file`, `-log-file`, `-log-json`, `node_id` and the leave keys in a config file; SIGHUP reloads
//! services and keeps the agent running; SIGTERM makes a client agent leave (it shows `left` and drops out
//! of the catalog) and removes the pid file; `default_query_time` and `-max-query-time` bound blocking
//! queries. Subnets 170 and 219.

use std::time::Duration;

use conclave_tests::harness::{eventually, Agent, Cluster};
use conclave_tests::http;

const SUBNET: u8 = 170;
const NODE_ID: &str = "adf4238a-882b-9ddc-4a9d-5b6758e4159e";

fn member_status(agent: &Agent, name: &str) -> Option<u64> {
    let members = http::get(&agent.url("/v1/agent/members")).ok()?.json();
    members.as_array()?.iter().find(|m| m["Name"] == name)?["Status"].as_u64()
}

fn catalog_has_node(agent: &Agent, name: &str) -> bool {
    let nodes = http::get(&agent.url("/v1/catalog/nodes")).map(|r| r.json()).unwrap_or_default();
    nodes.as_array().is_some_and(|nodes| nodes.iter().any(|n| n["Node"] == name))
}

#[test]
fn a_test_helper_command_line_starts_a_server_that_reloads_on_sighup_and_a_client_leaves_on_sigterm() {
    let mut cluster = Cluster { agents: Vec::new(), dir: tempfile::tempdir().unwrap() };
    let dir = cluster.dir.path().to_path_buf();
    let ip = format!("127.0.{SUBNET}.1");
    let config_dir = dir.join("conf.d");
    std::fs::create_dir_all(&config_dir).unwrap();
    let config = dir.join("server.json");
    let settings = format!(
        r#"{{"node_id":"{NODE_ID}","log_json":true,"leave_on_terminate":false,"skip_leave_on_interrupt":true,
            "rejoin_after_leave":true,"disable_update_check":true}}"#
    );
    std::fs::write(&config, settings).unwrap();
    std::fs::write(config_dir.join("web.json"), r#"{"service":{"name":"web","port":80}}"#).unwrap();
    let pid_file = dir.join("run/consul.pid");
    let log_dir = dir.join("logs/");
    let args: Vec<String> = [
        "agent",
        "-node",
        "node1",
        "-datacenter",
        "dc1",
        "-bind",
        &ip,
        "-client",
        &ip,
        "-bootstrap",
        "-server",
        "-config-file",
        config.to_str().unwrap(),
        "-config-dir",
        config_dir.to_str().unwrap(),
        "-data-dir",
        dir.join("node1").to_str().unwrap(),
        "-pid-file",
        pid_file.to_str().unwrap(),
        "-log-file",
        log_dir.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    cluster.agents.push(Agent::launch("node1", &ip, args, &dir));
    let server = &cluster.agents[0];
    server.wait_http();
    eventually(Duration::from_secs(20), "a leader", || server.leader());

    let pid = eventually(Duration::from_secs(5), "the pid file", || std::fs::read_to_string(&pid_file).ok());
    assert_eq!(pid, server.pid().unwrap().to_string());
    let own = http::get(&server.url("/v1/agent/self")).unwrap().json();
    assert_eq!(own["Config"]["NodeID"], NODE_ID, "{own}");
    let log = eventually(Duration::from_secs(5), "the log file", || {
        std::fs::read_to_string(log_dir.join("consul.log")).ok().filter(|text| !text.is_empty())
    });
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).expect("JSON log lines");
    assert!(first.get("level").is_some(), "{first}");

    // SIGHUP reloads the config dir; the agent keeps running.
    std::fs::write(config_dir.join("api.json"), r#"{"service":{"name":"api","port":81}}"#).unwrap();
    server.signal("HUP");
    eventually(Duration::from_secs(10), "the reloaded service", || {
        let services = http::get(&server.url("/v1/agent/services")).ok()?.json();
        services.get("api").map(|_| ())
    });
    assert!(cluster.agents[0].is_running(), "SIGHUP must not stop the agent");

    // A client agent leaves on SIGTERM (Consul's default for client agents).
    let client = cluster.add_client(SUBNET, 10, "c1", &["-retry-join", &ip]);
    eventually(Duration::from_secs(20), "c1 in the catalog", || {
        catalog_has_node(&cluster.agents[0], "c1").then_some(())
    });
    // Both sides must know each other: a leave reaches only the members the leaver knows.
    eventually(Duration::from_secs(20), "c1 and node1 alive to each other", || {
        let both = member_status(&cluster.agents[0], "c1") == Some(1)
            && member_status(&cluster.agents[client], "node1") == Some(1);
        both.then_some(())
    });
    cluster.agents[client].signal("TERM");
    assert!(cluster.agents[client].wait_exit(Duration::from_secs(20)), "the client exits after leaving");
    let server = &cluster.agents[0];
    eventually(Duration::from_secs(15), "c1 left (status 3)", || {
        (member_status(server, "c1") == Some(3)).then_some(())
    });
    eventually(Duration::from_secs(10), "c1 out of the catalog", || (!catalog_has_node(server, "c1")).then_some(()));

    // SIGTERM on a server with leave_on_terminate=false: it stops without leaving; the pid file goes.
    cluster.agents[0].signal("TERM");
    assert!(cluster.agents[0].wait_exit(Duration::from_secs(20)), "the server exits");
    assert!(!pid_file.exists(), "the pid file is removed at exit");
    let log = std::fs::read_to_string(log_dir.join("consul.log")).unwrap();
    assert!(!log.contains("leaving the cluster"), "a server keeps its membership on SIGTERM by default");
}

#[test]
fn bootstrap_and_bootstrap_expect_together_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(conclave_tests::harness::binary())
        .args(["agent", "-server", "-bootstrap", "-bootstrap-expect", "3", "-data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bootstrap_expect") && stderr.contains("bootstrap"), "{stderr}");
}

/// `default_query_time` (from a config file) bounds a blocking query without `?wait=`, and
/// `-max-query-time` (a flag) bounds one whose `?wait=` asks for more, as in Consul. Subnet 219.
#[test]
fn blocking_queries_wait_the_agents_default_query_time_and_no_more_than_its_max() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("query.hcl");
    std::fs::write(&config, "default_query_time = \"1s\"\n").unwrap();
    let config = config.display().to_string();
    let cluster = Cluster::dev_with(219, &["-config-file", &config, "-max-query-time", "2s"]);
    let agent = &cluster.agents[0];
    let written = http::put(&agent.url("/v1/kv/watched"), "v").unwrap();
    assert_eq!(written.status, 200, "{}", written.body);
    let index = http::get(&agent.url("/v1/kv/watched")).unwrap().index();
    for (query, bound_s) in [(format!("index={index}"), 1), (format!("index={index}&wait=60s"), 2)] {
        let started = std::time::Instant::now();
        let reply = http::request("GET", &agent.url(&format!("/v1/kv/watched?{query}")), None, Duration::from_secs(90))
            .unwrap();
        let waited = started.elapsed();
        assert_eq!(reply.status, 200, "{query}: {}", reply.body);
        assert!(
            waited >= Duration::from_millis(bound_s * 900) && waited < Duration::from_secs(bound_s + 5),
            "{query}: the query waited {waited:?}, the agent's bound is {bound_s}s"
        );
    }
    let refused = std::process::Command::new(conclave_tests::harness::binary())
        .args(["agent", "-dev", "-max-query-time", "0s"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("max_query_time must be positive"), "{:?}", refused);
}
