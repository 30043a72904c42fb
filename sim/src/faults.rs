//! Faults the simulator injects, and the schedule a scenario draws from its seed. Times are simulated time
//! since the start of the run; node indexes are 0-based:
//! the servers first, then the client agents (gossip scenarios).

use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Crash whichever server leads at that moment (pending disk writes lost); nothing if none leads.
    CrashLeader,
    /// Crash one server.
    Crash(usize),
    /// Crash every server at once: a power loss.
    CrashAll,
    /// Restart every crashed server from its disk.
    RestartCrashed,
    /// Cut the current leader off from every other server (it stays reachable by clients).
    IsolateLeader,
    /// Cut the links between two groups of servers, both ways.
    Partition(Vec<usize>, Vec<usize>),
    /// Drop messages from one server to another, but not back.
    PartitionOneway(usize, usize),
    /// Drop messages from the current leader to every other server, but not back.
    LeaderCannotSend,
    /// Repair every link.
    HealAll,
    /// Start a node's process again on its disk, whether it crashed or ended (after a leave).
    Restart(usize),
    /// The disk of whichever server leads at that moment stops completing fsyncs (writes still land in
    /// its page cache); nothing if none leads.
    DiskStallLeader,
    /// Every stalled disk completes its fsyncs again.
    DiskResume,
    /// Ask a node to leave gracefully (`PUT /v1/agent/leave`, sent by a scenario client at this time; the
    /// run loop only records it).
    Leave(usize),
}

/// The faults of a run, in time order.
#[derive(Clone, Debug, Default)]
pub struct Schedule {
    pub events: Vec<(Duration, Fault)>,
}

impl Schedule {
    pub fn at(&mut self, at: Duration, fault: Fault) {
        self.events.push((at, fault));
        self.events.sort_by_key(|(t, _)| *t);
    }
}

pub fn secs(s: f64) -> Duration {
    Duration::from_millis((s * 1000.0) as u64)
}
