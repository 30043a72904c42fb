//! Unit tests: a few memberships exchanging packets through an in-memory queue, timers fired in time order.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

use super::*;

/// A handful of nodes, a FIFO of packets in flight (delivered within the same millisecond), and timers.
struct Cluster {
    nodes: Vec<Membership>,
    up: Vec<bool>,
    packets: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    /// (at_ms, sequence) → (node index, timer)
    timers: BTreeMap<(u64, u64), (usize, GossipTimer)>,
    events: Vec<(usize, MemberEvent)>,
    now_ms: u64,
    seq: u64,
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i as u8 + 1], 8301))
}

fn id(i: usize) -> NodeId {
    NodeId::new(&format!("n{i}"), addr(i), 0, Tags::server("dc1", 8300, 3))
}

impl Cluster {
    fn new(size: usize) -> Cluster {
        let nodes = (0..size).map(|i| Membership::new(id(i), GossipConfig::lan(), 7 + i as u64)).collect();
        Cluster {
            nodes,
            up: vec![true; size],
            packets: VecDeque::new(),
            timers: BTreeMap::new(),
            events: Vec::new(),
            now_ms: 0,
            seq: 0,
        }
    }

    fn index_of(&self, addr: SocketAddr) -> Option<usize> {
        self.nodes.iter().position(|n| n.identity().addr() == addr)
    }

    fn apply(&mut self, node: usize, actions: Vec<GossipAction>) {
        for action in actions {
            match action {
                GossipAction::Send { to, bytes } => self.packets.push_back((addr(node), to, bytes)),
                GossipAction::SetTimer { at_ms, timer } => {
                    assert!(at_ms >= self.now_ms, "timer set in the past");
                    self.seq += 1;
                    self.timers.insert((at_ms, self.seq), (node, timer));
                }
                GossipAction::Event(event) => self.events.push((node, event)),
            }
        }
    }

    fn deliver_all(&mut self) {
        let mut budget = 100_000;
        while let Some((from, to, bytes)) = self.packets.pop_front() {
            budget -= 1;
            assert!(budget > 0, "packet storm");
            let Some(i) = self.index_of(to) else { continue };
            if !self.up[i] {
                continue;
            }
            let actions = self.nodes[i].handle_packet(from, &bytes, self.now_ms);
            self.apply(i, actions);
        }
    }

    fn run_until(&mut self, end_ms: u64) {
        self.deliver_all();
        while let Some(entry) = self.timers.first_entry() {
            let (at_ms, _) = *entry.key();
            if at_ms > end_ms {
                break;
            }
            let (node, timer) = entry.remove();
            self.now_ms = at_ms;
            if self.up[node] {
                let actions = self.nodes[node].handle_timer(timer, at_ms);
                self.apply(node, actions);
            }
            self.deliver_all();
        }
        self.now_ms = end_ms;
    }

    fn join(&mut self, node: usize, to: usize) {
        let actions = self.nodes[node].join(addr(to), self.now_ms).expect("join");
        self.apply(node, actions);
    }

    fn status(&self, observer: usize, member: usize) -> Option<MemberStatus> {
        self.nodes[observer].member(&format!("n{member}")).map(|m| m.status)
    }
}

fn formed(size: usize) -> Cluster {
    let mut cluster = Cluster::new(size);
    for i in 1..size {
        cluster.join(i, 0);
    }
    cluster.run_until(5_000);
    cluster
}

#[test]
fn join_converges_to_every_member_alive_everywhere() {
    let cluster = formed(3);
    for observer in 0..3 {
        for member in 0..3 {
            assert_eq!(cluster.status(observer, member), Some(MemberStatus::Alive), "n{observer} sees n{member}");
        }
        let tags = &cluster.nodes[observer].member("n0").expect("n0").tags;
        assert_eq!(tags.to_consul()["role"], "consul");
        assert_eq!(tags.to_consul()["expect"], "3");
    }
}

#[test]
fn silent_member_is_declared_failed() {
    let mut cluster = formed(3);
    cluster.up[2] = false;
    let start_ms = cluster.now_ms;
    cluster.run_until(start_ms + 20_000);
    assert_eq!(cluster.status(0, 2), Some(MemberStatus::Failed));
    assert_eq!(cluster.status(1, 2), Some(MemberStatus::Failed));
    assert!(cluster.events.iter().any(|(n, e)| *n == 0 && matches!(e, MemberEvent::MemberFailed(m) if m.name == "n2")));
}

#[test]
fn leave_is_recorded_as_left_not_failed() {
    let mut cluster = formed(3);
    let actions = cluster.nodes[2].leave(cluster.now_ms).expect("leave");
    cluster.apply(2, actions);
    let start_ms = cluster.now_ms;
    cluster.run_until(start_ms + 20_000);
    assert_eq!(cluster.status(0, 2), Some(MemberStatus::Left));
    assert_eq!(cluster.status(1, 2), Some(MemberStatus::Left));
    assert_eq!(cluster.status(2, 2), Some(MemberStatus::Left));
    assert!(!cluster.events.iter().any(|(_, e)| matches!(e, MemberEvent::MemberFailed(_))), "{:?}", cluster.events);
}

