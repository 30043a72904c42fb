//! The verdict of `gossip-key-rotation`: the operator's keyring steps and listings
//! (`/v1/operator/keyring`) and every node's member list, against when the member was cut off and healed.
//! - the run proves something only if an install and a use of the new key were sent during the isolation;
//! - safety: no listing ever shows a key other than the old and the new one; once a listing showed every
//!   member on the new key alone, every later listing does too, and a node that reported every member
//!   alive after that keeps doing so;
//! - liveness: within the bound after the heal a listing shows, in every pool, every member
//!   (`NumNodes` = the pool's size) holding the new key as its only key and as primary, and every node
//!   reports every member alive.

use std::collections::BTreeMap;

use super::history::{History, MembersObservation};
use super::membership::ALIVE;
use super::Violation;

/// An operator's call to `/v1/operator/keyring`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyringStep {
    List,
    Install,
    Use,
    Remove,
}

/// One pool's entry in a keyring listing, as Consul shapes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolListing {
    pub wan: bool,
    pub num_nodes: u64,
    /// How many members hold each key (`Keys`) and use it as primary (`PrimaryKeys`).
    pub keys: BTreeMap<String, u64>,
    pub primary_keys: BTreeMap<String, u64>,
}

/// One call the operator made, with its answer (`status` None: no answer in time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyringObservation {
    pub step: KeyringStep,
    /// The node whose HTTP API was called.
    pub via: String,
    /// The key sent (empty for a listing).
    pub key: String,
    pub invoke_us: u64,
    pub complete_us: u64,
    pub status: Option<u16>,
    /// A listing's pools (empty unless a listing answered 200).
    pub pools: Vec<PoolListing>,
}

/// What the rotation was: its keys, the pools' sizes, the members, and when the member was cut off.
#[derive(Clone, Debug)]
pub struct Rotation {
    pub old_key: String,
    pub new_key: String,
    /// Every member's name (the LAN pool); the servers are the WAN pool.
    pub members: Vec<String>,
    pub servers: u64,
    pub isolated_from_us: u64,
    pub heal_us: u64,
}

/// What the check saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RotationReport {
    pub steps: usize,
    /// From the heal to the first listing with every member on the new key alone.
    pub converged_after_heal_us: u64,
}

/// Where a listing stands in the rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListingState {
    /// A pool is missing members, or some member lacks the new key or does not use it as primary.
    Incomplete,
    /// Every member holds the new key as primary, but the old key is still installed somewhere.
    OldKeyInstalled,
    /// Every member holds the new key alone, as primary.
    Converged,
}

impl Rotation {
    fn pool_size(&self, wan: bool) -> u64 {
        if wan {
            self.servers
        } else {
            self.members.len() as u64
        }
    }

    /// A listing through a server has the WAN and the LAN pool; anything else is incomplete.
    pub fn state(&self, observation: &KeyringObservation) -> ListingState {
        let pools = &observation.pools;
        let both_pools = pools.len() == 2 && pools.iter().any(|p| p.wan) && pools.iter().any(|p| !p.wan);
        let on_new = |p: &PoolListing| {
            let n = self.pool_size(p.wan);
            p.num_nodes == n && p.keys.get(&self.new_key) == Some(&n) && p.primary_keys.get(&self.new_key) == Some(&n)
        };
        if observation.status != Some(200) || !both_pools || !pools.iter().all(on_new) {
            return ListingState::Incomplete;
        }
        match pools.iter().all(|p| p.keys.len() == 1 && p.primary_keys.len() == 1) {
            true => ListingState::Converged,
            false => ListingState::OldKeyInstalled,
        }
    }
}

fn violation(what: String) -> Violation {
    Violation { check: "keyring", key: "gossip-key-rotation".to_string(), what }
}

