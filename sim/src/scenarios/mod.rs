//! The chaos scenarios: each draws its fault schedule from the run's rng. Every scenario runs clients
//! through a safety phase (faults on, from `FAULTS_FROM` to `HEAL_AT`) and then a liveness phase (every
//! link repaired, every server restarted; the cluster must answer a consistent read within a bound).

mod crashes;
mod partitions;

use std::time::Duration;

use rand_chacha::ChaCha8Rng;

use crate::faults::Schedule;

/// When faults may start (the cluster has formed by then in every seed we ran).
pub const FAULTS_FROM: Duration = Duration::from_secs(4);
/// When every fault is healed and crashed servers restart.
pub const HEAL_AT: Duration = Duration::from_secs(30);

pub struct Scenario {
    pub name: &'static str,
    pub servers: usize,
    pub about: &'static str,
    pub schedule: fn(&mut ChaCha8Rng, usize) -> Schedule,
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "leader-crash",
        servers: 3,
        about: "the leader crashes, later restarts from disk",
        schedule: crashes::leader_crash,
    },
    Scenario {
        name: "follower-restart",
        servers: 3,
        about: "followers crash and restart",
        schedule: crashes::follower_restart,
    },
    Scenario {
        name: "partition-leader",
        servers: 3,
        about: "the leader is isolated in a minority",
        schedule: partitions::partition_leader,
    },
    Scenario {
        name: "asymmetric-partition",
        servers: 3,
        about: "one-way link cuts around the leader",
        schedule: partitions::asymmetric_partition,
    },
    Scenario {
        name: "flapping-partitions",
        servers: 3,
        about: "repeated partition and heal, with restarts",
        schedule: partitions::flapping_partitions,
    },
    Scenario {
        name: "power-loss",
        servers: 3,
        about: "every server crashes, then restarts from disk",
        schedule: crashes::power_loss,
    },
    Scenario {
        name: "five-servers-two-down",
        servers: 5,
        about: "two of five servers crash",
        schedule: crashes::five_servers_two_down,
    },
];

pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}
