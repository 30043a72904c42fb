//! The operator of `gossip-key-rotation`, through the real HTTP API (`/v1/operator/keyring`): while one
//! member is cut off it installs a new gossip key and makes it primary through a server that reaches the
//! others (too early: the member missed both); after the heal it lists the keyring through the servers in
//! turn once a second and does what the listing calls for (`next_action`), then watches every node's
//! member list. Every call and answer goes into the history for `checker::keyring`.
//!
//! Why the operator falls back to the old key first: the member that missed the rotation holds only the
//! old key, so it can read nothing sealed under the new one — neither the others' gossip (it stays failed
//! after the heal) nor a keyring request (a server seals those under its primary key too, and a client
//! agent forwards its own keyring requests to a server, as Consul's do). Once the old key is primary again
//! the member is found again (the announce to down members, every 30 s), and the new key's install and
//! use, run again, reach it: Consul's rule that a key becomes primary only when every member holds it.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use base64::Engine;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::checker::keyring::{KeyringObservation, KeyringStep, ListingState, PoolListing, Rotation};
use crate::checker::{History, MembersObservation};
use crate::client::{call, now_us};
use crate::gossip_client::{self, Target};

/// How long after the heal the operator starts again (a moment for the link to carry traffic).
const RESUME_AFTER_HEAL: Duration = Duration::from_secs(2);
/// The operator's pace after the heal: one listing (and at most one change) per round.
const ROUND_EVERY: Duration = Duration::from_secs(1);
/// How long a converged rotation is watched before the operator stops.
const WATCH_CONVERGED: Duration = Duration::from_secs(5);

/// A gossip key (32 bytes, standard base64, as `conclave keygen` prints) drawn from `seed`.
pub fn gossip_key(seed: u64) -> String {
    let mut bytes = [0u8; 32];
    ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// What the operator is told: the members (servers first), which one is cut off, and when.
pub struct Operator {
    pub nodes: Vec<Target>,
    pub servers: usize,
    pub isolated: usize,
    pub rotation: Rotation,
    pub rotate_at: Duration,
    pub heal_at: Duration,
    pub stop_at: Duration,
}

fn sim_now() -> Duration {
    Duration::from_micros(now_us())
}

async fn sleep_until(at: Duration) {
    tokio::time::sleep(at.saturating_sub(sim_now())).await;
}

/// One keyring call through `target`'s HTTP API, recorded.
async fn step(target: &Target, step: KeyringStep, key: &str, history: &Rc<RefCell<History>>) -> KeyringObservation {
    let method = match step {
        KeyringStep::List => "GET",
        KeyringStep::Install => "POST",
        KeyringStep::Use => "PUT",
        KeyringStep::Remove => "DELETE",
    };
    let body = match step {
        KeyringStep::List => Vec::new(),
        _ => serde_json::json!({ "Key": key }).to_string().into_bytes(),
    };
    let invoke_us = now_us();
    let answer = call(target.1, method, "/v1/operator/keyring", body).await.ok();
    let complete_us = now_us();
    let pools = answer.as_ref().filter(|a| a.status == 200 && step == KeyringStep::List).and_then(parse_listing);
    let observation = KeyringObservation {
        step,
        via: target.0.clone(),
        key: key.to_string(),
        invoke_us,
        complete_us,
        status: answer.map(|a| a.status),
        pools: pools.unwrap_or_default(),
    };
    tracing::info!(target: "sim::keyring", step = ?step, via = %target.0, status = ?observation.status, "keyring");
    history.borrow_mut().keyring.push(observation.clone());
    observation
}

fn parse_listing(answer: &conclave::env::http_client::HttpResponse) -> Option<Vec<PoolListing>> {
    let counts = |value: &serde_json::Value| {
        value.as_object().map(|map| map.iter().filter_map(|(k, n)| Some((k.clone(), n.as_u64()?))).collect())
    };
    let rows = answer.json().ok()?;
    rows.as_array()?
        .iter()
        .map(|row| {
            Some(PoolListing {
                wan: row["WAN"].as_bool()?,
                num_nodes: row["NumNodes"].as_u64()?,
                keys: counts(&row["Keys"])?,
                primary_keys: counts(&row["PrimaryKeys"])?,
            })
        })
        .collect()
}

/// Asks every node for its member list (recorded); whether every node listed every member alive.
async fn poll_members(nodes: &[Target], history: &Rc<RefCell<History>>) -> bool {
    let names: Vec<&str> = nodes.iter().map(|(n, _)| n.as_str()).collect();
    let mut all = true;
    for (node, addr) in nodes {
        let invoke_us = now_us();
        let members = gossip_client::get(*addr, "GET", "/v1/agent/members", Vec::new())
            .await
            .and_then(|answer| gossip_client::parse_members(&answer));
        let complete_us = now_us();
        let Some(members) = members else {
            all = false;
            continue;
        };
        all &= names.iter().all(|n| members.iter().any(|(m, s)| m == n && *s == crate::checker::membership::ALIVE));
        let observation = MembersObservation { node: node.clone(), invoke_us, complete_us, members };
        history.borrow_mut().members.push(observation);
    }
    all
}

/// What the operator does after a listing through a server, once the link is healed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Make the old key primary again: a member that lacks the new key cannot read gossip sealed under it,
    /// so it stays failed until the others speak the old key again.
    FallBack,
    /// Install the new key (again) through a server: reaches every member that is back.
    Install,
    /// Make the new key primary (again): every member holds it.
    Use,
    /// Remove the old key: every member uses the new one.
    Remove,
}

