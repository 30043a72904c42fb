//! Fuzzes the DNS entry point (`conclave_core::dns::handle_query`) with arbitrary bytes against a small
//! catalog, over UDP and TCP: any input is answered, recursed or dropped, never a panic; an answer keeps
//! the query's ID, fits its transport, and a client agent's re-cut of the TCP answer also fits UDP.
#![no_main]

use std::sync::OnceLock;

use conclave_core::catalog::CatalogCommand;
use conclave_core::catalog::{CheckSpec, CheckStatus, NodeSpec, RegisterRequest, ServiceSpec};
use conclave_core::dns::{self, DnsConfig, Outcome, Transport};
use conclave_core::state::{Command, State};
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;

fn catalog() -> &'static State {
    static CATALOG: OnceLock<State> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut catalog = State::new();
        let statuses = [CheckStatus::Passing, CheckStatus::Warning, CheckStatus::Critical];
        for i in 0..12u64 {
            let service = ServiceSpec {
                id: format!("web{i}"),
                service: if i % 3 == 0 { "db".into() } else { "web".into() },
                tags: vec![format!("v{}", i % 2), "primary".into()],
                address: if i % 4 == 0 { format!("2001:db8::{i}") } else { String::new() },
                port: 8000 + i as u16,
                ..ServiceSpec::default()
            };
            let request = RegisterRequest {
                node: NodeSpec {
                    node: format!("node{i}"),
                    address: format!("10.0.0.{}", i + 1),
                    datacenter: "dc1".into(),
                    meta: [("rack".to_string(), format!("r{i}")), ("rfc1035-x".to_string(), "y".to_string())]
                        .into_iter()
                        .collect(),
                    ..NodeSpec::default()
                },
                skip_node_update: false,
                checks: vec![CheckSpec {
                    check_id: format!("c{i}"),
                    name: format!("c{i}"),
                    status: statuses[i as usize % 3],
                    service_id: service.id.clone(),
                    ..CheckSpec::default()
                }],
                service: Some(service),
            };
            catalog.apply(i + 1, &Command::Catalog(CatalogCommand::Register(request)));
        }
        catalog
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, query)) = data.split_first() else { return };
    let config = DnsConfig {
        enable_truncate: flags & 1 != 0,
        only_passing: flags & 2 != 0,
        recursion_available: flags & 4 != 0,
        udp_answer_limit: usize::from(flags >> 4).max(1),
        ..DnsConfig::default()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(flags));
    for transport in [Transport::Udp, Transport::Tcp] {
        match dns::handle_query(catalog(), &config, query, transport, &mut rng) {
            Outcome::Reply(bytes) => {
                assert!(bytes.len() >= 12, "an answer has a header");
                assert_eq!(bytes[..2], query[..2], "an answer keeps the query's ID");
                let bound = if transport == Transport::Udp { dns::UDP_BYTES_MAX } else { dns::TCP_BYTES_MAX };
                assert!(bytes.len() <= bound, "{} bytes over {transport:?}", bytes.len());
                if transport == Transport::Tcp {
                    if let Some(cut) = dns::refit(query, &bytes, Transport::Udp, &config) {
                        assert!(cut.len() <= dns::UDP_BYTES_MAX);
                    }
                }
            }
            Outcome::Recurse => assert!(config.recursion_available),
            Outcome::Drop(_) => {}
        }
    }
    let _ = dns::servfail(query);
});
