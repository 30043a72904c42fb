//! Every scenario over many seeds: each run's history must check out (linearizable per instance, every
//! acknowledged registration durable, stale reads within their contract) and the cluster must recover
//! after the heal. `SIM_SEEDS=N` runs N seeds per scenario (default: enough for 300+ runs in total).
//! A failure names the first failing seed and the command that replays it.

use sim::run::{run, RunOptions};
use sim::scenarios::{find, SCENARIOS};

/// Seeds per scenario by default: 17 scenarios × 44 seeds = 748 runs.
const SEEDS_PER_SCENARIO_DEFAULT: u64 = 44;

fn seeds_per_scenario() -> u64 {
    std::env::var("SIM_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(SEEDS_PER_SCENARIO_DEFAULT)
}

fn run_seeds(name: &str) {
    let scenario = find(name).unwrap_or_else(|| panic!("no scenario {name}"));
    let seeds = seeds_per_scenario();
    let mut sim_secs = 0.0;
    let mut wall_secs = 0.0;
    for seed in 1..=seeds {
        let report = run(scenario, &RunOptions::new(seed));
        sim_secs += report.sim_secs;
        wall_secs += report.wall_secs;
        if let Err(violation) = &report.verdict {
            panic!("{name} seed {seed}: violation: {violation}\nreplay: {}", report.replay_line());
        }
    }
    eprintln!("{name}: {seeds} seeds ok, {sim_secs:.0} simulated s in {wall_secs:.1} wall s");
}

macro_rules! scenario_test {
    ($test:ident, $name:literal) => {
        #[test]
        fn $test() {
            run_seeds($name);
        }
    };
}

scenario_test!(leader_crash_keeps_histories_linearizable, "leader-crash");
scenario_test!(follower_restart_keeps_histories_linearizable, "follower-restart");
scenario_test!(partition_leader_keeps_histories_linearizable, "partition-leader");
scenario_test!(asymmetric_partition_keeps_histories_linearizable, "asymmetric-partition");
scenario_test!(flapping_partitions_keep_histories_linearizable, "flapping-partitions");
scenario_test!(power_loss_loses_no_acknowledged_write, "power-loss");
scenario_test!(five_servers_two_down_keep_histories_linearizable, "five-servers-two-down");
scenario_test!(kv_cas_contention_loses_no_increment, "kv-cas-contention");
scenario_test!(lock_handoff_never_has_two_holders, "lock-handoff");
scenario_test!(acl_revocation_refuses_every_later_write_with_a_revoked_token, "acl-revocation");
scenario_test!(session_ttl_failover_never_expires_a_session_early, "session-ttl-failover");
scenario_test!(check_flaps_health_follows_check_targets, "check-flaps");
scenario_test!(gossip_partition_heal_detects_the_split_and_converges, "gossip-partition-heal");
scenario_test!(client_crash_turns_serf_health_critical_then_passing, "client-crash");
scenario_test!(server_leave_rejoin_leaves_raft_and_comes_back, "server-leave-rejoin");
scenario_test!(bootstrap_expect_forms_exactly_one_cluster, "bootstrap-expect");
scenario_test!(gossip_key_rotation_during_a_partition_reaches_every_member_after_the_heal, "gossip-key-rotation");
scenario_test!(leader_disk_stall_steps_the_leader_down_and_writes_resume, "leader-disk-stall");
scenario_test!(client_agent_churn_converges_the_catalog_on_each_agent, "client-agent-churn");

#[test]
fn every_scenario_has_a_test() {
    let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "leader-crash",
            "follower-restart",
            "partition-leader",
            "asymmetric-partition",
            "flapping-partitions",
            "power-loss",
            "five-servers-two-down",
            "kv-cas-contention",
            "acl-revocation",
            "lock-handoff",
            "session-ttl-failover",
            "check-flaps",
            "gossip-partition-heal",
            "client-crash",
            "server-leave-rejoin",
            "bootstrap-expect",
            "gossip-key-rotation",
            "leader-disk-stall",
            "client-agent-churn",
        ]
    );
}
