//! The discrete-event loop: a min-heap of `(time_ms, seq, event)`, where `seq` breaks ties in insertion order
//! so a seed fixes the whole run. Packets are dropped with probability `loss` and delayed by a latency drawn
//! uniformly from `latency_ms_min..=latency_ms_max`, both from the run's ChaCha rng.

use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap};
use std::net::{Ipv4Addr, SocketAddr};

use conclave_core::gossip::{GossipAction, GossipConfig, GossipTimer, MemberEvent, Membership, NodeId, Tags};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Most nodes a model holds: addresses are `10.x.y.z`, one per node.
pub const MODEL_NODES_MAX: usize = 1 << 20;
/// Events processed per `run_until` call before the loop assumes a storm and stops (a bound, not a target).
pub const EVENTS_PER_RUN_MAX: u64 = 2_000_000_000;

/// The simulated network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetParams {
    /// Probability that one datagram is lost.
    pub loss: f64,
    pub latency_ms_min: u64,
    pub latency_ms_max: u64,
}

/// How nodes learn each other at the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeding {
    /// Every node knows every other (the steady state of a formed cluster).
    Full,
    /// Every node knows about this many random others, symmetrically (a random graph). Used for 10,000 nodes,
    /// where foca's linear member scans make a full view cost O(n²) per node to build.
    Random { degree: usize },
}

#[derive(Debug)]
enum Event {
    Start { node: u32 },
    Packet { to: u32, from: SocketAddr, bytes: Vec<u8> },
    Timer { node: u32, timer: GossipTimer },
}

#[derive(Debug)]
struct Scheduled {
    at_ms: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ms, self.seq) == (other.at_ms, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed: `BinaryHeap` is a max-heap and the loop wants the earliest event.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_ms, other.seq).cmp(&(self.at_ms, self.seq))
    }
}

/// Counters of one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NetStats {
    pub packets_sent: u64,
    pub packets_lost: u64,
    pub bytes_sent: u64,
    pub events_processed: u64,
}

/// The model: nodes, which of them run, the event heap, the network and its rng.
pub struct Model {
    pub nodes: Vec<Membership>,
    pub up: Vec<bool>,
    pub now_ms: u64,
    pub net: NetParams,
    pub stats: NetStats,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    rng: ChaCha8Rng,
    /// Who each node is told about when it starts; emptied as nodes start.
    initial_views: Vec<Vec<u32>>,
}

/// Address of node `index`.
pub fn addr_of(index: usize) -> SocketAddr {
    assert!(index < MODEL_NODES_MAX, "node index {index} beyond the model's address space");
    let ip = u32::from(Ipv4Addr::new(10, 0, 0, 0)) + index as u32 + 1;
    SocketAddr::from((Ipv4Addr::from(ip), 8301))
}

/// Node index of `addr`, if it is a model address.
pub fn index_of(addr: SocketAddr) -> Option<usize> {
    let SocketAddr::V4(v4) = addr else { return None };
    let offset = u32::from(*v4.ip()).checked_sub(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + 1)?;
    Some(offset as usize).filter(|i| *i < MODEL_NODES_MAX)
}

/// Name of node `index` (`n17`).
pub fn name_of(index: usize) -> String {
    format!("n{index}")
}

fn node_id(index: usize) -> NodeId {
    NodeId::new(&name_of(index), addr_of(index), 0, Tags::client("dc1"))
}

