//! The membership verdict of a gossip scenario: the times its faults and steps happened, handed to
//! `checker::membership` (or, for `gossip-key-rotation`, `checker::keyring`) with the scenario's bounds.

use super::{gossip_keys, node_names};
use crate::checker::{self, History};
use crate::faults::Fault;
use crate::scenarios::{gossip, keyring, Scenario, WorkloadKind};

/// The rotation of `gossip-key-rotation` from its fault times (simulated microseconds): its keys, its
/// members, and the index of the member that was cut off; None before the cut or the heal.
pub(super) fn rotation_of(
    scenario: &Scenario,
    seed: u64,
    faults: &[(u64, Fault)],
) -> Option<(checker::keyring::Rotation, usize)> {
    let (isolated_from_us, isolated) = faults.iter().find_map(|(t, f)| match f {
        Fault::Partition(alone, _) => Some((*t, alone[0])),
        _ => None,
    })?;
    let heal_us = faults.iter().find(|(_, f)| *f == Fault::HealAll)?.0;
    let (old_key, new_key) = gossip_keys(seed);
    let members = node_names(scenario);
    let servers = scenario.servers as u64;
    Some((checker::keyring::Rotation { old_key, new_key, members, servers, isolated_from_us, heal_us }, isolated))
}

pub(super) fn keyring_verdict(
    scenario: &Scenario,
    seed: u64,
    history: &History,
) -> Result<checker::keyring::RotationReport, checker::Violation> {
    let Some((rotation, _)) = rotation_of(scenario, seed, &history.faults) else {
        let what = "the run ended before the cut or the heal".to_string();
        return Err(checker::Violation { check: "keyring", key: scenario.name.to_string(), what });
    };
    checker::keyring::check(history, &rotation, keyring::CONVERGE_BOUND.as_micros() as u64)
}

pub(super) fn gossip_verdict(
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
