//! `client-agent-churn`: client agents register and deregister services (each with a TTL check) through
//! their own HTTP API while they are cut off from the servers, one or both at a time, and a leader crashes
//! now and then. After the heal the catalog must hold, under each agent's node, exactly what the agent
//! holds: the registrations made while cut off pushed, the removals made while cut off applied.

use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{FAULTS_FROM, HEAL_AT};
use crate::faults::{secs, Fault, Schedule};

/// The service IDs each agent's client registers and removes.
pub const SERVICE_IDS: usize = 6;
/// How long after the heal the catalog may still differ from an agent's state: the anti-entropy retry
/// (5 s and its jitter) after a pass still waiting for an answer from before the heal (5 s), gossip
/// finding the servers again, the restart of a crashed leader and an election.
pub const CONVERGE_BOUND: Duration = Duration::from_secs(25);

/// Cuts random agents off from every server in turn (3–8 s each, 1–4 s apart), sometimes crashing the
/// leader during a cut; every fault ends with the general heal at `HEAL_AT`.
pub fn agents_cut_off(rng: &mut ChaCha8Rng, nodes: usize) -> Schedule {
    const SERVERS: usize = 3;
    assert!(nodes > SERVERS, "the scenario has client agents");
    let servers: Vec<usize> = (0..SERVERS).collect();
    let agents: Vec<usize> = (SERVERS..nodes).collect();
    let mut schedule = Schedule::default();
    let mut at = FAULTS_FROM + secs(rng.gen_range(0.0..2.0));
    while at + secs(3.0) < HEAL_AT {
        let cut: Vec<usize> = match rng.gen_range(0..3) {
            0 => agents.clone(),
            _ => vec![agents[rng.gen_range(0..agents.len())]],
        };
        let lasts = secs(rng.gen_range(3.0..8.0));
        schedule.at(at, Fault::Partition(cut, servers.clone()));
        if rng.gen_bool(0.3) {
            schedule.at(at + lasts / 2, Fault::CrashLeader);
        }
        let heal = (at + lasts).min(HEAL_AT);
        schedule.at(heal, Fault::HealAll);
        schedule.at(heal, Fault::RestartCrashed);
        at = heal + secs(rng.gen_range(1.0..4.0));
    }
    schedule
}
