//! One simulation run: `(scenario, seed)` → servers running the production node driver on turmoil,
//! clients recording a history through the HTTP API, the scenario's faults, a heal, a liveness check, and
//! the checker's verdict. Everything random comes from the seed.

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use conclave::node::{node_main, start_node, FaultSwitches, Node, NodeConfig};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

use crate::checker::{self, CheckReport, History, ReadMode};
use crate::client::{self, Workload};
use crate::disk::SimDisk;
use crate::env::SimEnv;
use crate::faults::Fault;
use crate::scenarios::{Scenario, WorkloadKind, HEAL_AT};
use crate::trace;
use crate::{cas_client, health_client, lock_client};

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
    let verdict = verdict.and_then(|()| {
        let report = checker::check(&history).map_err(|v| v.to_string())?;
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
        verdict,
    }
}

fn run_in_sim(scenario: &'static Scenario, options: &RunOptions) -> (Duration, History, Result<(), String>) {
    let seed = options.seed;
    let mut schedule_rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, 1, 0));
    let mut schedule = (scenario.schedule)(&mut schedule_rng, scenario.servers);
    schedule.at(HEAL_AT, Fault::HealAll);
    schedule.at(HEAL_AT, Fault::RestartCrashed);

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

    let names: Rc<Vec<String>> = Rc::new((1..=scenario.servers).map(|i| format!("s{i}")).collect());
    let mut slots = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let disk = Arc::new(SimDisk::new());
        let registry: Rc<RefCell<Option<Arc<Node<SimEnv>>>>> = Rc::new(RefCell::new(None));
        let incarnation = Rc::new(Cell::new(0u64));
        let (host_disk, host_registry, host_names, host_name) =
            (disk.clone(), registry.clone(), names.clone(), name.clone());
        let faults = options.faults;
        sim.host(name.as_str(), move || {
            let (disk, registry, names, name) =
                (host_disk.clone(), host_registry.clone(), host_names.clone(), host_name.clone());
            let generation = incarnation.get();
            incarnation.set(generation + 1);
            async move {
                let env = SimEnv::new(disk, derive_seed(seed, 2, (index as u64) << 16 | generation));
                let config = server_config(&name, &names, faults);
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
    let history = Rc::new(RefCell::new(History::default()));
    if scenario.workload == WorkloadKind::CheckFlaps {
        start_check_flaps(&mut sim, seed, &servers, &history);
    }
    let clients = if scenario.workload == WorkloadKind::CheckFlaps { 0 } else { options.clients };
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
                WorkloadKind::CheckFlaps => unreachable!("check-flaps runs no catalog clients"),
            }
            Ok(())
        });
    }
    let liveness = Rc::new(Cell::new(false));
    {
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
        while next_event < schedule.events.len() && schedule.events[next_event].0 <= now {
            let fault = schedule.events[next_event].1.clone();
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
    if outcome.is_ok() && !liveness.get() {
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
