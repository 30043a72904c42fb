//! Partition scenarios: links cut both ways or one way, then repaired.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{FAULTS_FROM, HEAL_AT};
use crate::faults::{secs, Fault, Schedule};

pub fn partition_leader(rng: &mut ChaCha8Rng, _servers: usize) -> Schedule {
    let mut schedule = Schedule::default();
    let mut at = FAULTS_FROM.as_secs_f64() + rng.gen_range(0.0..3.0);
    while at < HEAL_AT.as_secs_f64() - 8.0 {
        schedule.at(secs(at), Fault::IsolateLeader);
        at += rng.gen_range(4.0..9.0);
        schedule.at(secs(at), Fault::HealAll);
        at += rng.gen_range(2.0..5.0);
    }
    schedule
}

pub fn asymmetric_partition(rng: &mut ChaCha8Rng, servers: usize) -> Schedule {
    let mut schedule = Schedule::default();
    let mut at = FAULTS_FROM.as_secs_f64() + rng.gen_range(0.0..2.0);
    while at < HEAL_AT.as_secs_f64() - 6.0 {
        if rng.gen_bool(0.5) {
            schedule.at(secs(at), Fault::LeaderCannotSend);
        } else {
            let from = rng.gen_range(0..servers);
            let to = (from + rng.gen_range(1..servers)) % servers;
            schedule.at(secs(at), Fault::PartitionOneway(from, to));
        }
        at += rng.gen_range(3.0..7.0);
        schedule.at(secs(at), Fault::HealAll);
        at += rng.gen_range(1.0..4.0);
    }
    schedule
}

pub fn flapping_partitions(rng: &mut ChaCha8Rng, servers: usize) -> Schedule {
    let mut schedule = Schedule::default();
    let mut at = FAULTS_FROM.as_secs_f64();
    while at < HEAL_AT.as_secs_f64() - 3.0 {
        let mut order: Vec<usize> = (0..servers).collect();
        order.shuffle(rng);
        let cut = rng.gen_range(1..servers);
        let (left, right) = order.split_at(cut);
        schedule.at(secs(at), Fault::Partition(left.to_vec(), right.to_vec()));
        if rng.gen_bool(0.3) {
            schedule.at(secs(at + 0.5), Fault::Crash(order[0]));
        }
        at += rng.gen_range(1.0..3.0);
        schedule.at(secs(at), Fault::HealAll);
        schedule.at(secs(at), Fault::RestartCrashed);
        at += rng.gen_range(0.5..2.0);
    }
    schedule
}
