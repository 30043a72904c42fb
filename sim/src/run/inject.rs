//! Injecting a scheduled fault into the running simulation: crashes (with the disk losing what was not
//! synced), restarts, partitions one-way and both ways, disk stalls, and the heal.

use super::cluster::ServerSlot;
use crate::faults::Fault;

pub(super) fn leader_index(slots: &[ServerSlot]) -> Option<usize> {
    slots.iter().position(|s| !s.crashed && s.node.borrow().as_ref().is_some_and(|n| n.is_leader()))
}

pub(super) fn crash(sim: &mut turmoil::Sim<'_>, slot: &mut ServerSlot) {
    if slot.crashed {
        return;
    }
    sim.crash(slot.name.as_str());
    slot.disk.crash();
    *slot.node.borrow_mut() = None;
    slot.crashed = true;
}

/// Applies one fault; returns the servers it restarted.
pub(super) fn apply_fault(sim: &mut turmoil::Sim<'_>, slots: &mut [ServerSlot], fault: &Fault) -> Vec<usize> {
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
        Fault::DiskStallLeader => {
            if let Some(leader) = leader_index(slots) {
                tracing::info!(target: "sim::fault", node = %slots[leader].name, "disk stalls");
                slots[leader].disk.stall();
            }
        }
        Fault::DiskResume => slots.iter().for_each(|slot| slot.disk.resume()),
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
pub(super) fn note_stopped_hosts(sim: &mut turmoil::Sim<'_>, slots: &mut [ServerSlot]) {
    for slot in slots.iter_mut().filter(|s| !s.crashed) {
        if slot.node.borrow().is_some() && !sim.is_host_running(slot.name.as_str()) {
            tracing::info!(target: "sim::fault", node = %slot.name, "process ended");
            *slot.node.borrow_mut() = None;
        }
    }
}
