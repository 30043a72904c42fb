//! Metrics as an operator scrapes them: three servers with `prometheus_retention_time`, VictoriaMetrics'
//! `vmagent` scraping `/v1/agent/metrics?format=prometheus` on each and writing to a VictoriaMetrics
//! server, and the test reading back what was scraped: Consul's metric names are there, and the Raft and
//! KV counters move when writes happen. The JSON shape, the 415 of an agent without a retention time and
//! the ACL-free default are checked on the same cluster.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use conclave_tests::harness::{eventually, Cluster};
use conclave_tests::http;
use conclave_tests::tools::{require, KillOnDrop};
use serde_json::Value;

const SUBNET: u8 = 180;
const VM: &str = "127.0.180.20:8428";
const VMAGENT: &str = "127.0.180.21:8429";

/// Every series of `name` VictoriaMetrics holds, as (labels, last value).
fn exported(name: &str) -> Vec<(Value, f64)> {
    let Ok(reply) = http::get(&format!("http://{VM}/api/v1/export?match[]={name}")) else { return Vec::new() };
    reply
        .body
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|series| {
            let last = series["values"].as_array()?.last()?.as_f64()?;
            Some((series["metric"].clone(), last))
        })
        .collect()
}

/// The sum over the servers of the last scraped value of `name`.
fn total(name: &str) -> f64 {
    exported(name).iter().map(|(_, value)| value).sum()
}