fn describe(observation: &KeyringObservation) -> String {
    let pools: Vec<String> = observation
        .pools
        .iter()
        .map(|p| {
            let name = if p.wan { "WAN" } else { "LAN" };
            format!("{name} NumNodes={} Keys={:?} PrimaryKeys={:?}", p.num_nodes, p.keys, p.primary_keys)
        })
        .collect();
    format!(
        "{:?} via {} at {}us: status {:?} [{}]",
        observation.step,
        observation.via,
        observation.invoke_us,
        observation.status,
        pools.join("; ")
    )
}

fn all_alive(observation: &MembersObservation, names: &[String]) -> bool {
    names.iter().all(|n| observation.members.iter().any(|(m, s)| m == n && *s == ALIVE))
}

/// Judges the rotation of `history` (see the module doc); `bound_us` counts from the heal.
pub fn check(history: &History, rotation: &Rotation, bound_us: u64) -> Result<RotationReport, Violation> {
    let during = |o: &&KeyringObservation| o.invoke_us >= rotation.isolated_from_us && o.invoke_us < rotation.heal_us;
    let sent_during = |step| history.keyring.iter().filter(during).any(|o| o.step == step && o.key == rotation.new_key);
    if !sent_during(KeyringStep::Install) || !sent_during(KeyringStep::Use) {
        return Err(violation("no install and use of the new key during the isolation: the run proves nothing".into()));
    }
    let known = [&rotation.old_key, &rotation.new_key];
    for observation in &history.keyring {
        let listed = observation.pools.iter().flat_map(|p| p.keys.keys().chain(p.primary_keys.keys()));
        if let Some(stranger) = listed.into_iter().find(|k| !known.contains(k)) {
            return Err(violation(format!("a key nobody installed ({stranger}): {}", describe(observation))));
        }
    }
    let deadline_us = rotation.heal_us + bound_us;
    let listings: Vec<&KeyringObservation> =
        history.keyring.iter().filter(|o| o.step == KeyringStep::List && o.invoke_us >= rotation.heal_us).collect();
    let Some(first) = listings.iter().position(|o| rotation.state(o) == ListingState::Converged) else {
        let last = listings.last().map_or("no listing after the heal".to_string(), |o| describe(o));
        return Err(violation(format!("members never converged on the new key alone; last listing: {last}")));
    };
    let converged = listings[first];
    if converged.complete_us > deadline_us {
        return Err(violation(format!(
            "the new key was everywhere only {}us after the heal (bound {bound_us}us): {}",
            converged.complete_us - rotation.heal_us,
            describe(converged)
        )));
    }
    if let Some(later) =
        listings[first..].iter().find(|o| o.status == Some(200) && rotation.state(o) != ListingState::Converged)
    {
        return Err(violation(format!("a listing after convergence went back: {}", describe(later))));
    }
    check_members(history, rotation, converged.invoke_us, deadline_us)?;
    Ok(RotationReport {
        steps: history.keyring.len(),
        converged_after_heal_us: converged.complete_us - rotation.heal_us,
    })
}

/// Every node reports every member alive by the deadline, and keeps doing so from its first such answer
/// after `converged_us` (before that a member that lacks the key may come and go).
fn check_members(history: &History, rotation: &Rotation, converged_us: u64, deadline_us: u64) -> Result<(), Violation> {
    let names = &rotation.members;
    for node in names {
        let answers: Vec<&MembersObservation> =
            history.members.iter().filter(|o| &o.node == node && o.invoke_us >= rotation.heal_us).collect();
        let Some(first) = answers.iter().position(|o| o.invoke_us >= converged_us && all_alive(o, names)) else {
            let last = answers.last().map_or("none".to_string(), |o| format!("{:?} at {}us", o.members, o.invoke_us));
            return Err(violation(format!(
                "{node} never reported every member alive after the rotation; last: {last}"
            )));
        };
        if answers[first].complete_us > deadline_us {
            return Err(violation(format!(
                "{node} reported every member alive only at {}us",
                answers[first].complete_us
            )));
        }
        if let Some(later) = answers[first..].iter().find(|o| !all_alive(o, names)) {
            return Err(violation(format!("{node} lost a member again: {:?} at {}us", later.members, later.invoke_us)));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "keyring_tests.rs"]
mod tests;
