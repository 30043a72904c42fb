//! The DNS interface of a real agent, asked with `dig` over UDP and TCP: service A and SRV (with the
//! targets' addresses in the additional section), tags, RFC 2782, nodes, NXDOMAIN with SOA, health
//! filtering, truncation, recursors, REFUSED, garbage input, and a client agent answering through a server.
//! This file owns loopback subnets 127.0.200.x..127.0.207.x.

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use conclave_tests::harness::{eventually, Cluster};
use conclave_tests::http;

/// Runs `dig @ip -p port ARGS` with one try and a short timeout; its standard output.
fn dig(ip: &str, port: u16, args: &[&str]) -> String {
    let output = Command::new("dig")
        .arg(format!("@{ip}"))
        .args(["-p", &port.to_string(), "+time=3", "+tries=1"])
        .args(args)
        .output()
        .expect("dig (package bind9-dnsutils) is installed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The records of the sections dig printed (lines that are neither comments nor blank).
fn records(output: &str) -> Vec<String> {
    output
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn status(output: &str) -> String {
    let at = output.find("status: ").map(|i| i + "status: ".len()).unwrap_or(0);
    output[at..].split(',').next().unwrap_or_default().to_string()
}

/// The answer section only.
fn answers(ip: &str, port: u16, args: &[&str]) -> Vec<String> {
    let mut all = vec!["+noall", "+answer"];
    all.extend_from_slice(args);
    let mut out = records(&dig(ip, port, &all));
    out.sort();
    out
}

fn register(agent_url: &str, body: &str) {
    let reply = http::put(&format!("{agent_url}/v1/agent/service/register"), body).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
}

fn catalog_register(agent_url: &str, node: &str, address: &str, service: &str) {
    let body = format!(r#"{{"Node":"{node}","Address":"{address}","Service":{{"Service":"{service}","Port":8080}}}}"#);
    let reply = http::put(&format!("{agent_url}/v1/catalog/register"), &body).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// Waits until `name` has `count` A answers over UDP.
fn wait_for_a(ip: &str, port: u16, name: &str, count: usize) {
    eventually(Duration::from_secs(15), &format!("{count} A records for {name}"), || {
        (answers(ip, port, &[name, "A"]).len() == count).then_some(())
    });
}

#[test]
fn service_node_tag_and_rfc2782_lookups_over_udp_and_tcp() {
    let cluster = Cluster::dev_with(200, &["-dns-port", "8653", "-node", "dnsnode"]);
    let agent = &cluster.agents[0];
    let (ip, port) = (agent.ip.as_str(), 8653);
    let url = agent.http();
    register(&url, r#"{"ID":"web1","Name":"web","Tags":["v1","primary"],"Port":8080}"#);
    register(&url, r#"{"ID":"web2","Name":"web","Tags":["v2"],"Address":"192.0.2.10","Port":8081}"#);
    wait_for_a(ip, port, "web.service.consul", 2);

    for transport in ["+notcp", "+tcp"] {
        let a = answers(ip, port, &[transport, "web.service.consul", "A"]);
        assert_eq!(a, ["web.service.consul. 0 IN A 127.0.200.1", "web.service.consul. 0 IN A 192.0.2.10"]);

        let srv =
            records(&dig(ip, port, &[transport, "+noall", "+answer", "+additional", "web.service.consul", "SRV"]));
        assert!(srv.contains(&"web.service.consul. 0 IN SRV 1 1 8080 dnsnode.node.dc1.consul.".to_string()), "{srv:?}");
        assert!(
            srv.contains(&"web.service.consul. 0 IN SRV 1 1 8081 c000020a.addr.dc1.consul.".to_string()),
            "{srv:?}"
        );
        assert!(srv.contains(&"dnsnode.node.dc1.consul. 0 IN A 127.0.200.1".to_string()), "{srv:?}");
        assert!(srv.contains(&"c000020a.addr.dc1.consul. 0 IN A 192.0.2.10".to_string()), "{srv:?}");

        assert_eq!(
            answers(ip, port, &[transport, "v2.web.service.consul"]),
            ["v2.web.service.consul. 0 IN A 192.0.2.10"]
        );
        assert_eq!(answers(ip, port, &[transport, "PRIMARY.Web.Service.Consul"]).len(), 1);
        let rfc = answers(ip, port, &[transport, "_web._v1.service.consul", "SRV"]);
        assert_eq!(rfc, ["_web._v1.service.consul. 0 IN SRV 1 1 8080 dnsnode.node.dc1.consul."]);
        assert_eq!(answers(ip, port, &[transport, "_web._tcp.service.consul", "SRV"]).len(), 2);
        assert_eq!(answers(ip, port, &[transport, "web.service.dc1.consul"]).len(), 2);

        assert_eq!(answers(ip, port, &[transport, "dnsnode.node.consul"]), ["dnsnode.node.consul. 0 IN A 127.0.200.1"]);
        assert_eq!(answers(ip, port, &[transport, "dnsnode.node.dc1.consul"]).len(), 1);
    }
}

#[test]
fn unknown_names_are_nxdomain_with_soa_and_other_domains_refused() {
    let cluster = Cluster::dev(201);
    let ip = cluster.agents[0].ip.as_str();
    for name in ["nope.service.consul", "nope.node.consul", "what.consul", "web.service.dc9.consul"] {
        let out = dig(ip, 8600, &[name]);
        assert_eq!(status(&out), "NXDOMAIN", "{name}: {out}");
        let authority = records(&dig(ip, 8600, &["+noall", "+authority", name]));
        assert_eq!(authority.len(), 1, "{authority:?}");
        assert!(authority[0].starts_with("consul. 0 IN SOA ns.consul. hostmaster.consul. "), "{authority:?}");
        assert!(authority[0].ends_with(" 3600 600 86400 0"), "{authority:?}");
    }
    let out = dig(ip, 8600, &["example.com"]);
    assert_eq!(status(&out), "REFUSED", "{out}");
    assert_eq!(status(&dig(ip, 8600, &["+tcp", "example.com"])), "REFUSED");
}

#[test]
fn service_with_failed_ttl_check_disappears() {
    let cluster = Cluster::dev(202);
    let agent = &cluster.agents[0];
    let ip = agent.ip.as_str();
    register(&agent.http(), r#"{"ID":"api1","Name":"api","Port":9000,"Check":{"TTL":"60s"}}"#);
    register(&agent.http(), r#"{"ID":"api2","Name":"api","Address":"192.0.2.20","Port":9000}"#);
    // A TTL check starts critical: only api2 is served.
    wait_for_a(ip, 8600, "api.service.consul", 1);
    let pass = http::put(&agent.url("/v1/agent/check/pass/service:api1"), "").unwrap();
    assert_eq!(pass.status, 200, "{}", pass.body);
    wait_for_a(ip, 8600, "api.service.consul", 2);
    let fail = http::put(&agent.url("/v1/agent/check/fail/service:api1"), "").unwrap();
    assert_eq!(fail.status, 200, "{}", fail.body);
    wait_for_a(ip, 8600, "api.service.consul", 1);
    assert_eq!(answers(ip, 8600, &["api.service.consul"]), ["api.service.consul. 0 IN A 192.0.2.20"]);
}

#[test]
fn large_answers_are_cut_over_udp_with_tc_and_complete_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dns.hcl");
    std::fs::write(&config, "dns_config {\n  enable_truncate = true\n  udp_answer_limit = 8\n}\n").unwrap();
    let cluster = Cluster::dev_with(203, &["-config-file", config.to_str().unwrap()]);
    let agent = &cluster.agents[0];
    let ip = agent.ip.as_str();
    for i in 0..40 {
        catalog_register(&agent.http(), &format!("big-node-{i:02}"), &format!("10.20.0.{}", i + 1), "big");
    }
    eventually(Duration::from_secs(15), "40 instances over TCP", || {
        (answers(ip, 8600, &["+tcp", "big.service.consul", "SRV"]).len() == 40).then_some(())
    });
    // No EDNS: at most 512 bytes, the TC bit set; `+ignore` keeps dig from retrying over TCP itself.
    let out = dig(ip, 8600, &["+noedns", "+ignore", "big.service.consul", "SRV"]);
    assert!(out.contains(" tc"), "TC bit expected: {out}");
    let udp = answers(ip, 8600, &["+noedns", "+ignore", "big.service.consul", "SRV"]);
    assert!(!udp.is_empty() && udp.len() < 40, "{} answers", udp.len());
    let out = dig(ip, 8600, &["+noedns", "+ignore", "big.service.consul", "A"]);
    assert!(out.contains(" tc"), "TC bit expected: {out}");
    assert_eq!(answers(ip, 8600, &["+noedns", "+ignore", "big.service.consul", "A"]).len(), 8);
    // TCP gives all; so does UDP with a large enough EDNS size.
    assert_eq!(answers(ip, 8600, &["+tcp", "big.service.consul", "A"]).len(), 40);
    assert_eq!(answers(ip, 8600, &["+bufsize=4096", "big.service.consul", "A"]).len(), 40);
}

/// A tiny recursor: answers every A query with 192.0.2.53, until the test ends.
fn fake_recursor(ip: &str) -> u16 {
    use hickory_proto::op::{Message, MessageType};
    use hickory_proto::rr::{rdata::A, RData, Record};
    let socket = UdpSocket::bind((ip, 0)).unwrap();
    let port = socket.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            let Ok(mut message) = Message::from_vec(&buf[..len]) else { continue };
            message.metadata.message_type = MessageType::Response;
            let name = message.queries[0].name().clone();
            message.answers.push(Record::from_rdata(name, 60, RData::A(A([192, 0, 2, 53].into()))));
            let _ = socket.send_to(&message.to_vec().unwrap(), from);
        }
    });
    port
}

#[test]
fn names_outside_the_domain_go_to_the_recursors() {
    let port = fake_recursor("127.0.204.9");
    // The first recursor is dead: the second answers after its timeout.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dns.json");
    std::fs::write(&config, r#"{"recursors":["127.0.204.8:9"],"dns_config":{"recursor_timeout":"500ms"}}"#).unwrap();
    let recursor = format!("127.0.204.9:{port}");
    let cluster = Cluster::dev_with(204, &["-recursor", &recursor, "-config-file", config.to_str().unwrap()]);
    let ip = cluster.agents[0].ip.as_str();
    for transport in ["+notcp", "+tcp"] {
        let out = dig(ip, 8600, &[transport, "example.com"]);
        assert_eq!(status(&out), "NOERROR", "{out}");
        assert_eq!(answers(ip, 8600, &[transport, "example.com"]), ["example.com. 60 IN A 192.0.2.53"]);
    }
    // Names in the domain are still ours.
    assert_eq!(status(&dig(ip, 8600, &["nope.service.consul"])), "NXDOMAIN");
}

#[test]
fn every_recursor_failing_is_servfail() {
    let cluster = Cluster::dev_with(205, &["-recursor", "127.0.205.9:9"]);
    let ip = cluster.agents[0].ip.as_str();
    assert_eq!(status(&dig(ip, 8600, &["example.com"])), "SERVFAIL");
}

#[test]
fn garbage_packets_do_not_stop_the_server() {
    let cluster = Cluster::dev(206);
    let agent = &cluster.agents[0];
    let ip = agent.ip.as_str();
    register(&agent.http(), r#"{"Name":"db","Address":"192.0.2.30","Port":5432}"#);
    wait_for_a(ip, 8600, "db.service.consul", 1);
    let socket = UdpSocket::bind("127.0.206.9:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let garbage: [&[u8]; 5] = [
        b"",
        b"\x01",
        b"\x12\x34\x01\x00\x00\x01\xff\xff",
        &[0xff; 600],
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fabc",
    ];
    for packet in garbage {
        socket.send_to(packet, (ip, 8600)).unwrap();
    }
    // A header followed by nothing readable gets FORMERR with its ID.
    socket.send_to(b"\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fabc", (ip, 8600)).unwrap();
    let mut buf = [0u8; 512];
    let mut formerr = false;
    while let Ok((len, _)) = socket.recv_from(&mut buf) {
        formerr |= len >= 4 && buf[..2] == [0xbe, 0xef] && buf[3] & 0x0f == 1;
    }
    assert!(formerr, "FORMERR for an undecodable query");
    // Garbage over TCP closes that connection only.
    let mut stream = std::net::TcpStream::connect((ip, 8600)).unwrap();
    std::io::Write::write_all(&mut stream, b"\x00\x05hello").unwrap();
    drop(stream);
    assert_eq!(answers(ip, 8600, &["db.service.consul"]), ["db.service.consul. 0 IN A 192.0.2.30"]);
    assert_eq!(answers(ip, 8600, &["+tcp", "db.service.consul"]), ["db.service.consul. 0 IN A 192.0.2.30"]);
}

#[test]
fn client_agent_answers_from_a_server() {
    let mut cluster = Cluster::servers(207, 1);
    cluster.wait_leader();
    let server_url = cluster.agents[0].http();
    catalog_register(&server_url, "ext1", "10.30.0.1", "cache");
    catalog_register(&server_url, "ext2", "10.30.0.2", "cache");
    let client = cluster.add_client(207, 10, "c1", &[]);
    let ip = cluster.agents[client].ip.clone();
    wait_for_a(&ip, 8600, "cache.service.consul", 2);
    let srv = records(&dig(&ip, 8600, &["+noall", "+answer", "+additional", "cache.service.consul", "SRV"]));
    assert!(srv.contains(&"ext1.node.dc1.consul. 0 IN A 10.30.0.1".to_string()), "{srv:?}");
    assert_eq!(answers(&ip, 8600, &["+tcp", "ext2.node.consul"]), ["ext2.node.consul. 0 IN A 10.30.0.2"]);
    assert_eq!(status(&dig(&ip, 8600, &["nope.service.consul"])), "NXDOMAIN");
    assert_eq!(status(&dig(&ip, 8600, &["example.com"])), "REFUSED");
}
