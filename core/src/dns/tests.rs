//! Unit tests of the DNS interface, each named after the rule it proves: a table for name parsing, then
//! answers built from a tiny catalog with a fixed-seed rng.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use rand::SeedableRng;

use super::*;
use crate::catalog::{CheckSpec, CheckStatus, NodeSpec, RegisterRequest, ServiceSpec};
use crate::state::Command;

fn lookup(name: &str) -> Parsed {
    parse_name(&Name::from_ascii(name).unwrap(), &["consul".to_string()])
}

fn service(service: &str, tag: Option<&str>, dc: Option<&str>) -> Parsed {
    Parsed::Ours(Lookup::Service {
        service: service.to_string(),
        tag: tag.map(str::to_string),
        datacenter: dc.map(str::to_string),
    })
}

#[test]
fn names_parse_into_consul_lookups() {
    let node = |n: &str, dc: Option<&str>| {
        Parsed::Ours(Lookup::Node { node: n.to_string(), datacenter: dc.map(str::to_string) })
    };
    let table = [
        ("web.service.consul.", service("web", None, None)),
        ("WEB.Service.CONSUL.", service("web", None, None)),
        ("web.service.consul", service("web", None, None)),
        ("v1.web.service.consul.", service("web", Some("v1"), None)),
        ("a.b.web.service.consul.", service("web", Some("a.b"), None)),
        ("web.service.dc2.consul.", service("web", None, Some("dc2"))),
        ("web.service.dc2.dc.consul.", service("web", None, Some("dc2"))),
        ("_web._tcp.service.consul.", service("web", None, None)),
        ("_web._amqp.service.consul.", service("web", Some("amqp"), None)),
        ("_web._tcp.consul.", service("web", None, None)),
        ("_web._tcp.dc1.consul.", service("web", None, Some("dc1"))),
        ("_web._v1.service.dc1.consul.", service("web", Some("v1"), Some("dc1"))),
        ("n1.node.consul.", node("n1", None)),
        ("n1.node.dc1.consul.", node("n1", Some("dc1"))),
        ("n1.node.dc1.dc.consul.", node("n1", Some("dc1"))),
        (
            "c000020a.addr.dc1.consul.",
            Parsed::Ours(Lookup::Addr { ip: "192.0.2.10".parse().unwrap(), datacenter: Some("dc1".into()) }),
        ),
        ("consul.", Parsed::Ours(Lookup::Apex)),
        ("service.consul.", Parsed::Ours(Lookup::Unknown)),
        ("node.consul.", Parsed::Ours(Lookup::Unknown)),
        ("zz.addr.consul.", Parsed::Ours(Lookup::Unknown)),
        ("web.query.consul.", Parsed::Ours(Lookup::Unknown)),
        ("foo.consul.", Parsed::Ours(Lookup::Unknown)),
        ("example.com.", Parsed::NotOurs),
        ("consul.example.com.", Parsed::NotOurs),
        (".", Parsed::NotOurs),
    ];
    for (name, expected) in table {
        assert_eq!(lookup(name), expected, "{name}");
    }
}

#[test]
fn addr_labels_round_trip_ipv6() {
    let ip: IpAddr = "2001:db8::1".parse().unwrap();
    let hex = name::ip_hex(ip);
    assert_eq!(hex.len(), 32);
    assert_eq!(lookup(&format!("{hex}.addr.consul.")), Parsed::Ours(Lookup::Addr { ip, datacenter: None }));
}

#[test]
fn service_ttl_prefers_exact_then_longest_prefix_then_star() {
    let config = DnsConfig {
        service_ttl_s: [("*".to_string(), 5), ("db*".to_string(), 10), ("db-main".to_string(), 30)]
            .into_iter()
            .collect(),
        ..DnsConfig::default()
    };
    assert_eq!(config.service_ttl_s("web"), 5);
    assert_eq!(config.service_ttl_s("db-replica"), 10);
    assert_eq!(config.service_ttl_s("db-main"), 30);
    assert_eq!(DnsConfig::default().service_ttl_s("web"), 0);
}

// ---- answers ----

fn register(
    catalog: &mut State,
    index: u64,
    node: &str,
    address: &str,
    svc: Option<ServiceSpec>,
    checks: Vec<CheckSpec>,
) {
    let request = RegisterRequest {
        node: NodeSpec {
            node: node.to_string(),
            address: address.to_string(),
            datacenter: "dc1".to_string(),
            meta: [("rack".to_string(), "r1".to_string())].into_iter().collect(),
            ..NodeSpec::default()
        },
        skip_node_update: false,
        service: svc,
        checks,
    };
    catalog.apply(index, &Command::Catalog(CatalogCommand::Register(request)));
}

