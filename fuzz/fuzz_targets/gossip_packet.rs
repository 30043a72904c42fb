//! Fuzzes the gossip port: arbitrary datagrams into `Membership::handle_packet` of a node that knows three
//! members. Each input is dropped or applied — never a panic — and a replay of it changes nothing more.
#![no_main]

use std::net::SocketAddr;

use conclave_core::gossip::{GossipAction, GossipConfig, Membership, NodeId, Tags};
use libfuzzer_sys::fuzz_target;

fn id(i: u8) -> NodeId {
    NodeId::new(&format!("n{i}"), SocketAddr::from(([10, 0, 0, i + 1], 8301)), 0, Tags::server("dc1", 8300, 3))
}

fuzz_target!(|data: &[u8]| {
    let mut node = Membership::new(id(0), GossipConfig::lan(), 1);
    let _ = node.add_known_members((1..4).map(id), 0);
    let from = id(1).addr();
    let first = node.handle_packet(from, data, 1);
    let members: Vec<_> = node.members().cloned().collect();
    let second = node.handle_packet(from, data, 2);
    assert!(first.len() <= 64 && second.len() <= 64, "one packet made too many actions");
    let new_events = second.iter().filter(|a| matches!(a, GossipAction::Event(_))).count();
    assert_eq!(new_events, 0, "a replayed packet made events: {second:?}");
    assert_eq!(members, node.members().cloned().collect::<Vec<_>>(), "a replay changed the member list");
});
