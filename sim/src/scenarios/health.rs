//! The schedule of `check-flaps`: partitions around the leader, leader crashes and follower crashes, with
//! calm gaps between them long enough for check results to settle (the health checker only judges
//! answers given after such a gap).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{FAULTS_FROM, HEAL_AT};
use crate::faults::{secs, Fault, Schedule};

pub fn calm_gaps_between_faults(rng: &mut ChaCha8Rng, servers: usize) -> Schedule {
    let mut schedule = Schedule::default();
    let mut at = FAULTS_FROM.as_secs_f64() + rng.gen_range(0.0..2.0);
    while at < HEAL_AT.as_secs_f64() - 6.0 {
        let lasts = rng.gen_range(2.0..6.0);
        match rng.gen_range(0..3) {
            0 => {
                schedule.at(secs(at), Fault::IsolateLeader);
                schedule.at(secs(at + lasts), Fault::HealAll);
            }
            1 => {
                schedule.at(secs(at), Fault::CrashLeader);
                schedule.at(secs(at + lasts), Fault::RestartCrashed);
            }
            _ => {
                schedule.at(secs(at), Fault::Crash(rng.gen_range(0..servers)));
                schedule.at(secs(at + lasts), Fault::RestartCrashed);
            }
        }
        at += lasts + rng.gen_range(3.0..12.0);
    }
    schedule
}
