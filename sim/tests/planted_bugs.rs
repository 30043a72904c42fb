//! The checker is itself tested: with a real bug planted in the node through a named fault switch, some
//! seed within a bounded number must report a violation. A checker that never fails would fail here.

use sim::run::{run, RunOptions};
use sim::scenarios::find;

/// Seeds tried before declaring that the checker missed the bug.
const SEEDS_MAX: u64 = 30;

fn first_violation(scenario: &str, plant: impl Fn(&mut RunOptions)) -> Option<(u64, String)> {
    let scenario = find(scenario).unwrap();
    (1..=SEEDS_MAX).find_map(|seed| {
        let mut options = RunOptions::new(seed);
        plant(&mut options);
        run(scenario, &options).verdict.err().map(|v| (seed, v))
    })
}

#[test]
fn checker_catches_reads_served_without_read_index() {
    let found = first_violation("partition-leader", |o| o.faults.local_reads = true);
    let (seed, violation) = found.expect("local reads on an isolated leader must be caught within the seed bound");
    eprintln!("local-reads caught at seed {seed}: {violation}");
}

#[test]
fn checker_catches_writes_authorized_against_a_stale_local_acl_copy() {
    let found = first_violation("acl-revocation", |o| o.faults.acl_check_locally = true);
    let (seed, violation) =
        found.expect("authorizing on a follower's stale ACL copy must be caught within the seed bound");
    eprintln!("acl-check-locally caught at seed {seed}: {violation}");
}

#[test]
fn checker_catches_writes_acknowledged_before_commit() {
    let found = first_violation("partition-leader", |o| o.faults.ack_before_commit = true);
    let (seed, violation) = found.expect("acknowledging before commit must be caught within the seed bound");
    eprintln!("ack-before-commit caught at seed {seed}: {violation}");
}

#[test]
fn checker_catches_sessions_expired_before_twice_their_ttl() {
    let found = first_violation("lock-handoff", |o| o.faults.session_ttl_early = true);
    let (seed, violation) = found.expect("early session expiry must be caught within the seed bound");
    eprintln!("session-ttl-early caught at seed {seed}: {violation}");
}

#[test]
fn checker_catches_check_results_left_to_the_periodic_sync() {
    let found = first_violation("check-flaps", |o| o.faults.lazy_check_sync = true);
    let (seed, violation) = found.expect("check results held back for a minute must be caught within the seed bound");
    eprintln!("lazy-check-sync caught at seed {seed}: {violation}");
}

#[test]
fn checker_catches_log_appends_acknowledged_without_fsync() {
    let found = first_violation("power-loss", |o| o.faults.skip_log_fsync = true);
    let (seed, violation) = found.expect("a log append reported durable unsynced must be caught within the seed bound");
    eprintln!("unsynced log appends caught at seed {seed}: {violation}");
}
