//! Disk scenarios: the leader's disk stops completing fsyncs for a while (`leader-disk-stall`). The
//! leader must step down within `conclave::node::disk_watchdog::DISK_STALL_BOUND` and writes must be
//! acknowledged by another leader while the disk is still stalled (`run::verdict::disk_stall_verdict`).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::FAULTS_FROM;
use crate::faults::{secs, Fault, Schedule};

/// How long the disk stays stalled: long enough for the step-down, an election and writes after it.
pub const STALL_SECS_MIN: f64 = 10.0;

pub fn leader_disk_stall(rng: &mut ChaCha8Rng, _servers: usize) -> Schedule {
    let mut schedule = Schedule::default();
    let start = FAULTS_FROM.as_secs_f64();
    let stall_at = rng.gen_range(start + 2.0..start + 8.0);
    schedule.at(secs(stall_at), Fault::DiskStallLeader);
    schedule.at(secs(stall_at + rng.gen_range(STALL_SECS_MIN..STALL_SECS_MIN + 4.0)), Fault::DiskResume);
    schedule
}