fn metric_names() -> BTreeSet<String> {
    let Ok(reply) = http::get(&format!("http://{VM}/api/v1/label/__name__/values")) else { return BTreeSet::new() };
    reply.json()["data"]
        .as_array()
        .map(|names| names.iter().filter_map(|n| n.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

fn start(program: &str, args: &[String], log: &std::path::Path) -> KillOnDrop {
    let log = std::fs::File::create(log).unwrap();
    KillOnDrop(
        Command::new(program)
            .args(args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}")),
    )
}

#[test]
fn vmagent_scrapes_consuls_metric_names_and_the_raft_and_kv_counters_move_with_writes() {
    let vmagent = require("vmagent", "apt-get install victoria-metrics");
    let victoria = require("victoria-metrics", "apt-get install victoria-metrics");
    let config_dir = tempfile::tempdir().unwrap();
    let telemetry = config_dir.path().join("telemetry.hcl");
    std::fs::write(&telemetry, "telemetry {\n  prometheus_retention_time = \"60s\"\n  disable_hostname = true\n}\n")
        .unwrap();
    let mut cluster = Cluster::servers_with(SUBNET, 3, &["-config-file", telemetry.to_str().unwrap()]);
    cluster.wait_leader();
    let client = cluster.add_client(SUBNET, 10, "c1", &[]);

    // The JSON shape of the in-memory sink, on every agent.
    let json = http::get(&cluster.agents[0].url("/v1/agent/metrics")).unwrap().json();
    for field in ["Timestamp", "Gauges", "Points", "Counters", "Samples"] {
        assert!(!json[field].is_null(), "no {field} in {json}");
    }
    assert!(json["Timestamp"].as_str().unwrap().ends_with("+0000 UTC"), "{json}");
    // Prometheus output is off on an agent without a retention time, with Consul's answer.
    let off = http::get(&cluster.agents[client].url("/v1/agent/metrics?format=prometheus")).unwrap();
    assert_eq!(off.status, 415, "{}", off.body);
    assert!(off.body.contains("Prometheus is not enabled"), "{}", off.body);

    let data = cluster.dir.path();
    let _vm = start(
        &victoria,
        &[
            format!("-httpListenAddr={VM}"),
            format!("-storageDataPath={}", data.join("vm-data").display()),
            "-retentionPeriod=1d".into(),
        ],
        &data.join("victoria-metrics.log"),
    );
    let targets: Vec<String> = (1..=3).map(|i| format!("'127.0.{SUBNET}.{i}:8500'")).collect();
    let scrape = data.join("scrape.yml");
    std::fs::write(
        &scrape,
        format!(
            "scrape_configs:\n  - job_name: conclave\n    scrape_interval: 1s\n    metrics_path: /v1/agent/metrics\n    params:\n      format: [prometheus]\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        ),
    )
    .unwrap();
    let _vmagent = start(
        &vmagent,
        &[
            format!("-promscrape.config={}", scrape.display()),
            format!("-remoteWrite.url=http://{VM}/api/v1/write"),
            format!("-remoteWrite.tmpDataPath={}", data.join("vmagent-data").display()),
            "-remoteWrite.flushInterval=1s".into(),
            format!("-httpListenAddr={VMAGENT}"),
        ],
        &data.join("vmagent.log"),
    );
    eventually(Duration::from_secs(60), "vmagent to scrape all three servers", || {
        let targets = http::get(&format!("http://{VMAGENT}/api/v1/targets")).ok()?.json();
        let up = targets["data"]["activeTargets"].as_array()?.iter().filter(|t| t["health"] == "up").count();
        (up == 3).then_some(())
    });

    // Some traffic of each kind, so each family has something to show.
    let leader_url = |path: &str| cluster.agents[0].url(path);
    assert_eq!(http::get(&leader_url("/v1/health/service/consul")).unwrap().status, 200);
    assert_eq!(http::get(&leader_url("/v1/catalog/service/consul")).unwrap().status, 200);
    let dig = Command::new("dig")
        .args([&format!("@127.0.{SUBNET}.1"), "-p", "8600", "+short", "+time=3", "consul.service.consul"])
        .output()
        .expect("dig is missing: run `apt-get install bind9-dnsutils`");
    assert!(dig.status.success(), "dig failed");
    let expected = [
        "consul_raft_apply",
        "consul_raft_commitTime",
        "consul_raft_leader_lastContact",
        "consul_raft_state_leader",
        "consul_raft_state_follower",
        "consul_raft_applied_index",
        "consul_raft_last_index",
        "consul_autopilot_healthy",
        "consul_autopilot_failure_tolerance",
        "consul_serf_member_join",
        "consul_memberlist_udp_sent",
        "consul_memberlist_udp_received",
        "consul_catalog_register",
        "consul_kvs_apply",
        "consul_rpc_request",
        "consul_api_http",
        "consul_dns_domain_query",
        "consul_health_service_query",
        "consul_catalog_service_query",
        "consul_runtime_num_goroutines",
        "consul_runtime_sys_bytes",
        "consul_session_ttl_active",
    ];
    // A KV write first, so that consul_kvs_apply exists before the counting starts.
    assert_eq!(http::put(&leader_url("/v1/kv/metrics/first"), "x").unwrap().status, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let names = loop {
        let names = metric_names();
        let missing: Vec<&str> = expected.iter().copied().filter(|name| !names.contains(*name)).collect();
        if missing.is_empty() {
            break names;
        }
        assert!(std::time::Instant::now() < deadline, "after 60 s VictoriaMetrics lacks {missing:?}; it has {names:?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(names.contains("consul_raft_commitTime_count") && names.contains("consul_kvs_apply_sum"), "{names:?}");
    let quantiles: BTreeSet<String> = exported("consul_raft_commitTime")
        .iter()
        .filter_map(|(labels, _)| labels["quantile"].as_str().map(String::from))
        .collect();
    assert_eq!(quantiles, ["0.5", "0.9", "0.99"].iter().map(|q| q.to_string()).collect(), "summary quantiles");
    let http_labels = exported("consul_api_http");
    assert!(
        http_labels.iter().any(|(labels, _)| labels["method"] == "GET" && labels["path"] == "v1_agent_metrics"),
        "no api.http series for the scrape itself: {http_labels:?}"
    );

    // The Raft and KV counters move with 40 writes.
    let before = (total("consul_raft_apply"), total("consul_kvs_apply_count"));
    for i in 0..40 {
        let reply = http::put(&cluster.agents[i % 3].url(&format!("/v1/kv/metrics/{i}")), "v").unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    eventually(Duration::from_secs(60), "the scraped raft.apply and kvs.apply counters to grow by 40", || {
        let after = (total("consul_raft_apply"), total("consul_kvs_apply_count"));
        (after.0 - before.0 >= 40.0 && after.1 - before.1 >= 40.0).then_some(())
    });
}
