//! LAN gossip on real agents: three servers with the seed's flags and a client agent see each other as
//! members; a SIGKILLed client turns `failed`, its `serfHealth` goes critical and its services leave
//! `?passing`; restarted, it is alive again; a graceful leave shows `left`. Subnet 126.

use std::time::Duration;

use conclave_tests::harness::{eventually, Cluster};
use conclave_tests::http;
use serde_json::Value;

fn member_status(agent_url: &str, name: &str) -> Option<(u64, String)> {
    let members = http::get(&format!("{agent_url}/v1/agent/members")).ok()?.json();
    let member = members.as_array()?.iter().find(|m| m["Name"] == name)?.clone();
    Some((member["Status"].as_u64()?, member["Tags"]["role"].as_str()?.to_string()))
}

fn serf_health(agent_url: &str, node: &str) -> Option<String> {
    let checks = http::get(&format!("{agent_url}/v1/health/node/{node}")).ok()?.json();
    let check = checks.as_array()?.iter().find(|c| c["CheckID"] == "serfHealth")?.clone();
    check["Status"].as_str().map(str::to_string)
}

#[test]
fn members_fail_rejoin_and_leave_through_gossip() {
    let mut cluster = Cluster::servers(126, 3);
    cluster.wait_leader();
    let client = cluster.add_client(126, 10, "c1", &[]);
    let server = cluster.agents[0].http();
    eventually(Duration::from_secs(20), "4 alive members with their roles", || {
        let roles: Vec<(u64, String)> =
            ["s1", "s2", "s3", "c1"].iter().map(|n| member_status(&server, n)).collect::<Option<_>>()?;
        let want = [(1, "consul"), (1, "consul"), (1, "consul"), (1, "node")];
        (roles.iter().map(|(s, r)| (*s, r.as_str())).collect::<Vec<_>>() == want).then_some(())
    });
    let body = r#"{"Name":"web","Port":80,"Check":{"TTL":"1h","Status":"passing"}}"#;
    let reply = http::put(&format!("{}/v1/agent/service/register", cluster.agents[client].http()), body).unwrap();
    assert_eq!(reply.status, 200);
    eventually(Duration::from_secs(10), "web passing", || {
        let rows = http::get(&format!("{server}/v1/health/service/web?passing")).ok()?.json();
        (rows.as_array()?.len() == 1).then_some(())
    });

    cluster.agents[client].kill();
    eventually(Duration::from_secs(15), "c1 failed", || (member_status(&server, "c1")?.0 == 4).then_some(()));
    eventually(Duration::from_secs(5), "serfHealth critical", || {
        (serf_health(&server, "c1")? == "critical").then_some(())
    });
    let rows = http::get(&format!("{server}/v1/health/service/web?passing")).unwrap().json();
    assert_eq!(rows, Value::Array(vec![]), "a failed node's services are not passing");

    cluster.agents[client].restart();
    eventually(Duration::from_secs(20), "c1 alive again", || (member_status(&server, "c1")?.0 == 1).then_some(()));
    eventually(Duration::from_secs(10), "serfHealth passing again", || {
        (serf_health(&server, "c1")? == "passing").then_some(())
    });

    let reply = http::put(&format!("{}/v1/agent/leave", cluster.agents[client].http()), "").unwrap();
    assert_eq!(reply.status, 200);
    eventually(Duration::from_secs(15), "c1 left", || (member_status(&server, "c1")?.0 == 3).then_some(()));
    eventually(Duration::from_secs(10), "c1 deregistered", || {
        let nodes = http::get(&format!("{server}/v1/catalog/nodes")).ok()?.json();
        nodes.as_array()?.iter().all(|n| n["Node"] != "c1").then_some(())
    });
}
