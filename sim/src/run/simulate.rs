//! The simulation itself: builds the turmoil world from the seed, starts the hosts and clients, then
//! steps it, injecting the schedule's faults on time and noting when the cluster was disturbed.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{cluster, derive_seed, gossip_clients, inject, node_names, workloads, RunOptions, LIVENESS_BOUND};
use crate::checker::History;
use crate::env::HostClock;
use crate::faults::Fault;
use crate::scenarios::{gossip, Scenario, WorkloadKind, HEAL_AT};
use crate::trace;

pub(super) fn run_in_sim(scenario: &'static Scenario, options: &RunOptions) -> (Duration, History, Result<(), String>) {
    let seed = options.seed;
    let mut schedule_rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, 1, 0));
    let mut schedule = (scenario.schedule)(&mut schedule_rng, scenario.servers + scenario.agents);
    if !scenario.workload.is_gossip() {
        schedule.at(HEAL_AT, Fault::HealAll);
        schedule.at(HEAL_AT, Fault::RestartCrashed);
    }

    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .epoch(UNIX_EPOCH)
        .simulation_duration(HEAL_AT + LIVENESS_BOUND + Duration::from_secs(30))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(10))
        .ephemeral_ports(1024..=65535)
        .enable_random_order()
        .build();

    let all_names = node_names(scenario);
    let names: Rc<Vec<String>> = Rc::new(all_names[..scenario.servers].to_vec());
    let starts: Vec<cluster::HostStart> = (0..all_names.len())
        .map(|i| {
            let delay = match scenario.workload {
                WorkloadKind::BootstrapExpect => {
                    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, 6, i as u64));
                    Duration::from_millis(rng.gen_range(0..=gossip::START_DELAY_MAX.as_millis() as u64))
                }
                _ => Duration::ZERO,
            };
            let clock = match scenario.clock_skew {
                true => {
                    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, 10, i as u64));
                    let (offset, drift) = (HostClock::OFFSET_MS_MAX, HostClock::DRIFT_PPM_MAX);
                    HostClock { offset_ms: rng.gen_range(-offset..=offset), drift_ppm: rng.gen_range(-drift..=drift) }
                }
                false => HostClock::default(),
            };
            cluster::HostStart { delay, clock }
        })
        .collect();
    let history = Rc::new(RefCell::new(History::default()));
    if scenario.workload == WorkloadKind::BootstrapExpect {
        let marks = all_names.iter().zip(&starts).map(|(n, s)| (s.delay.as_micros() as u64, format!("start:{n}")));
        history.borrow_mut().marks.extend(marks);
    }
    let security = cluster::HostSecurity {
        acl: scenario.workload == WorkloadKind::AclRevocation,
        encrypt: (scenario.workload == WorkloadKind::KeyRotation).then(|| super::gossip_keys(seed).0),
    };
    let mut slots = cluster::start_hosts(&mut sim, seed, options.faults, &security, &all_names, &names, &starts);

    let servers: Vec<(u32, SocketAddr)> =
        names.iter().enumerate().map(|(i, n)| (i as u32, SocketAddr::new(sim.lookup(n.as_str()), 8500))).collect();
    let instance_ids: Vec<String> = (0..4).map(|i| format!("svc-{i}")).collect();
    if scenario.workload == WorkloadKind::CheckFlaps {
        workloads::start_check_flaps(&mut sim, seed, &servers, &history);
    }
    if scenario.workload == WorkloadKind::AgentChurn {
        workloads::start_agent_churn(&mut sim, seed, &all_names[scenario.servers..], &servers, &history);
    }
    if scenario.workload.is_gossip() {
        gossip_clients::start_gossip_clients(&mut sim, scenario, seed, &all_names, &schedule, &history);
    }
    workloads::start_clients(&mut sim, scenario, options, &servers, &instance_ids, &history);
    let liveness =
        workloads::start_final_reader(&mut sim, scenario, &servers, &instance_ids, &history, options.clients);

    let mut next_event = 0;
    let mut outcome = Ok(());
    let mut partitioned = false;
    let mut disturbed_since: Option<u64> = None;
    loop {
        let now = sim.elapsed();
        trace::set_now(now);
        if scenario.workload.is_gossip() {
            inject::note_stopped_hosts(&mut sim, &mut slots);
        }
        if matches!(scenario.workload, WorkloadKind::BootstrapExpect | WorkloadKind::DiskStall) {
            cluster::sample_raft(&slots[..scenario.servers], now, &mut history.borrow_mut());
        }
        while next_event < schedule.events.len() && schedule.events[next_event].0 <= now {
            let fault = schedule.events[next_event].1.clone();
            history.borrow_mut().faults.push((now.as_micros() as u64, fault.clone()));
            for restarted in inject::apply_fault(&mut sim, &mut slots, &fault) {
                history.borrow_mut().restarts.push((restarted as u32, now.as_micros() as u64));
            }
            partitioned = match fault {
                Fault::HealAll => false,
                Fault::IsolateLeader | Fault::Partition(..) | Fault::PartitionOneway(..) | Fault::LeaderCannotSend => {
                    true
                }
                _ => partitioned,
            };
            let disturbed = partitioned || slots.iter().any(|s| s.crashed);
            let now_us = now.as_micros() as u64;
            match (disturbed, disturbed_since) {
                (true, None) => disturbed_since = Some(now_us),
                (false, Some(from)) => {
                    history.borrow_mut().disturbed.push((from, now_us));
                    disturbed_since = None;
                }
                _ => {}
            }
            next_event += 1;
        }
        match sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                outcome = Err(format!("simulation error: {e}"));
                break;
            }
        }
    }
    if outcome.is_ok() && !liveness.get() && !scenario.workload.is_gossip() {
        let what = match scenario.workload {
            WorkloadKind::LockHandoff | WorkloadKind::SessionTtl => "not every abandoned session expired",
            WorkloadKind::CheckFlaps => "no health answer",
            _ => "no consistent read succeeded",
        };
        outcome = Err(format!("liveness: {what} within {}s after the heal", LIVENESS_BOUND.as_secs()));
    }
    let elapsed = sim.elapsed();
    drop(sim);
    let history = history.borrow().clone();
    (elapsed, history, outcome)
}
