//! The chaos scenarios: each draws its fault schedule from the run's rng. Every scenario runs clients
//! through a safety phase (faults on, from `FAULTS_FROM` to `HEAL_AT`) and then a liveness phase (every
//! link repaired, every server restarted; the cluster must answer a consistent read within a bound).

pub mod agents;
mod crashes;
pub mod disk;
pub mod gossip;
pub mod health;
pub mod keyring;
pub mod kv;
mod partitions;

use std::time::Duration;

use rand_chacha::ChaCha8Rng;

use crate::faults::Schedule;

/// When faults may start (the cluster has formed by then in every seed we ran).
pub const FAULTS_FROM: Duration = Duration::from_secs(4);
/// When every fault is healed and crashed servers restart.
pub const HEAL_AT: Duration = Duration::from_secs(30);

/// What the scenario's clients do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadKind {
    /// Register, deregister and read service instances (the catalog).
    Catalog,
    /// Read-then-CAS increments of shared KV counters.
    KvCas,
    /// Compete for a lock with sessions; some holders hang.
    LockHandoff,
    /// Half the clients abandon their sessions (and the lock) early; the rest keep renewing.
    SessionTtl,
    /// HTTP check targets go up and down; an observer asks which instances pass.
    CheckFlaps,
    /// Gossip: watchers poll every node's member list through a LAN split and its heal.
    PartitionHeal,
    /// Gossip: a service on a client agent; a watcher asks the servers for its node's health.
    ClientCrash,
    /// Gossip: a server leaves gracefully; writes go on; it is restarted on its data dir.
    LeaveRejoin,
    /// Raft bootstrap: servers start at random times; a watcher asks each for its leader and peers.
    BootstrapExpect,
    /// ACLs on: writers use tokens a revoker deletes one by one.
    AclRevocation,
    /// Gossip encryption on: an operator rotates the key while a member is cut off, then finishes.
    KeyRotation,
    /// The catalog workload while the leader's disk stalls; Raft is sampled to time the step-down.
    DiskStall,
    /// Client agents register and deregister services through their own API while cut off.
    AgentChurn,
}

impl WorkloadKind {
    /// The gossip scenarios run their own watchers and checker, and their schedule is complete (no
    /// general heal at `HEAL_AT`, no catalog clients).
    pub fn is_gossip(self) -> bool {
        matches!(
            self,
            WorkloadKind::PartitionHeal
                | WorkloadKind::ClientCrash
                | WorkloadKind::LeaveRejoin
                | WorkloadKind::BootstrapExpect
                | WorkloadKind::KeyRotation
        )
    }
}

