//! The gossip scenarios' clients: the scripted steps (register, leave) and the watchers that record
//! members, health and Raft status through the HTTP API (`gossip_client`).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::CLIENTS_START;
use crate::checker::History;
use crate::faults::Fault;
use crate::scenarios::{gossip, keyring, Scenario, WorkloadKind};
use crate::{gossip_client, keyring_client};

/// The gossip scenarios' clients: the scripted steps and the watchers (`gossip_client`).
pub(super) fn start_gossip_clients(
    sim: &mut turmoil::Sim<'_>,
    scenario: &Scenario,
    seed: u64,
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
        WorkloadKind::KeyRotation => {
            let faults: Vec<(u64, Fault)> =
                schedule.events.iter().map(|(t, f)| (t.as_micros() as u64, f.clone())).collect();
            let (rotation, isolated) = super::verdict::rotation_of(scenario, seed, &faults).expect("a cut and a heal");
            let mut rng = ChaCha8Rng::seed_from_u64(super::derive_seed(seed, 8, 2));
            let after = rng.gen_range(keyring::ROTATE_AFTER_MIN..=keyring::ROTATE_AFTER_MAX);
            let cut_at = Duration::from_micros(rotation.isolated_from_us);
            let heal_at = Duration::from_micros(rotation.heal_us);
            let operator = keyring_client::Operator {
                nodes,
                servers: scenario.servers,
                isolated,
                rotation,
                rotate_at: cut_at + after,
                heal_at,
                stop_at: heal_at + keyring::CONVERGE_BOUND + Duration::from_secs(10),
            };
            let history = history.clone();
            sim.client("operator", async move {
                keyring_client::rotate(operator, history).await;
                Ok(())
            });
        }
        _ => unreachable!("not a gossip scenario"),
    }
}
