//! No way into a cluster with TLS (`verify_incoming`, `verify_server_hostname`) and gossip encryption
//! without credentials: a server without a certificate, a server with a certificate from another CA, a
//! server presenting a client certificate, and an agent under the wrong gossip key are each started
//! against the running cluster; none becomes a Raft voter, the wrong key never makes a member, and
//! plaintext on the RPC port is cut off. Subnet 142.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use conclave_tests::harness::{eventually, Cluster};
use conclave_tests::http;
use conclave_tests::pki::{keygen, write, Pki};

const SUBNET: u8 = 142;

fn raft_servers(cluster: &Cluster) -> Vec<String> {
    let reply = http::get(&cluster.agents[0].url("/v1/operator/raft/configuration")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let mut names: Vec<String> =
        config["Servers"].as_array().unwrap().iter().map(|s| s["Node"].as_str().unwrap().to_string()).collect();
    names.sort();
    names
}

fn member_names(cluster: &Cluster) -> Vec<String> {
    let reply = http::get(&cluster.agents[0].url("/v1/agent/members")).unwrap();
    let members: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let mut names: Vec<String> =
        members.as_array().unwrap().iter().map(|m| m["Name"].as_str().unwrap().to_string()).collect();
    names.sort();
    names
}

/// A plaintext connection to a server's RPC port (mode byte 0x01, then a frame) is closed unanswered.
fn plaintext_rpc_is_cut_off(ip: &str) {
    let mut stream = TcpStream::connect((ip, 8300)).expect("connect to RPC");
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut frame = vec![0x01];
    frame.extend_from_slice(&64u32.to_be_bytes());
    frame.extend_from_slice(&[0u8; 64]);
    let _ = stream.write_all(&frame);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert!(answer.is_empty(), "plaintext RPC got an answer: {answer:?}");
}

#[test]
fn no_server_or_agent_without_credentials_gets_into_a_secured_cluster() {
    let pki_dir = tempfile::tempdir().expect("temp dir");
    let ips: Vec<String> = (1..=3).map(|i| format!("127.0.{SUBNET}.{i}")).collect();
    let pki = Pki::create(pki_dir.path(), &ips);
    let other = Pki::create(&pki_dir.path().join("other-ca"), &[]);
    let key = keygen(pki_dir.path());
    let (cert, cert_key) = pki.pair("server");
    let server_config = write(pki_dir.path(), "server.hcl", &pki.server_config((&cert, &cert_key), &key));
    let mut cluster = Cluster::servers_with(SUBNET, 3, &["-config-file", &server_config]);
    cluster.wait_leader();
    let servers = raft_servers(&cluster);
    assert_eq!(servers, ["s1", "s2", "s3"]);

    // A server holding the gossip key but no certificate at all.
    let no_tls = write(pki_dir.path(), "no-tls.hcl", &format!("encrypt = \"{key}\"\n"));
    // A server whose certificate comes from another CA (and which trusts that CA).
    let (other_cert, other_key) = other.pair("server");
    let wrong_ca = write(pki_dir.path(), "wrong-ca.hcl", &other.server_config((&other_cert, &other_key), &key));
    // A server presenting the right CA's client certificate, which does not name server.dc1.consul.
    let (client_cert, client_key) = pki.pair("client");
    let posing = write(pki_dir.path(), "posing.hcl", &pki.server_config((&client_cert, &client_key), &key));
    for (host, name, config) in [(21, "x-no-tls", &no_tls), (22, "x-wrong-ca", &wrong_ca), (23, "x-posing", &posing)] {
        cluster.add_client(SUBNET, host, name, &["-server", "-config-file", config]);
    }
    // An agent under a gossip key the cluster does not have.
    let wrong_key = write(pki_dir.path(), "wrong-key.hcl", &pki.client_config(&keygen(pki_dir.path())));
    cluster.add_client(SUBNET, 24, "x-wrong-key", &["-config-file", &wrong_key]);

    plaintext_rpc_is_cut_off(&ips[0]);
    // Give them time to try: greetings, retries, an election timeout or two.
    std::thread::sleep(Duration::from_secs(15));
    let leaders: Vec<Option<String>> = cluster.agents[..3].iter().map(|a| a.leader()).collect();
    let expected = ips.iter().map(|ip| format!("{ip}:8300")).collect::<Vec<_>>();
    assert!(
        leaders.iter().all(|l| l.as_ref().is_some_and(|l| *l == leaders[0].clone().unwrap() && expected.contains(l))),
        "the servers do not agree on one of them as leader: {leaders:?}"
    );
    assert_eq!(raft_servers(&cluster), servers, "an intruder became a Raft voter");
    let members = member_names(&cluster);
    assert!(!members.contains(&"x-wrong-key".to_string()), "the agent under the wrong key is a member: {members:?}");
    for server in 0..3 {
        let log = cluster.agents[server].log();
        let admitted =
            log.lines().find(|line| line.contains("server added to the raft configuration") && line.contains("x-"));
        assert!(admitted.is_none(), "an intruder was added: {admitted:?}");
    }
    eventually(Duration::from_secs(10), "the catalog unchanged by the intruders", || {
        let nodes = http::get(&cluster.agents[0].url("/v1/catalog/nodes")).ok()?.body;
        let names: Vec<String> = serde_json::from_str::<serde_json::Value>(&nodes)
            .ok()?
            .as_array()?
            .iter()
            .filter_map(|n| n["Node"].as_str().map(str::to_string))
            .collect();
        (!names.iter().any(|n| n == "x-wrong-key")).then_some(())
    });
}