/// A sub-seed per purpose and node (splitmix64), so adding a node does not shift the others' streams.
pub fn sub_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Model {
    /// `count` nodes with `config`, seeded by `seeding`, starting at random times within one probe interval
    /// (so their probe rounds are not in lockstep).
    pub fn new(count: usize, config: &GossipConfig, seeding: Seeding, net: NetParams, seed: u64) -> Model {
        assert!((2..=MODEL_NODES_MAX).contains(&count), "model size {count} out of range");
        assert!((0.0..1.0).contains(&net.loss), "loss must be in [0, 1)");
        assert!(net.latency_ms_min <= net.latency_ms_max, "latency range is empty");
        let mut rng = ChaCha8Rng::seed_from_u64(sub_seed(seed, 0));
        let nodes =
            (0..count).map(|i| Membership::new(node_id(i), config.clone(), sub_seed(seed, 1 + i as u64))).collect();
        let initial_views = match seeding {
            Seeding::Full => Vec::new(),
            Seeding::Random { degree } => random_graph(count, degree, &mut rng),
        };
        let mut model = Model {
            nodes,
            up: vec![true; count],
            now_ms: 0,
            net,
            stats: NetStats::default(),
            queue: BinaryHeap::new(),
            seq: 0,
            rng,
            initial_views,
        };
        let start_spread_ms = config.probe_interval.as_millis() as u64;
        for node in 0..count {
            let at_ms = model.rng.gen_range(0..start_spread_ms.max(1));
            model.push(at_ms, Event::Start { node: node as u32 });
        }
        model
    }

    fn push(&mut self, at_ms: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Scheduled { at_ms, seq: self.seq, event });
    }

    /// Carries out `node`'s actions: datagrams enter the network, timers the heap, events go to `observe`.
    fn apply(&mut self, node: usize, actions: Vec<GossipAction>, observe: &mut dyn FnMut(u64, usize, &MemberEvent)) {
        let from = addr_of(node);
        for action in actions {
            match action {
                GossipAction::Send { to, bytes } => {
                    self.stats.packets_sent += 1;
                    self.stats.bytes_sent += bytes.len() as u64;
                    let Some(to) = index_of(to).filter(|i| *i < self.nodes.len()) else { continue };
                    if self.net.loss > 0.0 && self.rng.gen_bool(self.net.loss) {
                        self.stats.packets_lost += 1;
                        continue;
                    }
                    let latency_ms = self.rng.gen_range(self.net.latency_ms_min..=self.net.latency_ms_max);
                    self.push(self.now_ms + latency_ms, Event::Packet { to: to as u32, from, bytes });
                }
                GossipAction::SetTimer { at_ms, timer } => {
                    assert!(at_ms >= self.now_ms, "timer set in the past");
                    self.push(at_ms, Event::Timer { node: node as u32, timer });
                }
                GossipAction::Event(event) => observe(self.now_ms, node, &event),
            }
        }
    }

    /// Makes `node` issue a command now (e.g. a user event) and carries out what it returns.
    pub fn command(
        &mut self,
        node: usize,
        observe: &mut dyn FnMut(u64, usize, &MemberEvent),
        command: impl FnOnce(&mut Membership, u64) -> Vec<GossipAction>,
    ) {
        let actions = command(&mut self.nodes[node], self.now_ms);
        self.apply(node, actions, observe);
    }

    /// Processes every event up to `end_ms` (inclusive), then sets the clock to `end_ms`.
    pub fn run_until(&mut self, end_ms: u64, observe: &mut dyn FnMut(u64, usize, &MemberEvent)) {
        assert!(end_ms >= self.now_ms, "time goes forward");
        let mut processed = 0u64;
        while self.queue.peek().is_some_and(|next| next.at_ms <= end_ms) {
            let Scheduled { at_ms, event, .. } = self.queue.pop().expect("peeked");
            self.now_ms = at_ms;
            processed += 1;
            assert!(processed < EVENTS_PER_RUN_MAX, "event storm at {at_ms} ms");
            match event {
                Event::Start { node } => {
                    let node = node as usize;
                    let known: Vec<NodeId> = match self.initial_views.get_mut(node) {
                        Some(view) => std::mem::take(view).into_iter().map(|j| node_id(j as usize)).collect(),
                        None => (0..self.nodes.len()).filter(|j| *j != node).map(node_id).collect(),
                    };
                    let actions = self.nodes[node].add_known_members(known.into_iter(), at_ms);
                    self.apply(node, actions, observe);
                }
                Event::Packet { to, from, bytes } => {
                    let to = to as usize;
                    if self.up[to] {
                        let actions = self.nodes[to].handle_packet(from, &bytes, at_ms);
                        self.apply(to, actions, observe);
                    }
                }
                Event::Timer { node, timer } => {
                    let node = node as usize;
                    if self.up[node] {
                        let actions = self.nodes[node].handle_timer(timer, at_ms);
                        self.apply(node, actions, observe);
                    }
                }
            }
        }
        self.stats.events_processed += processed;
        self.now_ms = end_ms;
    }
}

/// A random symmetric graph where every node has about `degree` neighbours (each picks `degree / 2`).
fn random_graph(count: usize, degree: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<u32>> {
    let picks = (degree / 2).clamp(1, count - 1);
    let mut adjacency: Vec<BTreeSet<u32>> = vec![BTreeSet::new(); count];
    for node in 0..count {
        let mut chosen = 0;
        while chosen < picks {
            let other = rng.gen_range(0..count);
            if other != node && adjacency[node].insert(other as u32) {
                adjacency[other].insert(node as u32);
                chosen += 1;
            }
        }
    }
    adjacency.into_iter().map(|set| set.into_iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        for i in [0, 1, 255, 256, 9_999, MODEL_NODES_MAX - 1] {
            assert_eq!(index_of(addr_of(i)), Some(i));
        }
    }
}
