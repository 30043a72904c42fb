//! `sim gossip-model`: runs the experiments for one cluster size at one or more loss levels and prints the
//! figures beside serf's model. Example: `sim gossip-model --nodes 1000 --loss 0,0.01,0.05,0.1 --seed 1`.

use std::process::ExitCode;

use clap::Parser;
use conclave_core::gossip::GossipConfig;

use super::event_loop::Seeding;
use super::experiments::{run, serf_model_secs, Figures, Plan};

/// "Never" for the periodic announces, in partial-view runs (longer than any run).
const PUSH_PULL_OFF: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

#[derive(Parser, Debug)]
#[command(name = "sim gossip-model", about = "Sockets-free gossip model: dissemination, detection, false positives")]
struct Args {
    /// Cluster size.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Packet loss probabilities, comma-separated; one run per value.
    #[arg(long, default_value = "0", value_delimiter = ',')]
    loss: Vec<f64>,
    /// Run seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// One-way latency range in milliseconds, `MIN-MAX`, drawn uniformly per packet.
    #[arg(long, default_value = "1-5")]
    latency_ms: String,
    /// Seed each node with this many random neighbours instead of the full member list
    /// (default: full up to 2,000 nodes, else 256). Turns periodic push-pull off.
    #[arg(long)]
    view: Option<usize>,
    /// Length of the false-positive window after the event, in seconds.
    #[arg(long, default_value_t = 60)]
    window_secs: u64,
    /// Use Consul's WAN timings instead of LAN.
    #[arg(long)]
    wan: bool,
}

/// Entry point; `args` starts with the subcommand name.
pub fn main(args: impl Iterator<Item = String>) -> ExitCode {
    let args = Args::parse_from(args);
    let Some((min, max)) = args.latency_ms.split_once('-').and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
    else {
        eprintln!("--latency-ms wants MIN-MAX, e.g. 1-5");
        return ExitCode::from(2);
    };
    if args.nodes < 2 || args.loss.iter().any(|l| !(0.0..1.0).contains(l)) || min > max {
        eprintln!("need --nodes >= 2, every --loss in [0, 1) and MIN <= MAX");
        return ExitCode::from(2);
    }
    let seeding = match args.view {
        Some(degree) => Seeding::Random { degree },
        None if args.nodes <= 2_000 => Seeding::Full,
        None => Seeding::Random { degree: 256 },
    };
    for &loss in &args.loss {
        let mut plan = Plan::lan(args.nodes, loss, args.seed);
        plan.net.latency_ms_min = min;
        plan.net.latency_ms_max = max;
        plan.seeding = seeding;
        plan.window_ms = args.window_secs * 1000;
        if args.wan {
            plan.config = GossipConfig::wan();
        }
        if let Seeding::Random { .. } = seeding {
            // A feed answers an announce with members the asker may not know; with partial views every
            // feed grows the views (and re-gossips each new member) until they are full, which foca's
            // linear member scans make quadratic. Partial-view runs therefore turn push-pull off.
            plan.config.push_pull_interval = PUSH_PULL_OFF;
            plan.config.gossip_to_the_dead_interval = PUSH_PULL_OFF;
        }
        let figures = run(&plan);
        print!("{}", report(&plan, &figures));
    }
    ExitCode::SUCCESS
}

fn secs(ms: Option<u64>) -> String {
    ms.map_or("never".to_string(), |ms| format!("{:.2} s", ms as f64 / 1000.0))
}

/// The printed block for one run.
pub fn report(plan: &Plan, f: &Figures) -> String {
    let c = &plan.config;
    let interval_secs = c.gossip_interval.as_secs_f64();
    let serf = |fraction| serf_model_secs(plan.nodes, c.gossip_nodes.get(), interval_secs, plan.net.loss, fraction);
    let seeding = match plan.seeding {
        Seeding::Full => "full".to_string(),
        Seeding::Random { degree } => format!("random-{degree}"),
    };
    let live = plan.nodes - 1;
    let mut out = String::new();
    out += &format!(
        "gossip-model nodes={} loss={} latency={}-{}ms seed={} view={} window={}s\n",
        plan.nodes,
        plan.net.loss,
        plan.net.latency_ms_min,
        plan.net.latency_ms_max,
        plan.seed,
        seeding,
        plan.window_ms / 1000
    );
    out += &format!(
        "  dissemination (user event): 50% {}  99% {}  99.99% {}  100% {}  ({} of {} live nodes)\n",
        secs(f.dissemination_ms[0]),
        secs(f.dissemination_ms[1]),
        secs(f.dissemination_ms[2]),
        secs(f.dissemination_ms[3]),
        f.event_receivers,
        live
    );
    out += &format!(
        "  serf model (fanout {}, {:.0} ms):  50% {:.2} s  99% {:.2} s  99.99% {:.2} s\n",
        c.gossip_nodes,
        interval_secs * 1000.0,
        serf(0.5),
        serf(0.99),
        serf(0.9999)
    );
    out += &format!(
        "  failure detection after the kill: first {}  median {}  all {}  ({} of {} nodes that knew it; suspicion timeout {:.1} s)\n",
        secs(f.detection_ms[0]),
        secs(f.detection_ms[1]),
        secs(f.detection_ms[2]),
        f.victim_detectors,
        f.victim_knowers,
        c.suspicion_timeout(plan.nodes).as_secs_f64()
    );
    out += &format!(
        "  false positives in {} s: {} failure declarations about {} live nodes; {} forced rejoins\n",
        plan.window_ms / 1000,
        f.false_failures,
        f.falsely_failed_nodes,
        f.self_rejoins
    );
    out += &format!(
        "  packets: {} sent, {} lost; largest view {} members; wall {:.1} s\n",
        f.packets_sent, f.packets_lost, f.view_len_max, f.wall_secs
    );
    out
}