pub struct Scenario {
    pub name: &'static str,
    pub servers: usize,
    /// Client agents (`server = false`), hosts `a1..`, joining the servers' LAN addresses.
    pub agents: usize,
    pub about: &'static str,
    /// Draws the faults; the count is the servers plus the agents.
    pub schedule: fn(&mut ChaCha8Rng, usize) -> Schedule,
    pub workload: WorkloadKind,
    /// Every host reads the wall clock (lock delays, session and token times, API times) with its own
    /// offset (±500 ms) and rate error (±1%), drawn from the seed.
    pub clock_skew: bool,
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "leader-crash",
        servers: 3,
        agents: 0,
        about: "the leader crashes, later restarts from disk",
        schedule: crashes::leader_crash,
        workload: WorkloadKind::Catalog,
        clock_skew: false,
    },
    Scenario {
        name: "follower-restart",
        servers: 3,
        agents: 0,
        about: "followers crash and restart",
        schedule: crashes::follower_restart,
        workload: WorkloadKind::Catalog,
        clock_skew: false,
    },
    Scenario {
        name: "partition-leader",
        servers: 3,
        agents: 0,
        about: "the leader is isolated in a minority",
        schedule: partitions::partition_leader,
        workload: WorkloadKind::Catalog,
        clock_skew: false,
    },
    Scenario {
        name: "asymmetric-partition",
        servers: 3,
        agents: 0,
        about: "one-way link cuts around the leader",
        schedule: partitions::asymmetric_partition,
        workload: WorkloadKind::Catalog,
        clock_skew: false,
    },
    Scenario {
        name: "flapping-partitions",
        servers: 3,
        agents: 0,
        about: "repeated partition and heal, with restarts",
        schedule: partitions::flapping_partitions,
        workload: WorkloadKind::Catalog,
        clock_skew: false,
    },
    Scenario {
        name: "power-loss",
        servers: 3,
        agents: 0,
        about: "every server crashes, then restarts from disk",
        schedule: crashes::power_loss,
        workload: WorkloadKind::Catalog,
        clock_skew: false,
    },
    Scenario {
        name: "five-servers-two-down",
        servers: 5,
        agents: 0,
        about: "two of five servers crash",
        schedule: crashes::five_servers_two_down,
        workload: WorkloadKind::Catalog,
        clock_skew: false,
    },
    Scenario {
        name: "kv-cas-contention",
        servers: 3,
        agents: 0,
        about: "CAS increments on a few keys through partitions and leader crashes",
        schedule: kv::partitions_and_leader_crashes,
        workload: WorkloadKind::KvCas,
        clock_skew: true,
    },
    Scenario {
        name: "acl-revocation",
        servers: 3,
        agents: 0,
        about: "tokens deleted one by one through partitions and leader crashes; no later write with one applies",
        schedule: kv::partitions_and_leader_crashes,
        workload: WorkloadKind::AclRevocation,
        clock_skew: true,
    },
    Scenario {
        name: "lock-handoff",
        servers: 3,
        agents: 0,
        about: "clients compete for a lock with sessions through a leader isolation and a leader crash",
        schedule: kv::isolation_then_crash,
        workload: WorkloadKind::LockHandoff,
        clock_skew: true,
    },
    Scenario {
        name: "session-ttl-failover",
        servers: 3,
        agents: 0,
        about: "the leader dies while abandoned sessions are about to expire",
        schedule: kv::leader_crash_near_session_expiry,
        workload: WorkloadKind::SessionTtl,
        clock_skew: true,
    },
    Scenario {
        name: "check-flaps",
        servers: 3,
        agents: 0,
        about: "check targets go up and down through partitions, leader and follower crashes",
        schedule: health::calm_gaps_between_faults,
        workload: WorkloadKind::CheckFlaps,
        clock_skew: true,
    },
    Scenario {
        name: "gossip-partition-heal",
        servers: 3,
        agents: 2,
        about: "a LAN split between random groups of servers and client agents, then a heal",
        schedule: gossip::partition_heal,
        workload: WorkloadKind::PartitionHeal,
        clock_skew: false,
    },
    Scenario {
        name: "client-crash",
        servers: 3,
        agents: 1,
        about: "a client agent with a service crashes, later restarts from disk",
        schedule: gossip::client_crash,
        workload: WorkloadKind::ClientCrash,
        clock_skew: false,
    },
    Scenario {
        name: "server-leave-rejoin",
        servers: 3,
        agents: 0,
        about: "a server leaves gracefully, writes go on, it restarts on its data dir",
        schedule: gossip::server_leave_rejoin,
        workload: WorkloadKind::LeaveRejoin,
        clock_skew: false,
    },
    Scenario {
        name: "bootstrap-expect",
        servers: 3,
        agents: 0,
        about: "three servers with bootstrap_expect 3 start at random times",
        schedule: gossip::no_faults,
        workload: WorkloadKind::BootstrapExpect,
        clock_skew: false,
    },
    Scenario {
        name: "gossip-key-rotation",
        servers: 3,
        agents: 2,
        about: "gossip encryption on; the key is rotated while a member is cut off; all converge after the heal",
        schedule: keyring::isolate_one_member,
        workload: WorkloadKind::KeyRotation,
        clock_skew: false,
    },
    Scenario {
        name: "leader-disk-stall",
        servers: 3,
        agents: 0,
        about: "the leader's fsyncs hang; it steps down, writes resume on another server, the disk recovers",
        schedule: disk::leader_disk_stall,
        workload: WorkloadKind::DiskStall,
        clock_skew: false,
    },
    Scenario {
        name: "client-agent-churn",
        servers: 3,
        agents: 2,
        about: "client agents register and deregister while cut off from the servers; the catalog converges on each",
        schedule: agents::agents_cut_off,
        workload: WorkloadKind::AgentChurn,
        clock_skew: true,
    },
];

pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}
