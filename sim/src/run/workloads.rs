//! The clients of a run: the workload clients that record the history through the HTTP API, the check
//! targets and observer of `check-flaps`, and the final reader that proves liveness after the heal.

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{derive_seed, RunOptions, CLIENTS_START, LIVENESS_BOUND};
use crate::checker::{History, ReadMode};
use crate::client::{self, Workload};
use crate::scenarios::{agents, Scenario, WorkloadKind, HEAL_AT};
use crate::{acl_client, agent_churn_client, cas_client, health_client, lock_client};

/// The clients of the catalog, KV and lock workloads, each with its own rng stream.
pub(super) fn start_clients(
    sim: &mut turmoil::Sim<'_>,
    scenario: &'static Scenario,
    options: &RunOptions,
    servers: &[(u32, SocketAddr)],
    instance_ids: &[String],
    history: &Rc<RefCell<History>>,
) {
    let seed = options.seed;
    let clients = match scenario.workload {
        WorkloadKind::CheckFlaps | WorkloadKind::AgentChurn => 0,
        kind if kind.is_gossip() => 0,
        _ => options.clients,
    };
    if scenario.workload == WorkloadKind::AclRevocation {
        let (revoker_servers, revoker_history) = (servers.to_vec(), history.clone());
        let rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, 7, 0));
        sim.client("revoker", async move {
            tokio::time::sleep(CLIENTS_START).await;
            acl_client::setup(&revoker_servers).await;
            acl_client::revoke(revoker_servers, rng, revoker_history).await;
            Ok(())
        });
    }
    for client in 0..clients {
        let workload = Workload {
            client,
            servers: servers.to_vec(),
            instance_ids: instance_ids.to_vec(),
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
                WorkloadKind::Catalog | WorkloadKind::DiskStall => client::run(workload, rng, history).await,
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
                WorkloadKind::AclRevocation => {
                    // The tokens exist once the revoker's setup is done (before faults begin).
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    acl_client::write(workload, rng, history).await
                }
                _ => unreachable!("check-flaps and the gossip scenarios run no catalog clients"),
            }
            Ok(())
        });
    }
}

/// The reader that proves liveness after the heal; the returned flag is set once it succeeded. The gossip
/// scenarios' watchers judge liveness themselves (`checker::membership`).
pub(super) fn start_final_reader(
    sim: &mut turmoil::Sim<'_>,
    scenario: &'static Scenario,
    servers: &[(u32, SocketAddr)],
    instance_ids: &[String],
    history: &Rc<RefCell<History>>,
    writers: u32,
) -> Rc<Cell<bool>> {
    let liveness = Rc::new(Cell::new(false));
    if !scenario.workload.is_gossip() {
        let (history, servers, ids, liveness) =
            (history.clone(), servers.to_vec(), instance_ids.to_vec(), liveness.clone());
        let kind = scenario.workload;
        sim.client("final-reader", async move {
            tokio::time::sleep(HEAL_AT + Duration::from_secs(2)).await;
            let deadline = tokio::time::Instant::now() + LIVENESS_BOUND;
            let done = match kind {
                WorkloadKind::Catalog | WorkloadKind::DiskStall => {
                    final_catalog_read(&history, &servers, &ids, deadline).await
                }
                WorkloadKind::KvCas => final_counter_reads(&history, &servers, deadline).await,
                WorkloadKind::AclRevocation => acl_client::final_reads(&history, &servers, writers, deadline).await,
                WorkloadKind::LockHandoff | WorkloadKind::SessionTtl => {
                    lock_client::await_sessions_expired(&history, &servers, deadline).await
                }
                WorkloadKind::CheckFlaps => {
                    let after_us = (HEAL_AT + health_client::SETTLE_BOUND).as_micros() as u64;
                    tokio::time::sleep(health_client::SETTLE_BOUND + Duration::from_secs(5)).await;
                    history.borrow().health.iter().any(|o| o.invoke_us > after_us)
                }
                WorkloadKind::AgentChurn => {
                    tokio::time::sleep(agents::CONVERGE_BOUND + Duration::from_secs(8)).await;
                    let after_us = (HEAL_AT + agents::CONVERGE_BOUND).as_micros() as u64;
                    history.borrow().agent_views.iter().any(|v| v.at_us >= after_us)
                }
                _ => unreachable!("the gossip scenarios have no final reader"),
            };
            liveness.set(done);
            Ok(())
        });
    }

    liveness
}

/// The check targets (hosts `t0..`), the registration of one instance per target on the servers in
/// turn, and the health observer.
pub(super) fn start_check_flaps(
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

/// `client-agent-churn`: a churner on each client agent's API until the heal, and the observer of the
/// agents' state against the catalog after it.
pub(super) fn start_agent_churn(
    sim: &mut turmoil::Sim<'_>,
    seed: u64,
    agent_names: &[String],
    servers: &[(u32, SocketAddr)],
    history: &Rc<RefCell<History>>,
) {
    let agents: Vec<(String, SocketAddr)> =
        agent_names.iter().map(|name| (name.clone(), SocketAddr::new(sim.lookup(name.as_str()), 8500))).collect();
    for (index, (name, addr)) in agents.iter().enumerate() {
        let (addr, rng) = (*addr, ChaCha8Rng::seed_from_u64(derive_seed(seed, 9, index as u64)));
        sim.client(format!("churn-{name}"), async move {
            tokio::time::sleep(CLIENTS_START).await;
            agent_churn_client::churn(addr, rng, HEAL_AT).await;
            Ok(())
        });
    }
    let (servers, history): (Vec<SocketAddr>, _) = (servers.iter().map(|(_, a)| *a).collect(), history.clone());
    sim.client("agent-observer", async move {
        tokio::time::sleep(HEAL_AT).await;
        let stop_at = HEAL_AT + agents::CONVERGE_BOUND + Duration::from_secs(8);
        agent_churn_client::observe(agents, servers, history, stop_at).await;
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
