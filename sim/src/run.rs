//! One simulation run: `(scenario, seed)` → servers running the production node driver on turmoil,
//! clients recording a history through the HTTP API, the scenario's faults, a heal, a liveness check, and
//! the checker's verdict. Everything random comes from the seed.

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use conclave::node::{node_main, start_node, FaultSwitches, Node, NodeConfig};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

use crate::checker::{self, CheckReport, History, ReadMode};
use crate::client::{self, Workload};
use crate::disk::SimDisk;
use crate::env::SimEnv;
use crate::faults::Fault;
use crate::scenarios::{gossip, Scenario, WorkloadKind, HEAL_AT};
use crate::trace;
use crate::{cas_client, gossip_client, health_client, lock_client};

/// How long after the heal the cluster has to answer a consistent read (the liveness bound).
pub const LIVENESS_BOUND: Duration = Duration::from_secs(45);
/// When clients start (the cluster has to bootstrap first).
const CLIENTS_START: Duration = Duration::from_secs(3);

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub seed: u64,
    pub faults: FaultSwitches,
    pub clients: u32,
    pub ops_per_client: usize,
    pub keep_trace: bool,
}

impl RunOptions {
    pub fn new(seed: u64) -> RunOptions {
        RunOptions { seed, faults: FaultSwitches::default(), clients: 4, ops_per_client: 120, keep_trace: false }
    }
}

#[derive(Debug)]
pub struct RunReport {
    pub scenario: &'static str,
    pub seed: u64,
    pub trace_hash: u64,
    pub trace_events: u64,
    pub trace_lines: Vec<String>,
    pub sim_secs: f64,
    pub wall_secs: f64,
    pub history_ops: usize,
    /// Lock holds and sessions the lock workloads recorded (0 for the others).
    pub lock_holds: usize,
    pub sessions: usize,
    pub sessions_expired: usize,
    /// What the health check judged (`check-flaps`; zero for the others).
    pub health: checker::health::HealthReport,
    /// What the membership check measured (the gossip scenarios; empty for the others).
    pub membership: checker::membership::MembershipReport,
    /// The checker's report, or the violation found.
    pub verdict: Result<CheckReport, String>,
}

impl RunReport {
    pub fn replay_line(&self) -> String {
        format!(
            "SIM_SEED={} cargo run -p sim --release -- --scenario {} --seed {}",
            self.seed, self.scenario, self.seed
        )
    }
}

/// Sub-seeds: one stream per purpose, all derived from the run seed.
fn derive_seed(seed: u64, purpose: u64, index: u64) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ purpose.rotate_left(32) ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    rng.next_u64()
}

/// A server, or a client agent (gossip scenarios; after the servers).
struct ServerSlot {
    name: String,
    disk: Arc<SimDisk>,
    node: Rc<RefCell<Option<Arc<Node<SimEnv>>>>>,
    crashed: bool,
}

fn server_config(name: &str, names: &[String], faults: FaultSwitches) -> NodeConfig {
    let mut config = NodeConfig::new(name);
    config.server = true;
    config.bootstrap_expect = names.len() as u32;
    config.bind_addr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    config.advertise_addr = turmoil::lookup(name);
    config.client_addr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    config.join = names.iter().map(|n| SocketAddr::new(turmoil::lookup(n.as_str()), config.ports.serf_lan)).collect();
    config.faults = faults;
    config
}

/// A client agent: no Raft, joins the servers' LAN addresses.
fn agent_config(name: &str, servers: &[String], faults: FaultSwitches) -> NodeConfig {
    let mut config = server_config(name, servers, faults);
    config.server = false;
    config.bootstrap_expect = 0;
    config
}

/// The hosts of a run: servers `s1..`, then client agents `a1..`.
pub fn node_names(scenario: &Scenario) -> Vec<String> {
    let servers = (1..=scenario.servers).map(|i| format!("s{i}"));
    servers.chain((1..=scenario.agents).map(|i| format!("a{i}"))).collect()
}

