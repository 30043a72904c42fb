//! The gossip scenarios' schedules: a LAN split and its heal, a client agent's crash and restart, a
//! server's graceful leave and restart, and (bootstrap-expect) no fault at all — the randomness there is in
//! the servers' start times. Node indexes: the servers first, then the client agents.

use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::faults::{secs, Fault, Schedule};

/// When the first gossip fault may come: every member has met every other by then (the checkers require
/// an all-alive member list before a split).
pub const GOSSIP_FAULTS_FROM: Duration = Duration::from_secs(6);
/// How long a LAN split lasts: long enough for both sides to declare the other failed (detection is
/// measured at up to ~10 s: a probe round over the members plus the 4 s suspicion timeout).
pub const SPLIT_LASTS: Duration = Duration::from_secs(16);
/// How long a crashed client agent stays down.
pub const CRASH_LASTS: Duration = Duration::from_secs(16);
/// How long a server that left stays away before it is restarted on its data dir.
pub const LEAVE_LASTS: Duration = Duration::from_secs(12);
/// The index of the client agent that crashes in `client-crash` (the first agent after 3 servers).
pub const CRASHING_AGENT: usize = 3;
/// Servers in every gossip scenario.
pub const SERVERS: usize = 3;
/// Latest start of a server in `bootstrap-expect`.
pub const START_DELAY_MAX: Duration = Duration::from_secs(10);

/// Splits the `nodes` (servers and agents) into two non-empty random sides, then heals.
pub fn partition_heal(rng: &mut ChaCha8Rng, nodes: usize) -> Schedule {
    let mut order: Vec<usize> = (0..nodes).collect();
    order.shuffle(rng);
    let cut = rng.gen_range(1..nodes);
    let (left, right) = order.split_at(cut);
    let (mut left, mut right) = (left.to_vec(), right.to_vec());
    left.sort();
    right.sort();
    // The heal lands anywhere in 22–34 s, before or after the members' first announce to down members (at
    // 30 s, then every 30 s), so both the quick and the slow way to converge are exercised.
    let at = GOSSIP_FAULTS_FROM + secs(rng.gen_range(0.0..12.0));
    let mut schedule = Schedule::default();
    schedule.at(at, Fault::Partition(left, right));
    schedule.at(at + SPLIT_LASTS, Fault::HealAll);
    schedule
}

/// Crashes the client agent holding the service, then restarts it on its disk.
pub fn client_crash(rng: &mut ChaCha8Rng, _nodes: usize) -> Schedule {
    let at = GOSSIP_FAULTS_FROM + secs(rng.gen_range(0.0..3.0));
    let mut schedule = Schedule::default();
    schedule.at(at, Fault::Crash(CRASHING_AGENT));
    schedule.at(at + CRASH_LASTS, Fault::Restart(CRASHING_AGENT));
    schedule
}

/// A random server (the leader or not) leaves gracefully, then is restarted on its data dir.
pub fn server_leave_rejoin(rng: &mut ChaCha8Rng, _nodes: usize) -> Schedule {
    let server = rng.gen_range(0..SERVERS);
    let at = GOSSIP_FAULTS_FROM + secs(rng.gen_range(0.0..3.0));
    let mut schedule = Schedule::default();
    schedule.at(at, Fault::Leave(server));
    schedule.at(at + LEAVE_LASTS, Fault::Restart(server));
    schedule
}

/// No fault: the servers' start times (drawn in `run`) are what varies.
pub fn no_faults(_rng: &mut ChaCha8Rng, _nodes: usize) -> Schedule {
    Schedule::default()
}

/// After the heal, every node must report every member alive within this bound. Nodes on a side of two
/// or more keep each other as members, so nothing makes them join again; the other side is found by
/// foca's announce to down members, one every `gossip_to_the_dead_interval` (30 s, memberlist's
/// `GossipToTheDeadTime`), plus a probe and gossip round to spread the news.
pub const PARTITION_HEAL_BOUND: Duration = Duration::from_secs(40);
/// A crashed agent's `serfHealth` must be critical on the servers within this bound: a probe round, the
/// suspicion timeout (4 s), the leader's reconcile interval (1 s) and a Raft write.
pub const CRASH_DETECT_BOUND: Duration = Duration::from_secs(12);
/// A restarted agent must be passing again within this bound: its join, the reconcile and a write.
pub const RETURN_BOUND: Duration = Duration::from_secs(8);
/// A server that left must be `left` everywhere and out of the Raft configuration within this bound from
/// the leave request: the leave's propagation (1 s per pool, WAN then LAN), an election if it led (a
/// leaving leader does not hand over), the leader's reconcile interval (1 s) and a configuration change.
pub const LEAVE_BOUND: Duration = Duration::from_secs(8);
/// How long the leave scenario keeps watching after the restart: the rejoining server comes back as a
/// non-voter and autopilot promotes it after `server_stabilization_time` (10 s by default), so this
/// leaves 10 s on top of that.
pub const REJOIN_WATCH: Duration = Duration::from_secs(20);
/// From the last server's start, how long the servers may take to agree on a leader and three peers.
pub const BOOTSTRAP_BOUND: Duration = Duration::from_secs(10);
/// How long an outcome must have held before a watcher stops early.
const STABLE_FOR_US: u64 = 3_000_000;

/// Whether, after `heal_at`, every node's answers of the last `STABLE_FOR_US` all list every member alive
/// (the partition-heal watcher stops then; the checker judges the whole history).
pub fn stably_all_alive(history: &crate::checker::History, names: &[String], heal_at: Duration) -> bool {
    use crate::checker::membership::ALIVE;
    let heal_us = heal_at.as_micros() as u64;
    let now_us = crate::client::now_us();
    let all_alive = |members: &[(String, u8)]| names.iter().all(|n| members.iter().any(|(m, s)| m == n && *s == ALIVE));
    names.iter().all(|node| {
        let since_heal: Vec<_> = history.members.iter().filter(|o| &o.node == node && o.invoke_us >= heal_us).collect();
        let covered = since_heal.first().is_some_and(|o| o.invoke_us + STABLE_FOR_US < now_us);
        let recent: Vec<_> = since_heal.iter().filter(|o| o.invoke_us + STABLE_FOR_US >= now_us).collect();
        covered && !recent.is_empty() && recent.iter().all(|o| all_alive(&o.members))
    })
}

/// Whether every server's answers of the last `STABLE_FOR_US` name one leader and `servers` peers.
pub fn stably_agreed(history: &crate::checker::History, servers: usize) -> bool {
    let now_us = crate::client::now_us();
    let recent: Vec<_> = history.status.iter().filter(|o| o.invoke_us + STABLE_FOR_US >= now_us).collect();
    let nodes: std::collections::BTreeSet<&str> = recent.iter().map(|o| o.node.as_str()).collect();
    let started = history.status.first().is_some_and(|o| o.invoke_us + STABLE_FOR_US < now_us);
    started
        && nodes.len() == servers
        && !recent[0].leader.is_empty()
        && recent.iter().all(|o| o.leader == recent[0].leader && o.peers.len() == servers)
}
