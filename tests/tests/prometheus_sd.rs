//! Prometheus-style service discovery against Conclave: the seed's three servers and a client agent, the
//! exporter payload registered on the client, and a real scraper with Consul service discovery
//! (VictoriaMetrics' `vmagent` from Debian's `victoria-metrics` package; Debian's `prometheus` build has
//! Consul SD compiled out) pointed at the client agent. The exporter must show up as a target with its
//! `__meta_consul_*` labels, and be scraped.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use conclave_tests::harness::{eventually, Cluster};
use conclave_tests::http;
use conclave_tests::tools::{require, KillOnDrop};

/// A stand-in exporter: answers every request with one metric.
fn start_exporter(addr: &str) -> String {
    let listener = TcpListener::bind(addr).expect("bind exporter");
    let bound = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buffer = [0u8; 2048];
            let _ = stream.read(&mut buffer);
            let body = "node_load1 0.5\n";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    bound
}

#[test]
fn vmagent_discovers_the_exporter_through_consul_sd() {
    let vmagent = require("vmagent", "apt-get install victoria-metrics");
    let mut cluster = Cluster::servers(71, 3);
    cluster.wait_leader();
    let client = cluster.add_client(71, 4, "c1", &[]);
    let exporter = start_exporter("127.0.71.9:0");
    let (host, port) = exporter.split_once(':').unwrap();
    let payload = format!(
        r#"{{"ID":"node-exporter-{host}","Name":"node-exporter","Tags":["prometheus"],"Address":"{host}","Meta":{{"team":"infra"}},"Port":{port},"checks":[{{"http":"http://{exporter}/metrics","interval":"15s"}}]}}"#
    );
    let reply = http::put(&cluster.agents[client].url("/v1/agent/service/register"), &payload).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);

    let config = cluster.dir.path().join("vmagent.yml");
    std::fs::write(
        &config,
        format!(
            "scrape_configs:\n  - job_name: exporters\n    scrape_interval: 2s\n    consul_sd_configs:\n      - server: {}:8500\n        services: [node-exporter]\n",
            cluster.agents[client].ip
        ),
    )
    .unwrap();
    let log = std::fs::File::create(cluster.dir.path().join("vmagent.log")).unwrap();
    let _vmagent = KillOnDrop(
        Command::new(vmagent)
            .arg(format!("-promscrape.config={}", config.display()))
            .arg("-remoteWrite.url=http://127.0.0.1:9/api/v1/write")
            .arg(format!("-remoteWrite.tmpDataPath={}", cluster.dir.path().join("vmagent-data").display()))
            .arg("-httpListenAddr=127.0.71.10:8429")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start vmagent"),
    );
    let target = eventually(Duration::from_secs(30), "vmagent to scrape the discovered exporter", || {
        let targets = http::get("http://127.0.71.10:8429/api/v1/targets").ok()?.json();
        let target = targets["data"]["activeTargets"]
            .as_array()?
            .iter()
            .find(|t| t["labels"]["instance"] == exporter.as_str())?
            .clone();
        (target["health"] == "up").then_some(target)
    });
    let labels = &target["discoveredLabels"];
    assert_eq!(labels["__meta_consul_service"], "node-exporter");
    assert_eq!(labels["__meta_consul_node"], "c1");
    assert_eq!(labels["__meta_consul_dc"], "dc1");
    assert_eq!(labels["__meta_consul_tags"], ",prometheus,");
    assert_eq!(labels["__meta_consul_service_metadata_team"], "infra");
    assert_eq!(labels["__meta_consul_service_port"], port);
}