/// Runs one seed of `scenario` and checks its history.
pub fn run(scenario: &'static Scenario, options: &RunOptions) -> RunReport {
    trace::reset(options.keep_trace);
    let targets =
        Targets::new().with_target("conclave::event", tracing::Level::DEBUG).with_target("sim", tracing::Level::DEBUG);
    let subscriber = tracing_subscriber::registry().with(targets).with(trace::TraceLayer);
    let started = Instant::now();
    let (sim_elapsed, history, verdict) =
        tracing::subscriber::with_default(subscriber, || run_in_sim(scenario, options));
    let (trace_hash, trace_events, trace_lines) = trace::finish();
    let history_ops = history.len();
    let (lock_holds, sessions) = (history.holds.len(), history.sessions.len());
    let sessions_expired = history.sessions.iter().filter(|s| s.gone_at_us.is_some()).count();
    let mut health = checker::health::HealthReport::default();
    let mut membership = checker::membership::MembershipReport::default();
    let verdict = verdict.and_then(|()| {
        let report = checker::check(&history).map_err(|v| v.to_string())?;
        if scenario.workload.is_gossip() {
            membership = gossip_verdict(scenario, &history).map_err(|v| v.to_string())?;
        }
        if scenario.workload == WorkloadKind::KvCas {
            cas_client::check_counters(&history).map_err(|v| v.to_string())?;
        }
        if scenario.workload == WorkloadKind::CheckFlaps {
            let bound_us = health_client::SETTLE_BOUND.as_micros() as u64;
            health =
                checker::health::check(&history, health_client::instance_id, bound_us).map_err(|v| v.to_string())?;
            if health.settled_pairs == 0 {
                return Err("health: no answer came after a settled period; the run proves nothing".to_string());
            }
        }
        Ok(report)
    });
    RunReport {
        scenario: scenario.name,
        seed: options.seed,
        trace_hash,
        trace_events,
        trace_lines,
        sim_secs: sim_elapsed.as_secs_f64(),
        wall_secs: started.elapsed().as_secs_f64(),
        history_ops,
        lock_holds,
        sessions,
        sessions_expired,
        health,
        membership,
        verdict,
    }
}

/// Runs the membership check of a gossip scenario, with the times its faults and steps happened.
fn gossip_verdict(
    scenario: &Scenario,
    history: &History,
) -> Result<checker::membership::MembershipReport, checker::Violation> {
    use checker::membership;
    let names = node_names(scenario);
    let fault_at = |wanted: &dyn Fn(&Fault) -> bool| history.faults.iter().find(|(_, f)| wanted(f)).map(|(t, _)| *t);
    let missing = |what: &str| checker::Violation {
        check: "membership",
        key: scenario.name.to_string(),
        what: format!("the run ended before {what}"),
    };
    match scenario.workload {
        WorkloadKind::PartitionHeal => {
            let (from_us, sides) = history
                .faults
                .iter()
                .find_map(|(t, f)| match f {
                    Fault::Partition(l, r) => Some((*t, [l, r].map(|s| s.iter().map(|&i| names[i].clone()).collect()))),
                    _ => None,
                })
                .ok_or_else(|| missing("the split"))?;
            let heal_us = fault_at(&|f| *f == Fault::HealAll).ok_or_else(|| missing("the heal"))?;
            let split = membership::Split { sides, from_us, heal_us };
            membership::partition_heal(history, &split, gossip::PARTITION_HEAL_BOUND.as_micros() as u64)
        }
        WorkloadKind::ClientCrash => {
            let crash_us = fault_at(&|f| matches!(f, Fault::Crash(_))).ok_or_else(|| missing("the crash"))?;
            let restart_us = fault_at(&|f| matches!(f, Fault::Restart(_))).ok_or_else(|| missing("the restart"))?;
            let crash = membership::Crash { node: names[gossip::CRASHING_AGENT].clone(), crash_us, restart_us };
            membership::node_crash(
                history,
                &crash,
                gossip::CRASH_DETECT_BOUND.as_micros() as u64,
                gossip::RETURN_BOUND.as_micros() as u64,
            )
        }
        WorkloadKind::LeaveRejoin => {
            let (leave_us, index) = history
                .faults
                .iter()
                .find_map(|(t, f)| match f {
                    Fault::Leave(i) => Some((*t, *i)),
                    _ => None,
                })
                .ok_or_else(|| missing("the leave"))?;
            let restart_us = fault_at(&|f| matches!(f, Fault::Restart(_))).ok_or_else(|| missing("the restart"))?;
            let others = names.iter().filter(|n| **n != names[index]).cloned().collect();
            let leave = membership::Leave { node: names[index].clone(), others, leave_us, restart_us };
            membership::leave(history, &leave, gossip::LEAVE_BOUND.as_micros() as u64)
        }
        WorkloadKind::BootstrapExpect => {
            let starts = history.marks.iter().filter(|(_, m)| m.starts_with("start:"));
            let last_start_us = starts.map(|(t, _)| *t).max().unwrap_or(0);
            membership::bootstrap(history, &names, last_start_us, gossip::BOOTSTRAP_BOUND.as_micros() as u64)
        }
        _ => unreachable!("not a gossip scenario"),
    }
}

