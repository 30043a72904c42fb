//! The `sim` binary: run or replay one seed of a scenario.
//!
//! `sim --scenario leader-crash --seed 7` prints the run's figures, then `trace-hash: <hex>` and, last,
//! `result: ok` or `result: violation: <what>`. `--list` lists the scenarios. `--fault local-reads` or
//! `--fault ack-before-commit` or `--fault session-ttl-early` or `--fault lazy-check-sync` or `--fault acl-check-locally` or `--fault skip-log-fsync` plants a bug to watch the checker catch it. `--print-trace` prints the trace.

use std::process::ExitCode;

use clap::Parser;
use sim::run::{run, RunOptions};
use sim::scenarios::{find, SCENARIOS};

#[derive(Parser, Debug)]
#[command(name = "sim", about = "Conclave's deterministic chaos simulator")]
struct Args {
    /// Scenario to run.
    #[arg(long)]
    scenario: Option<String>,
    /// Run seed (also read from SIM_SEED).
    #[arg(long, env = "SIM_SEED")]
    seed: Option<u64>,
    /// Run this many consecutive seeds starting at --seed.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// List the scenarios.
    #[arg(long)]
    list: bool,
    /// Plant a bug: local-reads, ack-before-commit, session-ttl-early, lazy-check-sync, acl-check-locally, skip-log-fsync.
    #[arg(long)]
    fault: Vec<String>,
    /// Print every trace line.
    #[arg(long)]
    print_trace: bool,
}

fn main() -> ExitCode {
    // `sim gossip-model ...`: the sockets-free gossip model has its own flags (sim/src/gossip_model/cli.rs).
    if std::env::args().nth(1).as_deref() == Some("gossip-model") {
        return sim::gossip_model::cli::main(std::env::args().skip(1));
    }
    let args = Args::parse();
    if args.list {
        for scenario in SCENARIOS {
            println!("{:<24} {} servers  {}", scenario.name, scenario.servers, scenario.about);
        }
        return ExitCode::SUCCESS;
    }
    let Some(name) = args.scenario.as_deref() else {
        eprintln!("--scenario NAME is required (see --list)");
        return ExitCode::from(2);
    };
    let Some(scenario) = find(name) else {
        eprintln!("unknown scenario {name:?} (see --list)");
        return ExitCode::from(2);
    };
    let first_seed = args.seed.unwrap_or(1);
    let mut failed = false;
    for seed in first_seed..first_seed + args.seeds.max(1) {
        let mut options = RunOptions::new(seed);
        options.keep_trace = args.print_trace;
        for fault in &args.fault {
            match fault.as_str() {
                "local-reads" => options.faults.local_reads = true,
                "ack-before-commit" => options.faults.ack_before_commit = true,
                "session-ttl-early" => options.faults.session_ttl_early = true,
                "lazy-check-sync" => options.faults.lazy_check_sync = true,
                "acl-check-locally" => options.faults.acl_check_locally = true,
                "skip-log-fsync" => options.faults.skip_log_fsync = true,
                other => {
                    eprintln!(
                        "unknown fault {other:?} (local-reads, ack-before-commit, session-ttl-early, lazy-check-sync, \
                         acl-check-locally, skip-log-fsync)"
                    );
                    return ExitCode::from(2);
                }
            }
        }
        let report = run(scenario, &options);
        for line in &report.trace_lines {
            println!("{line}");
        }
        println!("scenario: {} seed: {}", report.scenario, report.seed);
        println!("history: {} operations, {} trace events", report.history_ops, report.trace_events);
        if report.health.observations > 0 {
            println!(
                "health: {} answers, {} settled (answer, instance) pairs judged",
                report.health.observations, report.health.settled_pairs
            );
        }
        if report.revocation.revocations > 0 {
            println!(
                "revocation: {} tokens revoked, {} writes started after their token's revocation, all refused",
                report.revocation.revocations, report.revocation.writes_after_revocation
            );
        }
        if report.rotation.steps > 0 {
            println!(
                "keyring: {} operator calls; every member on the new key alone {:.1}s after the heal",
                report.rotation.steps,
                report.rotation.converged_after_heal_us as f64 / 1e6
            );
        }
        if report.membership.observations > 0 {
            let figures: Vec<String> =
                report.membership.figures.iter().map(|(what, us)| format!("{what} {:.1}s", *us as f64 / 1e6)).collect();
            println!("membership: {} answers; {}", report.membership.observations, figures.join(", "));
        }
        if let Some(stall) = &report.stall {
            println!(
                "disk stall: {} stepped down {:.2}s after the stall, {} led after {:.2}s, {} writes acknowledged while stalled, {} writes it held answered at most {:.2}s after its step-down",
                stall.stalled,
                stall.step_down_after_us as f64 / 1e6,
                stall.new_leader,
                stall.new_leader_after_us as f64 / 1e6,
                stall.writes_acked_while_stalled,
                stall.writes_held,
                stall.held_longest_after_step_down_us as f64 / 1e6
            );
        }
        if report.agents.observations > 0 {
            println!(
                "agents: {} looks, {} after the bound; catalog matched every agent {:.1}s after the heal",
                report.agents.observations,
                report.agents.settled,
                report.agents.converged_after_us as f64 / 1e6
            );
        }
        if report.sessions > 0 {
            println!(
                "locks: {} holds, {} sessions ({} seen expire)",
                report.lock_holds, report.sessions, report.sessions_expired
            );
        }
        println!(
            "simulated: {:.1}s in {:.2}s wall ({:.0} simulated seconds per wall second)",
            report.sim_secs,
            report.wall_secs,
            report.sim_secs / report.wall_secs.max(1e-9)
        );
        println!("trace-hash: {:016x}", report.trace_hash);
        match &report.verdict {
            Ok(_) => println!("result: ok"),
            Err(violation) => {
                failed = true;
                println!("replay: {}", report.replay_line());
                println!("result: violation: {violation}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
