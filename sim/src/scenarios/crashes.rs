//! Crash scenarios: servers lose their process and their unsynced writes, then restart from disk.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{FAULTS_FROM, HEAL_AT};
use crate::faults::{secs, Fault, Schedule};

fn random_time(rng: &mut ChaCha8Rng, from: f64, to: f64) -> std::time::Duration {
    secs(rng.gen_range(from..to))
}

pub fn leader_crash(rng: &mut ChaCha8Rng, _servers: usize) -> Schedule {
    let mut schedule = Schedule::default();
    let start = FAULTS_FROM.as_secs_f64();
    let crash_at = random_time(rng, start, start + 6.0);
    schedule.at(crash_at, Fault::CrashLeader);
    schedule.at(crash_at + random_time(rng, 3.0, 8.0), Fault::RestartCrashed);
    let second = crash_at + random_time(rng, 10.0, 14.0);
    if second < HEAL_AT {
        schedule.at(second, Fault::CrashLeader);
    }
    schedule
}

pub fn follower_restart(rng: &mut ChaCha8Rng, servers: usize) -> Schedule {
    let mut schedule = Schedule::default();
    let mut at = FAULTS_FROM.as_secs_f64();
    while at < HEAL_AT.as_secs_f64() - 6.0 {
        // A random server may be the leader; that is fine — the point is many restarts.
        schedule.at(secs(at), Fault::Crash(rng.gen_range(0..servers)));
        at += rng.gen_range(1.0..4.0);
        schedule.at(secs(at), Fault::RestartCrashed);
        at += rng.gen_range(1.0..3.0);
    }
    schedule
}

pub fn power_loss(rng: &mut ChaCha8Rng, _servers: usize) -> Schedule {
    let mut schedule = Schedule::default();
    let start = FAULTS_FROM.as_secs_f64();
    let crash_at = random_time(rng, start + 2.0, start + 8.0);
    schedule.at(crash_at, Fault::CrashAll);
    schedule.at(crash_at + random_time(rng, 1.0, 5.0), Fault::RestartCrashed);
    let second = crash_at + random_time(rng, 9.0, 12.0);
    if second + secs(2.0) < HEAL_AT {
        schedule.at(second, Fault::CrashAll);
        schedule.at(second + random_time(rng, 0.5, 2.0), Fault::RestartCrashed);
    }
    schedule
}

pub fn five_servers_two_down(rng: &mut ChaCha8Rng, servers: usize) -> Schedule {
    let mut schedule = Schedule::default();
    let start = FAULTS_FROM.as_secs_f64();
    let first = rng.gen_range(0..servers);
    let second = (first + rng.gen_range(1..servers)) % servers;
    let at = random_time(rng, start, start + 5.0);
    if rng.gen_bool(0.5) {
        schedule.at(at, Fault::CrashLeader);
        schedule.at(at + random_time(rng, 0.5, 3.0), Fault::Crash(second));
    } else {
        schedule.at(at, Fault::Crash(first));
        schedule.at(at + random_time(rng, 0.5, 3.0), Fault::Crash(second));
    }
    schedule.at(at + random_time(rng, 10.0, 16.0), Fault::RestartCrashed);
    schedule
}