fn run_in_sim(scenario: &'static Scenario, options: &RunOptions) -> (Duration, History, Result<(), String>) {
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
    let start_delays: Vec<Duration> = (0..all_names.len())
        .map(|i| match scenario.workload {
            WorkloadKind::BootstrapExpect => {
                let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, 6, i as u64));
                Duration::from_millis(rng.gen_range(0..=gossip::START_DELAY_MAX.as_millis() as u64))
            }
            _ => Duration::ZERO,
        })
        .collect();
    let history = Rc::new(RefCell::new(History::default()));
    if scenario.workload == WorkloadKind::BootstrapExpect {
        let starts = all_names.iter().zip(&start_delays).map(|(n, d)| (d.as_micros() as u64, format!("start:{n}")));
        history.borrow_mut().marks.extend(starts);
    }
    let mut slots = Vec::new();
    for (index, name) in all_names.iter().enumerate() {
        let disk = Arc::new(SimDisk::new());
        let registry: Rc<RefCell<Option<Arc<Node<SimEnv>>>>> = Rc::new(RefCell::new(None));
        let incarnation = Rc::new(Cell::new(0u64));
        let (host_disk, host_registry, host_names, host_name) =
            (disk.clone(), registry.clone(), names.clone(), name.clone());
        let faults = options.faults;
        let start_delay = start_delays[index];
        sim.host(name.as_str(), move || {
            let (disk, registry, names, name) =
                (host_disk.clone(), host_registry.clone(), host_names.clone(), host_name.clone());
            let generation = incarnation.get();
            incarnation.set(generation + 1);
            async move {
                if generation == 0 && !start_delay.is_zero() {
                    tokio::time::sleep(start_delay).await;
                }
                let env = SimEnv::new(disk, derive_seed(seed, 2, (index as u64) << 16 | generation));
                let config = match index < names.len() {
                    true => server_config(&name, &names, faults),
                    false => agent_config(&name, &names, faults),
                };
                let node = start_node(env, config).await.map_err(|e| format!("{name} failed to start: {e:#}"))?;
                *registry.borrow_mut() = Some(node.clone());
                node_main(node).await.map_err(|e| format!("{name} stopped: {e:#}"))?;
                Ok(())
            }
        });
        slots.push(ServerSlot { name: name.clone(), disk, node: registry, crashed: false });
    }

    let servers: Vec<(u32, SocketAddr)> =
        names.iter().enumerate().map(|(i, n)| (i as u32, SocketAddr::new(sim.lookup(n.as_str()), 8500))).collect();
    let instance_ids: Vec<String> = (0..4).map(|i| format!("svc-{i}")).collect();
    if scenario.workload == WorkloadKind::CheckFlaps {
        start_check_flaps(&mut sim, seed, &servers, &history);
    }
    if scenario.workload.is_gossip() {
        start_gossip_clients(&mut sim, scenario, &all_names, &schedule, &history);
    }
    let clients = match scenario.workload {
        WorkloadKind::CheckFlaps => 0,
        kind if kind.is_gossip() => 0,
        _ => options.clients,
    };
    for client in 0..clients {
        let workload = Workload {
            client,
            servers: servers.clone(),
            instance_ids: instance_ids.clone(),
            ops_max: options.ops_per_client,
            stop_at: HEAL_AT,
            pause_max: Duration::from_millis(500),
        };
        let rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, 3, client as u64));
        let history = history.clone();
        let kind = scenario.workload;
        sim.client(format!("c{client}"), async move {
            tokio::time::sleep(CLIENTS_START).await;
            match kind {
                WorkloadKind::Catalog => client::run(workload, rng, history).await,
                WorkloadKind::KvCas => cas_client::run(workload, rng, history).await,
                WorkloadKind::LockHandoff => {
                    let behavior = lock_client::LockBehavior { hang_percent: 10, stop_renewing_at: None };
                    lock_client::run(workload, behavior, rng, history).await
                }
                WorkloadKind::SessionTtl => {
                    let abandons = client % 2 == 0;
                    let stop_renewing_at = abandons.then_some(crate::scenarios::kv::ABANDON_AT);
                    let behavior = lock_client::LockBehavior { hang_percent: 0, stop_renewing_at };
                    lock_client::run(workload, behavior, rng, history).await
                }
                _ => unreachable!("check-flaps and the gossip scenarios run no catalog clients"),
            }
            Ok(())
        });
    }
    let liveness = Rc::new(Cell::new(false));
    // The gossip scenarios' watchers judge liveness themselves (`checker::membership`).
    if !scenario.workload.is_gossip() {
        let (history, servers, ids, liveness) =
            (history.clone(), servers.clone(), instance_ids.clone(), liveness.clone());
        let kind = scenario.workload;
        sim.client("final-reader", async move {
            tokio::time::sleep(HEAL_AT + Duration::from_secs(2)).await;
            let deadline = tokio::time::Instant::now() + LIVENESS_BOUND;
            let done = match kind {
                WorkloadKind::Catalog => final_catalog_read(&history, &servers, &ids, deadline).await,
                WorkloadKind::KvCas => final_counter_reads(&history, &servers, deadline).await,
                WorkloadKind::LockHandoff | WorkloadKind::SessionTtl => {
                    lock_client::await_sessions_expired(&history, &servers, deadline).await
                }
                WorkloadKind::CheckFlaps => {
                    let after_us = (HEAL_AT + health_client::SETTLE_BOUND).as_micros() as u64;
                    tokio::time::sleep(health_client::SETTLE_BOUND + Duration::from_secs(5)).await;
                    history.borrow().health.iter().any(|o| o.invoke_us > after_us)
                }
                _ => unreachable!("the gossip scenarios have no final reader"),
            };
            liveness.set(done);
            Ok(())
        });
    }

    let mut next_event = 0;
    let mut outcome = Ok(());
    let mut partitioned = false;
    let mut disturbed_since: Option<u64> = None;
    loop {
        let now = sim.elapsed();
        trace::set_now(now);
        if scenario.workload.is_gossip() {
            note_stopped_hosts(&mut sim, &mut slots);
        }
        if scenario.workload == WorkloadKind::BootstrapExpect {
            sample_raft(&slots[..scenario.servers], now, &mut history.borrow_mut());
        }
        while next_event < schedule.events.len() && schedule.events[next_event].0 <= now {
            let fault = schedule.events[next_event].1.clone();
            history.borrow_mut().faults.push((now.as_micros() as u64, fault.clone()));
            for restarted in apply_fault(&mut sim, &mut slots, &fault) {
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

/// The check targets (hosts `t0..`), the registration of one instance per target on the servers in
/// turn, and the health observer.
fn start_check_flaps(
    sim: &mut turmoil::Sim<'_>,
    seed: u64,
    servers: &[(u32, SocketAddr)],
    history: &Rc<RefCell<History>>,
) {
    let until = HEAL_AT + LIVENESS_BOUND + Duration::from_secs(30);
    for target in 0..health_client::TARGETS {
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, 4, target as u64));
        let spans = Rc::new(health_client::draw_spans(&mut rng, target, until));
        history.borrow_mut().targets.extend(spans.iter().cloned());
        sim.host(health_client::target_name(target), move || health_client::serve_target(spans.clone()));
    }
    let target_ips: Vec<IpAddr> =
        (0..health_client::TARGETS).map(|t| sim.lookup(health_client::target_name(t))).collect();
    let registrar_servers = servers.to_vec();
    sim.client("registrar", async move {
        tokio::time::sleep(CLIENTS_START).await;
        for (index, ip) in target_ips.into_iter().enumerate() {
            let (_, server) = registrar_servers[index % registrar_servers.len()];
            health_client::register(server, index, ip).await;
        }
        Ok(())
    });
    let (observer_servers, observer_history) = (servers.to_vec(), history.clone());
    let rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, 5, 0));
    sim.client("observer", async move {
        tokio::time::sleep(CLIENTS_START).await;
        let stop_at = HEAL_AT + LIVENESS_BOUND + Duration::from_secs(25);
        health_client::observe(observer_servers, rng, observer_history, stop_at).await;
        Ok(())
    });
}

