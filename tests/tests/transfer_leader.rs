//! `operator raft transfer-leader`: leadership moves to the named follower (through the HTTP API and
//! through the CLI, sent to any server), writes go on under the new leader, and an ID that names no
//! voter is refused with a 400 that says so.

use std::process::Command;
use std::time::Duration;

use conclave_tests::harness::{binary, eventually, Cluster};
use conclave_tests::http;

const TRANSFER_TIMEOUT: Duration = Duration::from_secs(15);

/// Each server's Raft ID as `list-peers` shows it, by its RPC IP.
fn server_ids(cluster: &Cluster) -> Vec<(String, String)> {
    let configuration = http::get(&cluster.agents[0].url("/v1/operator/raft/configuration")).unwrap().json();
    let servers = configuration["Servers"].as_array().expect("Servers").clone();
    servers
        .iter()
        .map(|s| {
            let ip = s["Address"].as_str().unwrap().split(':').next().unwrap().to_string();
            (ip, s["ID"].as_str().unwrap().to_string())
        })
        .collect()
}

fn id_of(cluster: &Cluster, index: usize) -> String {
    let ip = &cluster.agents[index].ip;
    server_ids(cluster).into_iter().find(|(i, _)| i == ip).map(|(_, id)| id).expect("every server is a peer")
}

fn post(url: &str) -> http::Reply {
    http::request("POST", url, None, TRANSFER_TIMEOUT).unwrap()
}

/// One cluster on subnet 212 for both rules (two clusters there at once would collide).
#[test]
fn leadership_moves_to_the_named_follower_and_an_unknown_id_is_refused() {
    let mut cluster = Cluster::servers(212, 3);
    let leader = cluster.wait_leader();
    unknown_id_is_refused_with_a_clear_400(&mut cluster, leader);
    let target = (leader + 1) % 3;
    let target_id = id_of(&cluster, target);

    let started = std::time::Instant::now();
    let reply = post(&cluster.agents[leader].url(&format!("/v1/operator/raft/transfer-leader?id={target_id}")));
    assert_eq!(reply.status, 200, "transfer: {}", reply.body);
    assert_eq!(reply.json(), serde_json::json!({ "Success": true }));
    eprintln!("transfer answered after {:.2} s", started.elapsed().as_secs_f64());
    assert_eq!(cluster.wait_leader(), target, "the named follower leads");

    for (i, agent) in cluster.agents.iter().enumerate() {
        let reply = http::put(&agent.url(&format!("/v1/kv/transfer/{i}")), "after").unwrap();
        assert_eq!(reply.status, 200, "write through server {i} after the transfer: {}", reply.body);
    }

    // The CLI, sent to a follower (which passes it to the leader), without -id: the most caught-up voter.
    let follower = (target + 1) % 3;
    let output = Command::new(binary())
        .args(["operator", "raft", "transfer-leader"])
        .env("CONSUL_HTTP_ADDR", cluster.agents[follower].http())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "cli: {stdout} {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(stdout.trim(), "Success");
    let new_leader = cluster.wait_leader();
    assert_ne!(new_leader, target, "leadership moved away from the leader of before");
    let reply = http::put(&cluster.agents[0].url("/v1/kv/transfer/cli"), "after").unwrap();
    assert_eq!(reply.status, 200, "write after the second transfer: {}", reply.body);
    let read = eventually(Duration::from_secs(10), "a consistent read", || {
        http::get(&cluster.agents[2].url("/v1/kv/transfer/0?raw")).ok().filter(|r| r.status == 200)
    });
    assert_eq!(read.body, "after");
}

fn unknown_id_is_refused_with_a_clear_400(cluster: &mut Cluster, leader: usize) {
    let reply = post(&cluster.agents[leader].url("/v1/operator/raft/transfer-leader?id=00000000deadbeef"));
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.body.contains("cannot find peer") && reply.body.contains("00000000deadbeef"), "{}", reply.body);
    assert_eq!(cluster.wait_leader(), leader, "leadership did not move");

    let output = Command::new(binary())
        .args(["operator", "raft", "transfer-leader", "-id", "not-a-server"])
        .env("CONSUL_HTTP_ADDR", cluster.agents[leader].http())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("400") && stderr.contains("cannot find peer"), "{stderr}");
}
