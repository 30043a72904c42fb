//! Autopilot, black-box on 127.0.210.x: dead servers leave the Raft configuration but never so many that
//! `min_quorum` or quorum is lost; a server that joins a formed cluster is a non-voter until it has been
//! healthy for `server_stabilization_time`; the replicated configuration takes check-and-set writes.
//! The two tests share the subnet, so they run one after the other.

use std::sync::Mutex;
use std::time::Duration;

use conclave_tests::harness::{eventually, Agent, Cluster};
use conclave_tests::http;
use serde_json::Value;

static SUBNET: Mutex<()> = Mutex::new(());

const SUBNET_OCTET: u8 = 210;

fn config_file(dir: &std::path::Path, cleanup: bool) -> String {
    let path = dir.join("autopilot.hcl");
    let text = format!(
        "autopilot {{\n  cleanup_dead_servers = {cleanup}\n  min_quorum = 3\n  server_stabilization_time = \"2s\"\n  last_contact_threshold = \"1s\"\n}}\n"
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn raft_servers(agent: &Agent) -> Option<Vec<Value>> {
    let reply = http::get(&agent.url("/v1/operator/raft/configuration")).ok().filter(|r| r.status == 200)?;
    reply.json()["Servers"].as_array().cloned()
}

fn names(servers: &[Value], key: &str) -> Vec<String> {
    let mut names: Vec<String> = servers.iter().map(|s| s[key].as_str().unwrap_or("").to_string()).collect();
    names.sort();
    names
}

/// `/v1/operator/autopilot/health` as (HTTP status, body).
fn health(agent: &Agent) -> Option<(u16, Value)> {
    let reply = http::get(&agent.url("/v1/operator/autopilot/health")).ok()?;
    matches!(reply.status, 200 | 429).then(|| (reply.status, reply.json()))
}

fn server_health<'a>(health: &'a Value, name: &str) -> Option<&'a Value> {
    health["Servers"].as_array()?.iter().find(|s| s["Name"] == name)
}

fn set_config(agent: &Agent, config: &Value, cas: u64) -> bool {
    let url = agent.url(&format!("/v1/operator/autopilot/configuration?cas={cas}"));
    let reply = http::put(&url, &config.to_string()).unwrap();
    assert_eq!(reply.status, 200, "PUT configuration: {}", reply.body);
    reply.json().as_bool().expect("PUT answers true or false")
}

fn get_config(agent: &Agent) -> Value {
    let reply = http::get(&agent.url("/v1/operator/autopilot/configuration")).unwrap();
    assert_eq!(reply.status, 200, "GET configuration: {}", reply.body);
    reply.json()
}

#[test]
fn dead_servers_leave_the_configuration_but_never_below_min_quorum() {
    let _subnet = SUBNET.lock().unwrap_or_else(|e| e.into_inner());
    let files = tempfile::tempdir().unwrap();
    // Cleanup starts off, so the health endpoint can be seen reporting the dead servers first.
    let file = config_file(files.path(), false);
    let mut cluster = Cluster::servers_with(SUBNET_OCTET, 5, &["-config-file", &file]);
    let leader = cluster.wait_leader();
    let all_healthy = |agent: &Agent| {
        health(agent).filter(|(status, h)| {
            *status == 200 && h["Healthy"] == true && h["Servers"].as_array().map(Vec::len) == Some(5)
        })
    };
    let (_, first) =
        eventually(Duration::from_secs(60), "five healthy servers", || all_healthy(&cluster.agents[leader]));
    assert_eq!(first["FailureTolerance"], 2, "{first}");
    let stored = get_config(&cluster.agents[leader]);
    assert_eq!(
        (stored["MinQuorum"].as_u64(), stored["CleanupDeadServers"].as_bool()),
        (Some(3), Some(false)),
        "{stored}"
    );
    assert_eq!(stored["ServerStabilizationTime"], "2s", "{stored}");

    // Kill two followers: the health endpoint reports them failed and unhealthy (429), and they stay.
    let victims: Vec<usize> = (0..5).filter(|&i| i != leader).take(2).collect();
    let victim_names: Vec<String> = victims.iter().map(|&i| cluster.agents[i].name.clone()).collect();
    for &i in &victims {
        cluster.agents[i].kill();
    }
    let reported = eventually(Duration::from_secs(60), "the two dead servers reported failed", || {
        let (status, h) = health(&cluster.agents[leader])?;
        let failed = victim_names
            .iter()
            .all(|name| server_health(&h, name).is_some_and(|s| s["SerfStatus"] == "failed" && s["Healthy"] == false));
        (status == 429 && failed).then_some(h)
    });
    assert_eq!(reported["Healthy"], false, "{reported}");
    assert_eq!(reported["FailureTolerance"], 0, "{reported}");
    assert_eq!(raft_servers(&cluster.agents[leader]).unwrap().len(), 5, "no cleanup while it is off");

    // Turn cleanup on with a CAS write: both leave the Raft configuration (3 voters = min_quorum remain).
    let mut config = get_config(&cluster.agents[leader]);
    let index = config["ModifyIndex"].as_u64().unwrap();
    config["CleanupDeadServers"] = Value::Bool(true);
    assert!(set_config(&cluster.agents[leader], &config, index));
    let leader_agent = &cluster.agents[leader];
    let remaining =
        eventually(Duration::from_secs(60), "the two dead servers removed from the raft configuration", || {
            let servers = raft_servers(leader_agent)?;
            (servers.len() == 3).then_some(servers)
        });
    for name in &victim_names {
        assert!(!names(&remaining, "Node").contains(name), "{name} still in {remaining:?}");
    }
    let (_, after) = eventually(Duration::from_secs(30), "three healthy servers", || {
        health(leader_agent).filter(|(status, h)| *status == 200 && h["Servers"].as_array().map(Vec::len) == Some(3))
    });
    assert_eq!(after["FailureTolerance"], 1, "{after}");

    // Kill a third: 3 - 1 < min_quorum 3, so it stays, and 2 of 3 voters still make a quorum.
    let third = (0..5).find(|&i| i != leader && !victims.contains(&i)).unwrap();
    let third_name = cluster.agents[third].name.clone();
    cluster.agents[third].kill();
    eventually(Duration::from_secs(60), "the third dead server reported failed", || {
        let (_, h) = health(&cluster.agents[leader])?;
        server_health(&h, &third_name).filter(|s| s["SerfStatus"] == "failed").map(|_| ())
    });
    // Several autopilot rounds (one every 500 ms) see it failed: it must still be a voter.
    std::thread::sleep(Duration::from_secs(5));
    let servers = raft_servers(&cluster.agents[leader]).unwrap();
    assert_eq!(servers.len(), 3, "{servers:?}");
    assert!(names(&servers, "Node").contains(&third_name), "{third_name} was removed: {servers:?}");
    let write = http::put(&cluster.agents[leader].url("/v1/kv/autopilot/after"), "still-a-quorum").unwrap();
    assert_eq!((write.status, write.body.trim()), (200, "true"), "write with 2 of 3 voters");
}