fn instance(name: &str, id: &str, tags: &[&str], address: &str, port: u16) -> ServiceSpec {
    ServiceSpec {
        id: id.to_string(),
        service: name.to_string(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        address: address.to_string(),
        port,
        ..ServiceSpec::default()
    }
}

fn check(id: &str, service_id: &str, status: CheckStatus) -> CheckSpec {
    CheckSpec {
        check_id: id.to_string(),
        name: id.to_string(),
        status,
        service_id: service_id.to_string(),
        ..CheckSpec::default()
    }
}

/// web on n1 (passing, tag v1), n2 (warning, tag v2) and n3 (critical); db on n1 with its own address.
fn catalog() -> State {
    let mut catalog = State::new();
    register(
        &mut catalog,
        1,
        "n1",
        "10.0.0.1",
        Some(instance("web", "web1", &["v1"], "", 80)),
        vec![check("c1", "web1", CheckStatus::Passing)],
    );
    register(
        &mut catalog,
        2,
        "n2",
        "10.0.0.2",
        Some(instance("web", "web2", &["v2"], "", 81)),
        vec![check("c2", "web2", CheckStatus::Warning)],
    );
    register(
        &mut catalog,
        3,
        "n3",
        "10.0.0.3",
        Some(instance("web", "web3", &["v1"], "", 82)),
        vec![check("c3", "web3", CheckStatus::Critical)],
    );
    register(&mut catalog, 4, "n1", "10.0.0.1", Some(instance("db", "db1", &[], "192.0.2.10", 5432)), vec![]);
    catalog
}

fn query_bytes(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut message = Message::new(4242, hickory_proto::op::MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        message.edns = Some(e);
    }
    message.to_vec().unwrap()
}

fn ask_with(
    catalog: &State,
    config: &DnsConfig,
    name: &str,
    qtype: RecordType,
    transport: Transport,
    edns: Option<u16>,
) -> Message {
    let mut rng = rand_chacha_free_rng();
    match handle_query(catalog, config, &query_bytes(name, qtype, edns), transport, &mut rng) {
        Outcome::Reply(bytes) => Message::from_vec(&bytes).expect("our answers decode"),
        other => panic!("expected a reply to {name}, got {other:?}"),
    }
}

fn ask(catalog: &State, name: &str, qtype: RecordType) -> Message {
    ask_with(catalog, &DnsConfig::default(), name, qtype, Transport::Tcp, None)
}

/// A fixed-seed rng (core has no chacha dependency; `StdRng` is deterministic for a seed).
fn rand_chacha_free_rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(7)
}

fn addresses(message: &Message) -> Vec<String> {
    let mut out: Vec<String> = message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

#[test]
fn service_a_excludes_critical_but_keeps_warning() {
    let answer = ask(&catalog(), "web.service.consul.", RecordType::A);
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.metadata.authoritative);
    assert_eq!(answer.metadata.id, 4242);
    assert_eq!(addresses(&answer), ["10.0.0.1", "10.0.0.2"]);
}

#[test]
fn only_passing_excludes_warning_too() {
    let config = DnsConfig { only_passing: true, ..DnsConfig::default() };
    let answer = ask_with(&catalog(), &config, "web.service.consul.", RecordType::A, Transport::Tcp, None);
    assert_eq!(addresses(&answer), ["10.0.0.1"]);
}

#[test]
fn critical_node_check_excludes_every_service_on_the_node() {
    let mut catalog = catalog();
    register(&mut catalog, 5, "n1", "10.0.0.1", None, vec![check("serfHealth", "", CheckStatus::Critical)]);
    let answer = ask(&catalog, "web.service.consul.", RecordType::A);
    assert_eq!(addresses(&answer), ["10.0.0.2"]);
}

#[test]
fn tag_and_rfc2782_lookups_filter_by_tag() {
    let catalog = catalog();
    assert_eq!(addresses(&ask(&catalog, "v1.web.service.consul.", RecordType::A)), ["10.0.0.1"]);
    assert_eq!(addresses(&ask(&catalog, "V2.web.service.consul.", RecordType::A)), ["10.0.0.2"]);
    let srv = ask(&catalog, "_web._v1.service.consul.", RecordType::SRV);
    assert_eq!(srv.answers.len(), 1);
    let any = ask(&catalog, "_web._tcp.service.consul.", RecordType::SRV);
    assert_eq!(any.answers.len(), 2);
}

