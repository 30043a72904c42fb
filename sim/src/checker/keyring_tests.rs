//! The keyring check on tiny hand-made histories: a good rotation passes; a run that rotated nothing
//! during the isolation, a member left on the old key, a stranger key and a late convergence fail.

use std::collections::BTreeMap;

use super::*;

const OLD: &str = "old";
const NEW: &str = "new";
const HEAL_US: u64 = 20_000_000;
const BOUND_US: u64 = 10_000_000;

fn rotation() -> Rotation {
    let members = ["s1", "s2", "a1"].map(String::from).to_vec();
    Rotation {
        old_key: OLD.into(),
        new_key: NEW.into(),
        members,
        servers: 2,
        isolated_from_us: 5_000_000,
        heal_us: HEAL_US,
    }
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

fn call(step: KeyringStep, key: &str, at_us: u64) -> KeyringObservation {
    let status = Some(200);
    KeyringObservation {
        step,
        via: "s1".into(),
        key: key.into(),
        invoke_us: at_us,
        complete_us: at_us,
        status,
        pools: vec![],
    }
}

/// A listing where `lan_keys` is what the LAN pool's three members hold (the WAN pool follows suit).
fn listing(at_us: u64, lan_keys: &[(&str, u64)], lan_primary: &[(&str, u64)]) -> KeyringObservation {
    let wan_keys: Vec<(&str, u64)> = lan_keys.iter().map(|&(k, n)| (k, n.min(2))).collect();
    let wan_primary: Vec<(&str, u64)> = lan_primary.iter().map(|&(k, n)| (k, n.min(2))).collect();
    let pools = vec![
        PoolListing { wan: true, num_nodes: 2, keys: counts(&wan_keys), primary_keys: counts(&wan_primary) },
        PoolListing { wan: false, num_nodes: 3, keys: counts(lan_keys), primary_keys: counts(lan_primary) },
    ];
    KeyringObservation { pools, ..call(KeyringStep::List, "", at_us) }
}

fn all_alive(node: &str, at_us: u64) -> MembersObservation {
    let members = ["s1", "s2", "a1"].iter().map(|n| (n.to_string(), ALIVE)).collect();
    MembersObservation { node: node.into(), invoke_us: at_us, complete_us: at_us, members }
}

fn good_history() -> History {
    let mut history = History::default();
    history.keyring.push(call(KeyringStep::Install, NEW, 6_000_000));
    history.keyring.push(call(KeyringStep::Use, NEW, 7_000_000));
    history.keyring.push(listing(HEAL_US + 1_000_000, &[(NEW, 3), (OLD, 2)], &[(NEW, 2), (OLD, 1)]));
    history.keyring.push(listing(HEAL_US + 3_000_000, &[(NEW, 3), (OLD, 3)], &[(NEW, 3)]));
    history.keyring.push(call(KeyringStep::Remove, OLD, HEAL_US + 3_500_000));
    history.keyring.push(listing(HEAL_US + 4_000_000, &[(NEW, 3)], &[(NEW, 3)]));
    for node in ["s1", "s2", "a1"] {
        history.members.push(all_alive(node, HEAL_US + 4_500_000));
    }
    history
}

#[test]
fn rotation_that_reaches_every_member_passes() {
    let report = check(&good_history(), &rotation(), BOUND_US).expect("a good rotation");
    assert_eq!(report.converged_after_heal_us, 4_000_000);
}

#[test]
fn rotation_not_sent_during_the_isolation_proves_nothing() {
    let mut history = good_history();
    history.keyring.retain(|o| o.step != KeyringStep::Use || o.invoke_us >= HEAL_US);
    let error = check(&history, &rotation(), BOUND_US).unwrap_err();
    assert!(error.what.contains("proves nothing"), "{error}");
}

#[test]
fn member_left_on_the_old_key_fails_the_run() {
    let mut history = good_history();
    history.keyring.retain(|o| o.invoke_us < HEAL_US + 3_500_000);
    let error = check(&history, &rotation(), BOUND_US).unwrap_err();
    assert!(error.what.contains("never converged"), "{error}");
}

#[test]
fn listing_that_misses_a_member_is_not_convergence() {
    let mut short = listing(HEAL_US + 4_000_000, &[(NEW, 2)], &[(NEW, 2)]);
    short.pools[1].num_nodes = 2;
    assert_eq!(rotation().state(&short), ListingState::Incomplete);
}

#[test]
fn key_nobody_installed_fails_the_run() {
    let mut history = good_history();
    history.keyring.push(listing(HEAL_US + 5_000_000, &[(NEW, 3), ("stranger", 1)], &[(NEW, 3)]));
    let error = check(&history, &rotation(), BOUND_US).unwrap_err();
    assert!(error.what.contains("nobody installed"), "{error}");
}

#[test]
fn convergence_after_the_bound_fails_the_run() {
    let error = check(&good_history(), &rotation(), 2_000_000).unwrap_err();
    assert!(error.what.contains("only"), "{error}");
}

#[test]
fn node_that_loses_a_member_after_convergence_fails_the_run() {
    let mut history = good_history();
    let mut lost = all_alive("a1", HEAL_US + 6_000_000);
    lost.members[0].1 = super::super::membership::FAILED;
    history.members.push(lost);
    let error = check(&history, &rotation(), BOUND_US).unwrap_err();
    assert!(error.what.contains("lost a member"), "{error}");
}
