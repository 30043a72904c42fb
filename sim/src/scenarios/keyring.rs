//! The schedule of `gossip-key-rotation`: one member (a server or a client agent, drawn from the seed) is
//! cut off from every other member; while it is away the operator installs a new gossip key and makes it
//! primary through a server that can reach the rest (`keyring_client`); then the link is healed and the
//! operator finishes the rotation. Node indexes: the servers first, then the client agents.

use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::gossip::GOSSIP_FAULTS_FROM;
use crate::faults::{secs, Fault, Schedule};

/// How long the member stays cut off: long enough for the others to declare it failed (up to ~10 s, see
/// `gossip::SPLIT_LASTS`) and for the rotation to finish on their side (an install and a use, each of
/// which may wait `keyring_ops::MEMBER_TIMEOUT`, 5 s, for the member that cannot be reached).
pub const ISOLATION_LASTS: Duration = Duration::from_secs(16);
/// When, after the cut, the operator starts the rotation (the others may not have noticed yet).
pub const ROTATE_AFTER_MIN: Duration = Duration::from_secs(1);
pub const ROTATE_AFTER_MAX: Duration = Duration::from_secs(4);
/// From the heal, how long until every member lists the new key as its only and primary key and every
/// node reports every member alive. The isolated member learns the key when the operator's round of
/// install + use reaches its own agent (one member a second); then it has to be found again as in
/// `gossip-partition-heal` (the announce to down members, every 30 s), and the old key is removed.
pub const CONVERGE_BOUND: Duration = Duration::from_secs(50);

/// Cuts a random member off from all the others, then heals.
pub fn isolate_one_member(rng: &mut ChaCha8Rng, nodes: usize) -> Schedule {
    let isolated = rng.gen_range(0..nodes);
    let others: Vec<usize> = (0..nodes).filter(|&i| i != isolated).collect();
    let at = GOSSIP_FAULTS_FROM + secs(rng.gen_range(0.0..4.0));
    let mut schedule = Schedule::default();
    schedule.at(at, Fault::Partition(vec![isolated], others));
    schedule.at(at + ISOLATION_LASTS, Fault::HealAll);
    schedule
}