#[test]
fn srv_targets_nodes_with_addresses_in_additional() {
    let answer = ask(&catalog(), "web.service.consul.", RecordType::SRV);
    let mut srvs: Vec<(u16, String)> = answer
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some((srv.port, srv.target.to_ascii())),
            _ => None,
        })
        .collect();
    srvs.sort();
    assert_eq!(srvs, [(80, "n1.node.dc1.consul.".to_string()), (81, "n2.node.dc1.consul.".to_string())]);
    let mut extra: Vec<String> = answer.additionals.iter().map(|r| r.name.to_ascii()).collect();
    extra.sort();
    assert_eq!(extra, ["n1.node.dc1.consul.", "n2.node.dc1.consul."]);
}

#[test]
fn srv_target_of_service_with_own_address_is_hex_addr() {
    let answer = ask(&catalog(), "db.service.consul.", RecordType::SRV);
    let RData::SRV(srv) = &answer.answers[0].data else { panic!("an SRV answer") };
    assert_eq!(srv.target.to_ascii(), "c000020a.addr.dc1.consul.");
    assert_eq!(answer.additionals[0].name.to_ascii(), "c000020a.addr.dc1.consul.");
    let addr = ask(&catalog(), "c000020a.addr.dc1.consul.", RecordType::A);
    assert_eq!(addresses(&addr), ["192.0.2.10"]);
}

#[test]
fn node_lookup_answers_address_and_meta_txt() {
    let catalog = catalog();
    assert_eq!(addresses(&ask(&catalog, "n2.node.consul.", RecordType::A)), ["10.0.0.2"]);
    assert_eq!(addresses(&ask(&catalog, "N2.node.dc1.consul.", RecordType::A)), ["10.0.0.2"]);
    let txt = ask(&catalog, "n2.node.consul.", RecordType::TXT);
    let RData::TXT(text) = &txt.answers[0].data else { panic!("a TXT answer") };
    assert_eq!(text.to_string(), "rack=r1");
}

#[test]
fn unknown_names_are_nxdomain_with_soa() {
    let catalog = catalog();
    for name in ["nope.service.consul.", "nope.node.consul.", "what.consul.", "web.service.dc2.consul."] {
        let answer = ask(&catalog, name, RecordType::A);
        assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain, "{name}");
        assert!(answer.answers.is_empty());
        let RData::SOA(soa) = &answer.authorities[0].data else { panic!("SOA in authority for {name}") };
        assert_eq!(soa.mname.to_ascii(), "ns.consul.");
        assert_eq!(soa.rname.to_ascii(), "hostmaster.consul.");
        assert_eq!((soa.refresh, soa.retry, soa.expire, soa.minimum), (3600, 600, 86400, 0));
    }
}