/// The catalog workload's final read: every instance, consistently, from any server that answers.
async fn final_catalog_read(
    history: &Rc<RefCell<History>>,
    servers: &[(u32, SocketAddr)],
    ids: &[String],
    deadline: tokio::time::Instant,
) -> bool {
    let mut attempt = 0usize;
    while tokio::time::Instant::now() < deadline {
        let server = servers[attempt % servers.len()];
        if client::read_all(history, u32::MAX, server, ids, ReadMode::Consistent).await {
            return true;
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

/// The CAS workload's final read: each counter, consistently, for the counter check.
async fn final_counter_reads(
    history: &Rc<RefCell<History>>,
    servers: &[(u32, SocketAddr)],
    deadline: tokio::time::Instant,
) -> bool {
    let mut attempt = 0usize;
    for key in cas_client::COUNTERS {
        loop {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            let server = servers[attempt % servers.len()];
            attempt += 1;
            if cas_client::read_key(history, u32::MAX, server, key, ReadMode::Consistent).await.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    true
}

fn leader_index(slots: &[ServerSlot]) -> Option<usize> {
    slots.iter().position(|s| !s.crashed && s.node.borrow().as_ref().is_some_and(|n| n.is_leader()))
}

fn crash(sim: &mut turmoil::Sim<'_>, slot: &mut ServerSlot) {
    if slot.crashed {
        return;
    }
    sim.crash(slot.name.as_str());
    slot.disk.crash();
    *slot.node.borrow_mut() = None;
    slot.crashed = true;
}

/// Applies one fault; returns the servers it restarted.
fn apply_fault(sim: &mut turmoil::Sim<'_>, slots: &mut [ServerSlot], fault: &Fault) -> Vec<usize> {
    let mut restarted = Vec::new();
    tracing::info!(target: "sim::fault", fault = ?fault, leader = ?leader_index(slots), "inject");
    let names: Vec<String> = slots.iter().map(|s| s.name.clone()).collect();
    match fault {
        Fault::CrashLeader => {
            if let Some(leader) = leader_index(slots) {
                crash(sim, &mut slots[leader]);
            }
        }
        Fault::Crash(index) => crash(sim, &mut slots[*index]),
        Fault::CrashAll => slots.iter_mut().for_each(|slot| crash(sim, slot)),
        Fault::RestartCrashed => {
            for (index, slot) in slots.iter_mut().enumerate().filter(|(_, s)| s.crashed) {
                sim.bounce(slot.name.as_str());
                slot.crashed = false;
                restarted.push(index);
            }
        }
        Fault::IsolateLeader => {
            if let Some(leader) = leader_index(slots) {
                for (_, name) in names.iter().enumerate().filter(|(i, _)| *i != leader) {
                    sim.partition(names[leader].as_str(), name.as_str());
                }
            }
        }
        Fault::Partition(left, right) => {
            for a in left {
                for b in right {
                    sim.partition(names[*a].as_str(), names[*b].as_str());
                }
            }
        }
        Fault::PartitionOneway(from, to) => sim.partition_oneway(names[*from].as_str(), names[*to].as_str()),
        Fault::LeaderCannotSend => {
            if let Some(leader) = leader_index(slots) {
                for (_, name) in names.iter().enumerate().filter(|(i, _)| *i != leader) {
                    sim.partition_oneway(names[leader].as_str(), name.as_str());
                }
            }
        }
        Fault::Restart(index) => {
            let slot = &mut slots[*index];
            sim.bounce(slot.name.as_str());
            slot.crashed = false;
            restarted.push(*index);
        }
        Fault::Leave(_) => {} // sent by the scenario's client through the HTTP API
        Fault::HealAll => {
            for a in 0..names.len() {
                for b in a + 1..names.len() {
                    sim.repair(names[a].as_str(), names[b].as_str());
                }
            }
        }
    }
    restarted
}

/// A node whose process ended (it left) is no longer anyone's leader: forget its handle.
fn note_stopped_hosts(sim: &mut turmoil::Sim<'_>, slots: &mut [ServerSlot]) {
    for slot in slots.iter_mut().filter(|s| !s.crashed) {
        if slot.node.borrow().is_some() && !sim.is_host_running(slot.name.as_str()) {
            tracing::info!(target: "sim::fault", node = %slot.name, "process ended");
            *slot.node.borrow_mut() = None;
        }
    }
}

/// Records each server's Raft term, leadership and voters whenever they change.
fn sample_raft(slots: &[ServerSlot], now: Duration, history: &mut History) {
    for slot in slots {
        let Some(node) = slot.node.borrow().clone() else { continue };
        let Some(raft) = &node.raft else { continue };
        let (term, voters) = {
            let metrics = raft.metrics();
            let metrics = metrics.borrow();
            (metrics.current_term, metrics.membership_config.membership().voter_ids().collect::<Vec<u64>>())
        };
        let sample = checker::RaftSample {
            node: slot.name.clone(),
            at_us: now.as_micros() as u64,
            term,
            is_leader: node.is_leader(),
            voters,
        };
        let last = history.raft.iter().rev().find(|s| s.node == sample.node);
        if last.is_none_or(|l| (l.term, l.is_leader, &l.voters) != (sample.term, sample.is_leader, &sample.voters)) {
            history.raft.push(sample);
        }
    }
}

/// The gossip scenarios' clients: the scripted steps and the watchers (`gossip_client`).
fn start_gossip_clients(
    sim: &mut turmoil::Sim<'_>,
    scenario: &Scenario,
    names: &[String],
    schedule: &crate::faults::Schedule,
    history: &Rc<RefCell<History>>,
) {
    let http = |name: &String| (name.clone(), SocketAddr::new(sim.lookup(name.as_str()), 8500));
    let nodes: Vec<gossip_client::Target> = names.iter().map(http).collect();
    let servers: Vec<gossip_client::Target> = nodes[..scenario.servers].to_vec();
    let fault_time = |wanted: &dyn Fn(&Fault) -> bool| {
        schedule.events.iter().find(|(_, f)| wanted(f)).map(|(t, _)| *t).expect("the schedule has the fault")
    };
    match scenario.workload {
        WorkloadKind::PartitionHeal => {
            let heal_at = fault_time(&|f| *f == Fault::HealAll);
            let stop_at = heal_at + gossip::PARTITION_HEAL_BOUND + Duration::from_secs(2);
            let (history, all) = (history.clone(), names.to_vec());
            sim.client("member-watcher", async move {
                let done = move |h: &History| gossip::stably_all_alive(h, &all, heal_at);
                gossip_client::watch_members(nodes, history, stop_at, done).await;
                Ok(())
            });
        }
        WorkloadKind::ClientCrash => {
            let restart_at = fault_time(&|f| matches!(f, Fault::Restart(_)));
            let stop_at = restart_at + gossip::RETURN_BOUND + Duration::from_secs(3);
            let agent = nodes[gossip::CRASHING_AGENT].clone();
            let registrar_history = history.clone();
            sim.client("registrar", async move {
                tokio::time::sleep(CLIENTS_START).await;
                gossip_client::register_service(agent.1, &registrar_history).await;
                Ok(())
            });
            let ids: Vec<(u32, SocketAddr)> = servers.iter().enumerate().map(|(i, (_, a))| (i as u32, *a)).collect();
            let (history, agent_name) = (history.clone(), names[gossip::CRASHING_AGENT].clone());
            sim.client("health-watcher", async move {
                tokio::time::sleep(CLIENTS_START).await;
                gossip_client::watch_node_health(ids, agent_name, history, stop_at).await;
                Ok(())
            });
        }
        WorkloadKind::LeaveRejoin => {
            let (leave_at, leaver) = schedule
                .events
                .iter()
                .find_map(|(t, f)| match f {
                    Fault::Leave(i) => Some((*t, *i)),
                    _ => None,
                })
                .expect("the schedule has a leave");
            let restart_at = fault_time(&|f| matches!(f, Fault::Restart(_)));
            let stop_at = restart_at + gossip::REJOIN_WATCH;
            let leave_history = history.clone();
            let target = servers[leaver].clone();
            sim.client("leaver", async move {
                gossip_client::leave(target, leave_at, &leave_history).await;
                Ok(())
            });
            let (watch_history, watched) = (history.clone(), servers.clone());
            sim.client("member-watcher", async move {
                gossip_client::watch_members(watched, watch_history, stop_at, |_| false).await;
                Ok(())
            });
            let (status_history, watched) = (history.clone(), servers.clone());
            sim.client("status-watcher", async move {
                gossip_client::watch_status(watched, status_history, stop_at, |_| false).await;
                Ok(())
            });
            let ids: Vec<(u32, SocketAddr)> = servers.iter().enumerate().map(|(i, (_, a))| (i as u32, *a)).collect();
            let writer_history = history.clone();
            sim.client("writer", async move {
                gossip_client::write_through_leave(ids, leaver, leave_at, restart_at, stop_at, writer_history).await;
                Ok(())
            });
        }
        WorkloadKind::BootstrapExpect => {
            let stop_at = gossip::START_DELAY_MAX + gossip::BOOTSTRAP_BOUND + Duration::from_secs(5);
            let (history, count) = (history.clone(), servers.len());
            sim.client("status-watcher", async move {
                let done = move |h: &History| gossip::stably_agreed(h, count);
                gossip_client::watch_status(servers, history, stop_at, done).await;
                Ok(())
            });
        }
        _ => unreachable!("not a gossip scenario"),
    }
}