#[test]
fn user_event_reaches_every_member_once() {
    let mut cluster = formed(3);
    let actions = cluster.nodes[1].user_event(UserEvent::named("deploy", b"v2"), cluster.now_ms).expect("event");
    cluster.apply(1, actions);
    let start_ms = cluster.now_ms;
    cluster.run_until(start_ms + 5_000);
    for node in 0..3 {
        let seen = cluster
            .events
            .iter()
            .filter(|(n, e)| *n == node && matches!(e, MemberEvent::User(event) if event.name == "deploy"))
            .count();
        assert_eq!(seen, 1, "n{node} saw the event {seen} times");
    }
}

#[test]
fn garbage_truncated_and_oversized_packets_are_dropped() {
    let mut cluster = formed(3);
    let members_before: Vec<Member> = cluster.nodes[0].members().cloned().collect();
    let mut samples: Vec<Vec<u8>> = vec![vec![], vec![0], vec![1], vec![1, 0xff, 0xff], vec![0xab; 2000], vec![9; 64]];
    // A real packet, cut short at every length.
    let real = cluster.nodes[1].join(addr(0), cluster.now_ms).expect("join");
    let GossipAction::Send { bytes, .. } = &real[0] else { panic!("join sends") };
    for len in 0..bytes.len() {
        samples.push(bytes[..len].to_vec());
    }
    for sample in samples {
        let actions = cluster.nodes[0].handle_packet(addr(1), &sample, cluster.now_ms);
        assert!(actions.iter().all(|a| !matches!(a, GossipAction::Event(_))), "{sample:?} made an event");
    }
    let members_after: Vec<Member> = cluster.nodes[0].members().cloned().collect();
    assert_eq!(members_before, members_after);
}

#[test]
fn replayed_packet_changes_nothing() {
    let mut cluster = formed(3);
    let actions = cluster.nodes[1].user_event(UserEvent::named("once", b""), cluster.now_ms).expect("event");
    cluster.apply(1, actions);
    // Capture the first gossip packet n1 sends, deliver it twice.
    let at_ms = cluster.now_ms + 200;
    let mut captured = None;
    while let Some(entry) = cluster.timers.first_entry() {
        let (when, _) = *entry.key();
        let (node, timer) = entry.remove();
        cluster.now_ms = when;
        let actions = cluster.nodes[node].handle_timer(timer, when);
        if node == 1 {
            captured = actions.iter().find_map(|a| match a {
                GossipAction::Send { to, bytes } => Some((*to, bytes.clone())),
                _ => None,
            });
        }
        cluster.apply(node, actions);
        if captured.is_some() || when > at_ms + 1_000 {
            break;
        }
    }
    let (to, bytes) = captured.expect("n1 gossips its event");
    let target = cluster.index_of(to).expect("known target");
    let first = cluster.nodes[target].handle_packet(addr(1), &bytes, cluster.now_ms);
    let second = cluster.nodes[target].handle_packet(addr(1), &bytes, cluster.now_ms);
    let user_events = |actions: &[GossipAction]| {
        actions.iter().filter(|a| matches!(a, GossipAction::Event(MemberEvent::User(_)))).count()
    };
    assert!(user_events(&first) <= 1);
    assert_eq!(user_events(&second), 0, "a replay delivered the event again");
}

#[test]
fn restarted_node_rejoins_under_a_new_generation() {
    let mut cluster = formed(3);
    cluster.up[2] = false;
    let start_ms = cluster.now_ms;
    cluster.run_until(start_ms + 20_000);
    assert_eq!(cluster.status(0, 2), Some(MemberStatus::Failed));
    let reborn = NodeId::new("n2", addr(2), 1, Tags::client("dc1"));
    cluster.nodes[2] = Membership::new(reborn, GossipConfig::lan(), 99);
    cluster.up[2] = true;
    cluster.join(2, 0);
    let start_ms = cluster.now_ms;
    cluster.run_until(start_ms + 10_000);
    let seen = cluster.nodes[0].member("n2").expect("n2");
    assert_eq!((seen.status, seen.generation), (MemberStatus::Alive, 1));
    assert_eq!(cluster.status(1, 2), Some(MemberStatus::Alive));
}

#[test]
fn same_seed_gives_the_same_packets() {
    let run = || {
        let mut cluster = formed(3);
        cluster.run_until(cluster.now_ms + 3_000);
        format!("{:?}", cluster.events)
    };
    assert_eq!(run(), run());
}

#[test]
fn second_address_claiming_a_live_name_does_not_take_it() {
    let mut cluster = formed(3);
    let impostor = NodeId::new("n1", addr(3), 0, Tags::client("dc1"));
    cluster.nodes.push(Membership::new(impostor, GossipConfig::lan(), 42));
    cluster.up.push(true);
    cluster.join(3, 0);
    let start_ms = cluster.now_ms;
    cluster.run_until(start_ms + 5_000);
    assert_eq!(cluster.nodes[0].member("n1").expect("n1").addr, addr(1));
    let joins_of_n1 = cluster
        .events
        .iter()
        .filter(|(n, e)| *n == 0 && matches!(e, MemberEvent::MemberJoin(m) if m.name == "n1" && m.addr == addr(3)))
        .count();
    assert_eq!(joins_of_n1, 0);
}