#[test]
fn service_with_only_critical_instances_is_nxdomain() {
    let mut catalog = State::new();
    register(
        &mut catalog,
        1,
        "n3",
        "10.0.0.3",
        Some(instance("api", "api1", &[], "", 80)),
        vec![check("c", "api1", CheckStatus::Critical)],
    );
    assert_eq!(ask(&catalog, "api.service.consul.", RecordType::A).metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn names_outside_the_domain_are_refused_without_recursors() {
    let answer = ask(&catalog(), "example.com.", RecordType::A);
    assert_eq!(answer.metadata.response_code, ResponseCode::Refused);
    let config = DnsConfig { recursion_available: true, ..DnsConfig::default() };
    let mut rng = rand_chacha_free_rng();
    let outcome =
        handle_query(&catalog(), &config, &query_bytes("example.com.", RecordType::A, None), Transport::Udp, &mut rng);
    assert_eq!(outcome, Outcome::Recurse);
}

#[test]
fn other_domain_flag_is_honoured() {
    let config = DnsConfig { domain: "Example.Internal".to_string(), ..DnsConfig::default() };
    let answer = ask_with(&catalog(), &config, "web.service.example.internal.", RecordType::A, Transport::Udp, None);
    assert_eq!(addresses(&answer), ["10.0.0.1", "10.0.0.2"]);
    let answer = ask_with(&catalog(), &config, "web.service.consul.", RecordType::A, Transport::Udp, None);
    assert_eq!(answer.metadata.response_code, ResponseCode::Refused);
}

fn many_instances(count: u16) -> State {
    let mut catalog = State::new();
    for i in 0..count {
        let node = format!("node-with-a-long-name-{i}");
        let address = format!("10.1.{}.{}", i / 250, i % 250 + 1);
        register(&mut catalog, u64::from(i) + 1, &node, &address, Some(instance("big", "big", &[], "", 80)), vec![]);
    }
    catalog
}

#[test]
fn udp_without_edns_is_cut_to_answer_limit_and_sets_tc_only_with_enable_truncate() {
    let catalog = many_instances(40);
    let quiet = ask_with(&catalog, &DnsConfig::default(), "big.service.consul.", RecordType::A, Transport::Udp, None);
    assert_eq!((quiet.answers.len(), quiet.metadata.truncation), (3, false));
    let config = DnsConfig { enable_truncate: true, ..DnsConfig::default() };
    let loud = ask_with(&catalog, &config, "big.service.consul.", RecordType::A, Transport::Udp, None);
    assert_eq!((loud.answers.len(), loud.metadata.truncation), (3, true));
    let tcp = ask_with(&catalog, &config, "big.service.consul.", RecordType::A, Transport::Tcp, None);
    assert_eq!((tcp.answers.len(), tcp.metadata.truncation), (40, false));
}

#[test]
fn udp_srv_answers_fit_512_bytes_and_keep_their_additionals() {
    let catalog = many_instances(40);
    let config = DnsConfig { enable_truncate: true, udp_answer_limit: 8, ..DnsConfig::default() };
    let query = query_bytes("big.service.consul.", RecordType::SRV, None);
    let mut rng = rand_chacha_free_rng();
    let Outcome::Reply(bytes) = handle_query(&catalog, &config, &query, Transport::Udp, &mut rng) else { panic!() };
    assert!(bytes.len() <= UDP_BYTES_DEFAULT, "{} bytes", bytes.len());
    let answer = Message::from_vec(&bytes).unwrap();
    assert!(answer.metadata.truncation);
    assert!(!answer.answers.is_empty() && answer.answers.len() < 8);
    assert_eq!(answer.answers.len(), answer.additionals.len());
}

#[test]
fn edns_size_is_honoured_over_udp() {
    let catalog = many_instances(40);
    let answer =
        ask_with(&catalog, &DnsConfig::default(), "big.service.consul.", RecordType::A, Transport::Udp, Some(4096));
    assert_eq!(answer.answers.len(), 40);
    assert!(answer.edns.is_some());
}

#[test]
fn answers_are_shuffled_by_the_rng() {
    let catalog = many_instances(20);
    let query = query_bytes("big.service.consul.", RecordType::A, None);
    let orders: BTreeSet<Vec<u8>> = (0..5)
        .map(|seed| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            match handle_query(&catalog, &DnsConfig::default(), &query, Transport::Tcp, &mut rng) {
                Outcome::Reply(bytes) => bytes,
                other => panic!("{other:?}"),
            }
        })
        .collect();
    assert!(orders.len() > 1, "different seeds give different orders");
}

use crate::catalog::CatalogCommand;
use std::collections::BTreeSet;

#[test]
fn malformed_queries_get_formerr_or_are_dropped() {
    let mut rng = rand_chacha_free_rng();
    let catalog = catalog();
    let config = DnsConfig::default();
    assert!(matches!(handle_query(&catalog, &config, b"\x01", Transport::Udp, &mut rng), Outcome::Drop(_)));
    let mut garbage = query_bytes("web.service.consul.", RecordType::A, None);
    garbage.truncate(20);
    let Outcome::Reply(bytes) = handle_query(&catalog, &config, &garbage, Transport::Udp, &mut rng) else { panic!() };
    let reply = Message::from_vec(&bytes).unwrap();
    assert_eq!((reply.metadata.id, reply.metadata.response_code), (4242, ResponseCode::FormErr));
    let mut response = Message::from_vec(&query_bytes("web.service.consul.", RecordType::A, None)).unwrap();
    response.metadata.message_type = hickory_proto::op::MessageType::Response;
    assert!(matches!(
        handle_query(&catalog, &config, &response.to_vec().unwrap(), Transport::Udp, &mut rng),
        Outcome::Drop(_)
    ));
}

#[test]
fn servfail_keeps_the_query_id() {
    let bytes = servfail(&query_bytes("example.com.", RecordType::A, None)).unwrap();
    let reply = Message::from_vec(&bytes).unwrap();
    assert_eq!((reply.metadata.id, reply.metadata.response_code), (4242, ResponseCode::ServFail));
    assert!(servfail(b"").is_none());
}
