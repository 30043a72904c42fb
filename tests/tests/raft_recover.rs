//! Recovery after a majority of servers is lost for good: `conclave operator raft recover` on the one
//! survivor, and Consul's `raft/peers.json` on two survivors of three. Each survivor elects a leader,
//! keeps every acknowledged write and takes new ones.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use conclave_tests::harness::{binary, eventually, Cluster};
use conclave_tests::http;

const KEYS: usize = 30;
/// Written while s2 is down in the peers.json test.
const LATE_KEYS: usize = 10;

/// Both tests use the loopback subnet 213 (servers on .1-.3), so they take turns.
static SUBNET_213: Mutex<()> = Mutex::new(());

fn write_keys(cluster: &mut Cluster) {
    let leader = cluster.wait_leader();
    for i in 0..KEYS {
        let url = cluster.agents[(leader + i) % 3].url(&format!("/v1/kv/recover/{i}"));
        let reply = http::put(&url, &format!("value-{i}")).unwrap();
        assert_eq!(reply.status, 200, "write {i}: {}", reply.body);
    }
}

fn recover(data_dir: &Path, peers: Option<&Path>) -> Output {
    let mut command = Command::new(binary());
    command.args(["operator", "raft", "recover", "-data-dir"]).arg(data_dir);
    if let Some(peers) = peers {
        command.arg("-peers").arg(peers);
    }
    command.output().expect("run conclave operator raft recover")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn assert_keys(cluster: &Cluster, survivors: &[usize]) {
    for i in 0..KEYS {
        let url = cluster.agents[survivors[i % survivors.len()]].url(&format!("/v1/kv/recover/{i}?raw"));
        let reply = eventually(Duration::from_secs(10), "a consistent read", || {
            http::get(&url).ok().filter(|r| r.status == 200)
        });
        assert_eq!(reply.body, format!("value-{i}"), "key recover/{i} after the recovery");
    }
}

fn raft_servers(cluster: &Cluster, agent: usize) -> usize {
    let configuration = http::get(&cluster.agents[agent].url("/v1/operator/raft/configuration")).unwrap().json();
    configuration["Servers"].as_array().map(Vec::len).unwrap_or(0)
}

#[test]
fn raft_recover_on_the_last_server_makes_it_leader_with_every_write() {
    let _subnet = SUBNET_213.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::servers(213, 3);
    write_keys(&mut cluster);

    let survivor_dir = cluster.agents[0].data_dir.clone();
    let refused = recover(&survivor_dir, None);
    assert!(!refused.status.success(), "recover must refuse a data dir in use: {}", text(&refused));
    assert!(text(&refused).contains("in use"), "{}", text(&refused));

    for agent in &mut cluster.agents {
        agent.stop();
    }
    // s2 and s3 are lost: never started again.
    let recovered = recover(&survivor_dir, None);
    assert!(recovered.status.success(), "recover: {}", text(&recovered));
    assert!(text(&recovered).contains("WARNING"), "{}", text(&recovered));
    eprintln!("{}", text(&recovered));

    let started = Instant::now();
    cluster.agents[0].restart();
    let own = format!("{}:8300", cluster.agents[0].ip);
    eventually(Duration::from_secs(30), "the survivor to lead", || (cluster.agents[0].leader()? == own).then_some(()));
    eprintln!("survivor leader {:.1} s after its start", started.elapsed().as_secs_f64());

    assert_keys(&cluster, &[0]);
    let write = http::put(&cluster.agents[0].url("/v1/kv/recover/after"), "alone").unwrap();
    assert_eq!(write.status, 200, "a write after the recovery: {}", write.body);
    assert_eq!(raft_servers(&cluster, 0), 1, "the survivor is the whole configuration");
}

#[test]
fn peers_json_on_two_survivors_elects_a_leader_once_and_is_deleted() {
    let _subnet = SUBNET_213.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::servers(213, 3);
    write_keys(&mut cluster);
    let node_id = |agent: usize| {
        let info = http::get(&cluster.agents[agent].url("/v1/agent/self")).unwrap().json();
        info["Config"]["NodeID"].as_str().expect("NodeID").to_string()
    };
    let peers = serde_json::json!([
        { "id": node_id(0), "address": format!("{}:8300", cluster.agents[0].ip), "non_voter": false },
        { "id": node_id(1), "address": format!("{}:8300", cluster.agents[1].ip), "non_voter": false },
    ])
    .to_string();
    // s2 stops first and misses the late writes, which s1 and s3 commit: after the recovery s2's log is the
    // shorter one, so s1 must win the election and bring s2 up to date.
    cluster.agents[1].stop();
    for i in 0..LATE_KEYS {
        let url = cluster.agents[0].url(&format!("/v1/kv/recover/late/{i}"));
        eventually(Duration::from_secs(20), "a late write on s1 and s3", || {
            http::put(&url, &format!("late-{i}")).ok().filter(|r| r.status == 200)
        });
    }
    for agent in &mut cluster.agents {
        agent.stop();
    }
    // s3 is lost.
    let survivors = [0, 1];
    for &agent in &survivors {
        let raft_dir = cluster.agents[agent].data_dir.join("raft");
        std::fs::create_dir_all(&raft_dir).unwrap();
        std::fs::write(raft_dir.join("peers.json"), &peers).unwrap();
    }

    let started = Instant::now();
    for &agent in &survivors {
        cluster.agents[agent].restart();
    }
    let leader = cluster.wait_leader();
    assert_eq!(leader, 0, "s1, which has the longer log, leads");
    eprintln!("leader s{} {:.1} s after the survivors' start", leader + 1, started.elapsed().as_secs_f64());
    for &agent in &survivors {
        let file = cluster.agents[agent].data_dir.join("raft/peers.json");
        assert!(!file.exists(), "{} is deleted once applied", file.display());
        assert!(cluster.agents[agent].log().contains("applied and deleted"), "a warning in s{}'s log", agent + 1);
    }
    assert_keys(&cluster, &survivors);
    for i in 0..LATE_KEYS {
        let url = cluster.agents[1].url(&format!("/v1/kv/recover/late/{i}?raw"));
        let reply = eventually(Duration::from_secs(10), "a late write read through s2", || {
            http::get(&url).ok().filter(|r| r.status == 200)
        });
        assert_eq!(reply.body, format!("late-{i}"));
    }
    eventually(Duration::from_secs(10), "s2's own state to hold the late writes", || {
        let url = cluster.agents[1].url(&format!("/v1/kv/recover/late/{}?stale&raw", LATE_KEYS - 1));
        http::get(&url).ok().filter(|r| r.status == 200)
    });
    let write = http::put(&cluster.agents[leader].url("/v1/kv/recover/after"), "two").unwrap();
    assert_eq!(write.status, 200, "a write after the recovery: {}", write.body);
    assert_eq!(raft_servers(&cluster, leader), 2);

    // A peers.json that does not parse stops the agent at start, naming the file.
    let bad = &mut cluster.agents[1];
    bad.stop();
    std::fs::write(bad.data_dir.join("raft/peers.json"), "[{\"id\": ").unwrap();
    let mut child = Command::new(binary())
        .args(&bad.args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the agent");
    let exited = eventually(Duration::from_secs(20), "the agent to refuse to start", || child.try_wait().ok()?);
    let output = child.wait_with_output().unwrap();
    assert!(!exited.success(), "the agent must not start with a bad peers.json: {}", text(&output));
    assert!(text(&output).contains("peers.json"), "the error names the file: {}", text(&output));
}