/// Consul's procedure from a listing: a key becomes primary only once every member holds it, and the old
/// one goes only once every member uses the new one. None: nothing to do (converged, or no answer).
pub fn next_action(rotation: &Rotation, listing: &KeyringObservation) -> Option<Action> {
    if listing.status != Some(200) || listing.pools.is_empty() {
        return None;
    }
    let new_key = &rotation.new_key;
    let lacking = |p: &PoolListing| {
        let size = if p.wan { rotation.servers } else { rotation.members.len() as u64 };
        p.num_nodes < size || p.keys.get(new_key).copied().unwrap_or(0) < p.num_nodes
    };
    let someone_lacks = listing.pools.iter().any(lacking);
    let new_primary_somewhere = listing.pools.iter().any(|p| p.primary_keys.get(new_key).is_some_and(|&n| n > 0));
    match rotation.state(listing) {
        ListingState::Converged => None,
        ListingState::OldKeyInstalled => Some(Action::Remove),
        ListingState::Incomplete if someone_lacks && new_primary_somewhere => Some(Action::FallBack),
        ListingState::Incomplete if someone_lacks => Some(Action::Install),
        ListingState::Incomplete => Some(Action::Use),
    }
}

/// The operator's whole run (see the module doc).
pub async fn rotate(operator: Operator, history: Rc<RefCell<History>>) {
    let Operator { nodes, servers, isolated, rotation, rotate_at, heal_at, stop_at } = operator;
    let (old_key, new_key) = (rotation.old_key.as_str(), rotation.new_key.as_str());
    let reachable = &nodes[(0..servers).find(|&i| i != isolated).expect("a server besides the isolated member")];
    sleep_until(rotate_at).await;
    step(reachable, KeyringStep::Install, new_key, &history).await;
    step(reachable, KeyringStep::Use, new_key, &history).await;

    sleep_until(heal_at + RESUME_AFTER_HEAL).await;
    let mut converged_at: Option<Duration> = None;
    let mut round = 0usize;
    while sim_now() < stop_at && converged_at.is_none_or(|at| sim_now() < at + WATCH_CONVERGED) {
        let server = &nodes[round % servers];
        round += 1;
        let listing = step(server, KeyringStep::List, "", &history).await;
        let all_alive = poll_members(&nodes, &history).await;
        if rotation.state(&listing) == ListingState::Converged && all_alive {
            converged_at = converged_at.or(Some(sim_now()));
        }
        let (what, key) = match next_action(&rotation, &listing) {
            Some(Action::FallBack) => (KeyringStep::Use, old_key),
            Some(Action::Install) => (KeyringStep::Install, new_key),
            Some(Action::Use) => (KeyringStep::Use, new_key),
            Some(Action::Remove) => (KeyringStep::Remove, old_key),
            None => (KeyringStep::List, ""),
        };
        if what != KeyringStep::List {
            step(server, what, key, &history).await;
        }
        tokio::time::sleep(ROUND_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotation() -> Rotation {
        let members = ["s1", "a1"].map(String::from).to_vec();
        Rotation { old_key: "old".into(), new_key: "new".into(), members, servers: 1, isolated_from_us: 0, heal_us: 0 }
    }

    /// A listing through s1: the WAN pool (s1 alone, on `wan_primary`) and the LAN pool.
    fn listing(lan_nodes: u64, keys: &[(&str, u64)], primary: &[(&str, u64)], wan_primary: &str) -> KeyringObservation {
        let counts = |pairs: &[(&str, u64)]| pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        let wan_keys = keys.iter().map(|(k, _)| (k.to_string(), 1)).collect();
        let pools = vec![
            PoolListing { wan: true, num_nodes: 1, keys: wan_keys, primary_keys: counts(&[(wan_primary, 1)]) },
            PoolListing { wan: false, num_nodes: lan_nodes, keys: counts(keys), primary_keys: counts(primary) },
        ];
        let (via, key, status) = ("s1".to_string(), String::new(), Some(200));
        KeyringObservation { step: KeyringStep::List, via, key, invoke_us: 0, complete_us: 0, status, pools }
    }

    #[test]
    fn operator_follows_consuls_rotation_procedure() {
        let table = [
            // The member that missed the rotation is gone while the new key is primary: fall back.
            (listing(1, &[("old", 1), ("new", 1)], &[("new", 1)], "new"), Some(Action::FallBack)),
            // It is back on the old key but lacks the new one: install again.
            (listing(2, &[("old", 2), ("new", 1)], &[("old", 2)], "old"), Some(Action::Install)),
            // Every member holds the new key, not every one uses it: use again.
            (listing(2, &[("old", 2), ("new", 2)], &[("old", 1), ("new", 1)], "new"), Some(Action::Use)),
            // Every member uses the new key: remove the old one.
            (listing(2, &[("old", 2), ("new", 2)], &[("new", 2)], "new"), Some(Action::Remove)),
            // The new key alone everywhere: done.
            (listing(2, &[("new", 2)], &[("new", 2)], "new"), None),
        ];
        for (observation, expected) in table {
            assert_eq!(next_action(&rotation(), &observation), expected, "{:?}", observation.pools);
        }
    }

    #[test]
    fn unanswered_listing_changes_nothing() {
        let mut observation = listing(1, &[("old", 1), ("new", 1)], &[("new", 1)], "new");
        observation.status = Some(500);
        assert_eq!(next_action(&rotation(), &observation), None);
    }
}
