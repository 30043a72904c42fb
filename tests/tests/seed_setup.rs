//! The seed's deployment with `conclave` in place of `consul`: three servers started with the seed's
//! flags (`-ui`, `-config-dir` with a service definition), a client agent, the exporter payload registered
//! on the client, the CLI reading it all back; and the agent's own state surviving kill -9.

use std::process::Command;
use std::time::Duration;

use conclave_tests::harness::{binary, eventually, Cluster};
use conclave_tests::http;

const PAYLOAD: &str = r#"{"ID":"node-exporter-10.0.0.5","Name":"node-exporter","Tags":["prometheus"],"Address":"10.0.0.5",
 "Meta":{"team":"infra"},"Port":9100,"checks":[{"http":"http://10.0.0.5:9100/metrics","interval":"15s"}]}"#;

fn cli(args: &[&str], http_addr: &str) -> String {
    let output = Command::new(binary()).args(args).env("CONSUL_HTTP_ADDR", http_addr).output().expect("run conclave");
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn services_of(url: &str) -> Vec<String> {
    let services = http::get(&format!("{url}/v1/catalog/services")).unwrap().json();
    services.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

#[test]
fn seed_setup_with_client_agent_serves_the_exporter_everywhere() {
    let mut cluster = Cluster::servers(61, 3);
    cluster.wait_leader();
    let client = cluster.add_client(61, 4, "c1", &[]);
    let client_url = cluster.agents[client].http();
    let client_addr = format!("{}:8500", cluster.agents[client].ip);

    let reply = http::put(&format!("{client_url}/v1/agent/service/register"), PAYLOAD).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);

    // The exporter is in the catalog under the client's node, seen from a server and from the client.
    for url in [cluster.agents[0].http(), client_url.clone()] {
        let rows = eventually(Duration::from_secs(15), "the exporter in the catalog", || {
            let reply = http::get(&format!("{url}/v1/catalog/service/node-exporter")).ok()?;
            let rows = reply.json();
            (rows.as_array()?.len() == 1).then_some(rows)
        });
        assert_eq!(rows[0]["Node"], "c1");
        assert_eq!(rows[0]["ServicePort"], 9100);
    }

    // `members` lists three servers and one client, all alive.
    let members = eventually(Duration::from_secs(15), "four members", || {
        let out = cli(&["members"], &client_addr);
        (out.lines().count() == 5).then_some(out)
    });
    let header: Vec<&str> = members.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["Node", "Address", "Status", "Type", "Build", "Protocol", "DC", "Partition", "Segment"]);
    assert_eq!(members.lines().filter(|l| l.contains(" server ")).count(), 3, "{members}");
    assert!(
        members.lines().any(|l| l.starts_with("c1 ") && l.contains(" client ") && l.contains(" alive ")),
        "{members}"
    );

    let peers = cli(&["operator", "raft", "list-peers"], &client_addr);
    assert_eq!(peers.lines().count(), 4, "{peers}");
    assert_eq!(peers.lines().filter(|l| l.contains("leader")).count(), 1, "{peers}");

    let services = cli(&["catalog", "services", "-tags"], &client_addr);
    assert!(services.contains("node-exporter") && services.contains("prometheus"), "{services}");

    // A server dies: the client fails over to another one.
    cluster.agents[0].kill();
    cluster.wait_leader();
    eventually(Duration::from_secs(20), "the client to answer through a live server", || {
        let reply = http::get(&format!("{client_url}/v1/health/service/node-exporter")).ok()?;
        (reply.status == 200 && reply.json().as_array()?.len() == 1).then_some(())
    });

    // Deregistering on the client removes it from the catalog.
    let reply = http::put(&format!("{client_url}/v1/agent/service/deregister/node-exporter-10.0.0.5"), "").unwrap();
    assert_eq!(reply.status, 200);
    eventually(Duration::from_secs(15), "the exporter to leave the catalog", || {
        (!services_of(&cluster.agents[1].http()).contains(&"node-exporter".to_string())).then_some(())
    });
}

#[test]
fn config_dir_services_register_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("web.json"), r#"{"service":{"name":"web","port":8080,"check":{"ttl":"30s"}}}"#)
        .unwrap();
    std::fs::write(dir.path().join("db.hcl"), "service {\n  name = \"db\"\n  port = 5432\n}\n").unwrap();
    let config_dir = dir.path().display().to_string();
    let mut cluster = Cluster::servers_with(62, 1, &["-ui", "-config-dir", &config_dir]);
    cluster.wait_leader();
    let url = cluster.agents[0].http();
    eventually(Duration::from_secs(15), "config services in the catalog", || {
        let names = services_of(&url);
        (names.contains(&"web".to_string()) && names.contains(&"db".to_string())).then_some(())
    });
    let page = http::get(&format!("{url}/ui/")).unwrap();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>Conclave</title>"));

    std::fs::remove_file(dir.path().join("db.hcl")).unwrap();
    std::fs::write(dir.path().join("cache.json"), r#"{"services":[{"name":"cache","port":6379}]}"#).unwrap();
    cli(&["reload"], &format!("{}:8500", cluster.agents[0].ip));
    eventually(Duration::from_secs(15), "the reload to reach the catalog", || {
        let names = services_of(&url);
        (names.contains(&"cache".to_string()) && !names.contains(&"db".to_string())).then_some(())
    });
}

#[test]
fn config_error_names_the_file_and_key_and_the_agent_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.json"), r#"{"servr": true}"#).unwrap();
    let output = Command::new(binary())
        .args([
            "agent",
            "-dev",
            "-config-dir",
            &dir.path().display().to_string(),
            "-bind",
            "127.0.63.1",
            "-client",
            "127.0.63.1",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.json") && stderr.contains("servr"), "{stderr}");
}

#[test]
fn agent_services_survive_kill_9_and_restart() {
    let mut cluster = Cluster::servers(64, 1);
    cluster.wait_leader();
    let client = cluster.add_client(64, 2, "c1", &[]);
    let url = cluster.agents[client].http();
    for i in 0..10 {
        let body = format!(r#"{{"ID":"svc-{i}","Name":"svc","Port":{}}}"#, 1000 + i);
        assert_eq!(http::put(&format!("{url}/v1/agent/service/register"), &body).unwrap().status, 200);
    }
    cluster.agents[client].kill();
    cluster.agents[client].restart();
    let services = http::get(&format!("{url}/v1/agent/services")).unwrap().json();
    assert_eq!(services.as_object().unwrap().len(), 10, "every acknowledged registration is back: {services}");
}
