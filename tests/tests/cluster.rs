//! Real `conclave agent -server` processes on loopback: leader failover, kill -9 during writes, clean
//! restarts. Each test uses its own 127.0.N.x subnet with Consul's default ports.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conclave_tests::harness::{eventually, Cluster};
use conclave_tests::http;

const PAYLOAD: &str = r#"{"ID":"node-exporter-10.0.0.5","Name":"node-exporter","Tags":["prometheus"],"Address":"10.0.0.5",
 "Meta":{"team":"infra"},"Port":9100,"checks":[{"http":"http://10.0.0.5:9100/metrics","interval":"15s"}]}"#;

fn register_instance(url: &str, id: &str) -> Result<u16, String> {
    let body = format!(r#"{{"Node":"ext","Address":"10.9.0.1","Service":{{"ID":"{id}","Service":"load","Port":80}}}}"#);
    http::put(&format!("{url}/v1/catalog/register"), &body).map(|r| r.status)
}

fn instance_ids(url: &str, query: &str) -> Option<BTreeSet<String>> {
    let reply = http::get(&format!("{url}/v1/catalog/service/load{query}")).ok()?;
    if reply.status != 200 {
        return None;
    }
    Some(reply.json().as_array()?.iter().filter_map(|r| r["ServiceID"].as_str().map(String::from)).collect())
}

#[test]
fn payload_registered_through_a_follower_survives_leader_kill_and_restart() {
    let mut cluster = Cluster::servers(41, 3);
    let leader = cluster.wait_leader();
    let follower = (leader + 1) % 3;
    let peers = http::get(&cluster.agents[follower].url("/v1/status/peers")).unwrap().json();
    assert_eq!(peers.as_array().unwrap().len(), 3, "three voters: {peers}");

    let reply = http::put(&cluster.agents[follower].url("/v1/agent/service/register"), PAYLOAD).unwrap();
    assert_eq!(reply.status, 200, "register through a follower: {}", reply.body);

    cluster.agents[leader].kill();
    let survivor = (leader + 2) % 3;
    let new_leader = cluster.wait_leader();
    assert_ne!(new_leader, leader, "a new leader among the survivors");

    let reply = http::get(&cluster.agents[survivor].url("/v1/catalog/service/node-exporter?consistent")).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.index() >= 1);
    let rows = reply.json();
    let row = &rows[0];
    assert_eq!(row["ServiceID"], "node-exporter-10.0.0.5");
    assert_eq!(row["ServiceAddress"], "10.0.0.5");
    assert_eq!(row["ServicePort"], 9100);
    assert_eq!(row["ServiceMeta"]["team"], "infra");
    assert_eq!(row["ServiceTags"][0], "prometheus");

    let health = http::get(&cluster.agents[survivor].url("/v1/health/service/node-exporter")).unwrap().json();
    let checks = health[0]["Checks"].as_array().unwrap();
    assert!(checks.iter().any(|c| c["CheckID"] == "service:node-exporter-10.0.0.5"), "{health}");

    cluster.agents[leader].restart();
    let restarted = &cluster.agents[leader];
    eventually(Duration::from_secs(30), "the restarted server to catch up", || {
        let reply = http::get(&restarted.url("/v1/catalog/service/node-exporter?stale")).ok()?;
        (reply.json().as_array()?.len() == 1).then_some(())
    });
}

#[test]
fn acknowledged_registrations_survive_kill_during_writes() {
    let mut cluster = Cluster::servers(42, 3);
    let leader = cluster.wait_leader();
    let urls: Vec<String> = cluster.agents.iter().map(|a| a.http()).collect();
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acknowledged, stop, urls) = (acknowledged.clone(), stop.clone(), urls.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("i{i}");
                if register_instance(&urls[i % urls.len()], &id) == Ok(200) {
                    acknowledged.lock().unwrap().push(id);
                }
                i += 1;
            }
        })
    };
    eventually(Duration::from_secs(20), "some acknowledged writes", || {
        (acknowledged.lock().unwrap().len() >= 30).then_some(())
    });
    cluster.agents[leader].kill();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    cluster.agents[leader].restart();
    cluster.wait_leader();

    let acknowledged = acknowledged.lock().unwrap().clone();
    for url in &urls {
        let present = eventually(Duration::from_secs(30), "a consistent read", || instance_ids(url, "?consistent"));
        let missing: Vec<&String> = acknowledged.iter().filter(|id| !present.contains(*id)).collect();
        assert!(
            missing.is_empty(),
            "{} of {} acknowledged registrations missing on {url}: {missing:?}",
            missing.len(),
            acknowledged.len()
        );
    }
}

#[test]
fn server_data_survives_clean_restart() {
    let mut cluster = Cluster::servers(43, 3);
    let leader = cluster.wait_leader();
    let url = cluster.agents[leader].http();
    for i in 0..20 {
        assert_eq!(register_instance(&url, &format!("r{i}")), Ok(200));
    }
    for agent in &mut cluster.agents {
        agent.stop();
    }
    for agent in &mut cluster.agents {
        agent.restart();
    }
    cluster.wait_leader();
    for agent in &cluster.agents {
        let ids = eventually(Duration::from_secs(30), "a consistent read after restart", || {
            instance_ids(&agent.http(), "?consistent")
        });
        assert_eq!(ids.len(), 20, "on {}: {ids:?}", agent.name);
    }
}
