//! Outage recovery without `peers.json`: every server of a cluster stopped and started again on its data
//! dir at a new address elects a leader by itself (servers are known by Raft ID; their greetings tell
//! the new addresses), keeps every acknowledged write, and the Raft configuration ends up naming the new
//! addresses.

use std::collections::BTreeSet;
use std::time::Duration;

use conclave_tests::harness::{eventually, Cluster};
use conclave_tests::http;

const KEYS: usize = 40;

#[test]
fn servers_restarted_on_new_addresses_elect_a_leader_and_keep_every_write() {
    let mut cluster = Cluster::servers(190, 3);
    let leader = cluster.wait_leader();
    for i in 0..KEYS {
        let url = cluster.agents[(leader + i) % 3].url(&format!("/v1/kv/outage/{i}"));
        let reply = http::put(&url, &format!("value-{i}")).unwrap();
        assert_eq!(reply.status, 200, "write {i}: {}", reply.body);
    }
    for agent in &mut cluster.agents {
        agent.stop();
    }

    // 127.0.190.1-3 become 127.0.190.4-6; `-join` names the new addresses only.
    let moves: Vec<(String, String)> =
        (1..=3).map(|i| (format!("127.0.190.{i}"), format!("127.0.190.{}", i + 3))).collect();
    for (agent, (_, new_ip)) in cluster.agents.iter_mut().zip(&moves) {
        agent.args = agent
            .args
            .iter()
            .map(|arg| {
                moves.iter().fold(
                    arg.clone(),
                    |arg, (old, new)| if arg.ends_with(old.as_str()) { arg.replace(old, new) } else { arg },
                )
            })
            .collect();
        agent.ip = new_ip.clone();
    }
    let restarted = std::time::Instant::now();
    for agent in &mut cluster.agents {
        agent.restart();
    }
    let new_ips: BTreeSet<String> = moves.iter().map(|(_, new)| new.clone()).collect();
    let on_new_address = |leader: &str| new_ips.iter().any(|ip| leader.starts_with(&format!("{ip}:")));
    // Right after the restart a server may still name the leader of before, at its old address.
    let leader = eventually(Duration::from_secs(30), "one leader on a new address, named by all", || {
        let reported: Vec<String> = cluster.agents.iter().filter_map(|a| a.leader()).collect();
        let first = reported.first()?.clone();
        (reported.len() == 3 && reported.iter().all(|l| *l == first) && on_new_address(&first)).then_some(first)
    });
    eprintln!("leader {leader} {:.1} s after the restart on new addresses", restarted.elapsed().as_secs_f64());

    for i in 0..KEYS {
        let url = cluster.agents[i % 3].url(&format!("/v1/kv/outage/{i}?raw"));
        let reply = eventually(Duration::from_secs(10), "a consistent read", || {
            http::get(&url).ok().filter(|r| r.status == 200)
        });
        assert_eq!(reply.body, format!("value-{i}"), "key outage/{i} after the move");
    }
    let write = http::put(&cluster.agents[0].url("/v1/kv/outage/after"), "moved").unwrap();
    assert_eq!(write.status, 200, "a write after the move: {}", write.body);

    eventually(Duration::from_secs(20), "the raft configuration to name the new addresses", || {
        let configuration = http::get(&cluster.agents[1].url("/v1/operator/raft/configuration")).ok()?.json();
        let addresses: BTreeSet<String> = configuration["Servers"]
            .as_array()?
            .iter()
            .filter_map(|s| s["Address"].as_str()?.split(':').next().map(String::from))
            .collect();
        (addresses == new_ips).then_some(())
    });
}
