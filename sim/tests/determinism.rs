//! A seed fixes the whole run: the `sim` binary, run twice in separate processes with the same scenario
//! and seed, prints the same trace hash; another seed prints another.

use std::process::Command;

fn trace_hash(scenario: &str, seed: u64) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["--scenario", scenario, "--seed", &seed.to_string()])
        .output()
        .expect("run the sim binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.last().is_some_and(|l| l.starts_with("result: ")), "last line must be the result:\n{stdout}");
    lines
        .iter()
        .find_map(|l| l.strip_prefix("trace-hash: "))
        .unwrap_or_else(|| panic!("no trace-hash line in:\n{stdout}"))
        .to_string()
}

#[test]
fn same_seed_gives_same_trace_hash_in_two_processes() {
    let first = trace_hash("leader-crash", 7);
    let second = trace_hash("leader-crash", 7);
    assert_eq!(first, second, "seed 7 must replay identically");
    let other = trace_hash("leader-crash", 8);
    assert_ne!(first, other, "seed 8 must give another trace");
}

#[test]
fn lock_handoff_replays_identically() {
    assert_eq!(trace_hash("lock-handoff", 11), trace_hash("lock-handoff", 11));
}

#[test]
fn check_flaps_replays_identically() {
    assert_eq!(trace_hash("check-flaps", 5), trace_hash("check-flaps", 5));
}

#[test]
fn gossip_key_rotation_replays_identically() {
    assert_eq!(trace_hash("gossip-key-rotation", 3), trace_hash("gossip-key-rotation", 3));
}

#[test]
fn list_names_every_scenario() {
    let output = Command::new(env!("CARGO_BIN_EXE_sim")).arg("--list").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    for name in [
        "leader-crash",
        "partition-leader",
        "power-loss",
        "five-servers-two-down",
        "lock-handoff",
        "check-flaps",
        "gossip-key-rotation",
    ] {
        assert!(stdout.contains(name), "{name} missing from --list:\n{stdout}");
    }
}
