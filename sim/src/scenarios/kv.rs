//! Schedules of the KV scenarios: CAS contention and lock handoff through partitions and leader crashes,
//! and a leader crash just as abandoned sessions reach their expiry.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{FAULTS_FROM, HEAL_AT};
use crate::faults::{secs, Fault, Schedule};

/// Alternates leader isolation and leader crashes, each repaired a few seconds later.
pub fn partitions_and_leader_crashes(rng: &mut ChaCha8Rng, _servers: usize) -> Schedule {
    let mut schedule = Schedule::default();
    let mut at = FAULTS_FROM.as_secs_f64() + rng.gen_range(0.0..2.0);
    let mut isolate = rng.gen_bool(0.5);
    while at < HEAL_AT.as_secs_f64() - 5.0 {
        if isolate {
            schedule.at(secs(at), Fault::IsolateLeader);
            at += rng.gen_range(2.0..6.0);
            schedule.at(secs(at), Fault::HealAll);
        } else {
            schedule.at(secs(at), Fault::CrashLeader);
            at += rng.gen_range(2.0..6.0);
            schedule.at(secs(at), Fault::RestartCrashed);
        }
        isolate = !isolate;
        at += rng.gen_range(2.0..5.0);
    }
    schedule
}

/// One leader isolation and one leader crash, far enough apart that sessions of hung holders can expire
/// between them (every new leader restarts the 2×TTL timers, so constant failovers would keep them alive).
pub fn isolation_then_crash(rng: &mut ChaCha8Rng, _servers: usize) -> Schedule {
    let mut schedule = Schedule::default();
    let isolate_at = FAULTS_FROM.as_secs_f64() + rng.gen_range(2.0..6.0);
    schedule.at(secs(isolate_at), Fault::IsolateLeader);
    schedule.at(secs(isolate_at + rng.gen_range(2.0..5.0)), Fault::HealAll);
    let crash_at = isolate_at + rng.gen_range(10.0..14.0);
    schedule.at(secs(crash_at), Fault::CrashLeader);
    schedule.at(secs(crash_at + rng.gen_range(2.0..4.0)), Fault::RestartCrashed);
    schedule
}

/// When the clients of `session-ttl-failover` that abandon their sessions stop renewing.
pub const ABANDON_AT: std::time::Duration = std::time::Duration::from_secs(6);

/// The leader crashes within the last seconds before the abandoned sessions may expire (2×TTL after
/// their last renewal, at most `ABANDON_AT`), and again later for good measure.
pub fn leader_crash_near_session_expiry(rng: &mut ChaCha8Rng, _servers: usize) -> Schedule {
    let mut schedule = Schedule::default();
    let expiry = ABANDON_AT + crate::lock_client::SESSION_TTL * 2;
    let crash_at = expiry - secs(rng.gen_range(0.0..3.0));
    schedule.at(crash_at, Fault::CrashLeader);
    schedule.at(crash_at + secs(rng.gen_range(1.0..3.0)), Fault::RestartCrashed);
    schedule
}