#[test]
fn new_server_joins_as_non_voter_and_is_promoted_and_configuration_takes_cas() {
    let _subnet = SUBNET.lock().unwrap_or_else(|e| e.into_inner());
    let files = tempfile::tempdir().unwrap();
    let file = config_file(files.path(), true);
    let mut cluster = Cluster::servers_with(SUBNET_OCTET, 3, &["-config-file", &file]);
    let leader = cluster.wait_leader();

    // CAS: a stale index is refused and changes nothing; the current one applies.
    let leader_agent = &cluster.agents[leader];
    let config = eventually(Duration::from_secs(30), "the stored configuration", || {
        let config = get_config(leader_agent);
        (config["ModifyIndex"].as_u64()? > 0).then_some(config)
    });
    let index = config["ModifyIndex"].as_u64().unwrap();
    let mut changed = config.clone();
    changed["MaxTrailingLogs"] = Value::from(500);
    assert!(!set_config(leader_agent, &changed, index - 1), "a stale cas must be refused");
    assert_eq!(get_config(leader_agent)["MaxTrailingLogs"], 250);
    assert!(set_config(leader_agent, &changed, index));
    let now = get_config(&cluster.agents[(leader + 1) % 3]);
    assert_eq!(now["MaxTrailingLogs"], 500, "replicated to a follower: {now}");
    assert!(now["ModifyIndex"].as_u64().unwrap() > index && now["CreateIndex"].as_u64() == Some(index), "{now}");
    let bad =
        http::put(&leader_agent.url("/v1/operator/autopilot/configuration"), r#"{"RedundancyZoneTag":"az"}"#).unwrap();
    assert_eq!(bad.status, 400, "{}", bad.body);

    // A fourth server joins the formed cluster: a non-voter first, a voter after stabilizing.
    let ip = format!("127.0.{SUBNET_OCTET}.4");
    let mut args: Vec<String> = vec![
        "agent".into(),
        "-server".into(),
        "-data-dir".into(),
        cluster.dir.path().join("s4").display().to_string(),
        "-node=s4".into(),
        format!("-bind={ip}"),
        "-client".into(),
        ip.clone(),
        "-config-file".into(),
        file.clone(),
    ];
    for agent in &cluster.agents {
        args.push("-join".into());
        args.push(agent.ip.clone());
    }
    let newcomer = Agent::launch("s4", &ip, args, cluster.dir.path());
    newcomer.wait_http();
    cluster.agents.push(newcomer);
    let leader_agent = &cluster.agents[leader];
    let voter_of_s4 = || {
        let servers = raft_servers(leader_agent)?;
        servers.iter().find(|s| s["Node"] == "s4").and_then(|s| s["Voter"].as_bool())
    };
    let first = eventually(Duration::from_secs(60), "s4 in the raft configuration", voter_of_s4);
    assert!(!first, "s4 must join as a non-voter (server_stabilization_time is 2s)");
    eventually(Duration::from_secs(60), "s4 promoted to voter", || voter_of_s4().filter(|v| *v));
    // The autopilot's report follows within a round.
    let state = eventually(Duration::from_secs(10), "the autopilot state naming four voters", || {
        let reply = http::get(&leader_agent.url("/v1/operator/autopilot/state")).ok().filter(|r| r.status == 200)?;
        let state = reply.json();
        (state["Voters"].as_array().map(Vec::len) == Some(4)).then_some(state)
    });
    assert_eq!(state["Servers"].as_object().map(|s| s.len()), Some(4), "{state}");
    assert_eq!(
        state["Servers"].as_object().unwrap().values().filter(|s| s["Status"] == "leader").count(),
        1,
        "{state}"
    );
    // A follower answers health and state from the leader.
    let follower = &cluster.agents[(leader + 1) % 3];
    let (_, from_follower) = eventually(Duration::from_secs(30), "health through a follower", || health(follower));
    assert_eq!(from_follower["Servers"].as_array().map(Vec::len), Some(4), "{from_follower}");
}
