//! The experiments, one run per loss level on a fresh cluster:
//! 1. after `warmup_ms`, node 0 sends a user event; record when each live node first has it;
//! 2. `kill_after_ms` later the last node stops (no packets in or out); record when each node that had it
//!    alive declares it failed;
//! 3. from the event until `window_ms` after it, count failure declarations about nodes that are alive
//!    (false positives).
//!
//! And serf's analytic convergence model, for comparison (serf `website/source/assets/javascripts/_simulator.js`).

use std::time::Instant;

use conclave_core::gossip::{GossipConfig, MemberEvent, MemberStatus};

use super::event_loop::{index_of, name_of, Model, NetParams, Seeding};

/// What one run measures.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub nodes: usize,
    pub net: NetParams,
    pub seeding: Seeding,
    pub config: GossipConfig,
    pub seed: u64,
    /// Time for the cluster to settle before the event.
    pub warmup_ms: u64,
    /// Time from the event to the kill (dissemination is over by then).
    pub kill_after_ms: u64,
    /// Length of the false-positive window, from the event on.
    pub window_ms: u64,
}

impl Plan {
    /// Consul's LAN timings, 1–5 ms latency, 5 s warm-up, kill 10 s after the event, 60 s window.
    pub fn lan(nodes: usize, loss: f64, seed: u64) -> Plan {
        Plan {
            nodes,
            net: NetParams { loss, latency_ms_min: 1, latency_ms_max: 5 },
            seeding: Seeding::Full,
            config: GossipConfig::lan(),
            seed,
            warmup_ms: 5_000,
            kill_after_ms: 10_000,
            window_ms: 60_000,
        }
    }
}

/// What one run found. Times are milliseconds after the event (dissemination) or the kill (detection).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Figures {
    /// Time for 50%, 99%, 99.99% and 100% of live nodes to have the user event (`None`: never reached).
    pub dissemination_ms: [Option<u64>; 4],
    pub event_receivers: usize,
    /// Nodes (other than the victim) that had the victim alive when it was killed.
    pub victim_knowers: usize,
    /// Of those, how many declared it failed before the end.
    pub victim_detectors: usize,
    /// First, median and last of the knowers to declare the victim failed.
    pub detection_ms: [Option<u64>; 3],
    /// Failure declarations about live nodes during the window, and how many distinct live nodes they named.
    pub false_failures: u64,
    pub falsely_failed_nodes: usize,
    /// Nodes that found themselves declared down and rejoined under a new generation.
    pub self_rejoins: u64,
    /// Largest view (members known, alive or not, this node included) at the end, for partial seeding.
    pub view_len_max: usize,
    pub packets_sent: u64,
    pub packets_lost: u64,
    pub wall_secs: f64,
}

/// Fraction thresholds reported for dissemination.
pub const DISSEMINATION_FRACTIONS: [f64; 4] = [0.5, 0.99, 0.9999, 1.0];

/// Runs `plan` once.
pub fn run(plan: &Plan) -> Figures {
    let started = Instant::now();
    let n = plan.nodes;
    let victim = n - 1;
    let event_at_ms = plan.warmup_ms;
    let kill_at_ms = event_at_ms + plan.kill_after_ms;
    let end_ms = event_at_ms + plan.window_ms.max(plan.kill_after_ms + 1);

    let mut model = Model::new(n, &plan.config, plan.seeding, plan.net, plan.seed);
    let mut received_ms: Vec<Option<u64>> = vec![None; n];
    let mut failed_ms: Vec<Option<u64>> = vec![None; n];
    let mut false_failures = 0u64;
    let mut falsely_failed = std::collections::BTreeSet::new();
    let mut self_rejoins = 0u64;
    let mut observe = |now_ms: u64, node: usize, event: &MemberEvent| match event {
        MemberEvent::User(_) => {
            received_ms[node].get_or_insert(now_ms);
        }
        MemberEvent::MemberFailed(member) => {
            let subject = index_of(member.addr).expect("model address");
            if subject == victim && now_ms >= kill_at_ms {
                failed_ms[node].get_or_insert(now_ms);
            } else if now_ms >= event_at_ms {
                false_failures += 1;
                falsely_failed.insert(subject);
            }
        }
        MemberEvent::SelfRejoined { .. } if now_ms >= event_at_ms => self_rejoins += 1,
        _ => {}
    };

    model.run_until(event_at_ms, &mut observe);
    model.command(0, &mut observe, |node, now_ms| {
        node.user_event(conclave_core::gossip::UserEvent::named("model", b""), now_ms).expect("user event")
    });
    model.run_until(kill_at_ms, &mut observe);
    let knowers: Vec<usize> = (0..n)
        .filter(|i| *i != victim && model.up[*i])
        .filter(|i| model.nodes[*i].member(&name_of(victim)).is_some_and(|m| m.status == MemberStatus::Alive))
        .collect();
    model.up[victim] = false;
    model.run_until(end_ms, &mut observe);

    let live: Vec<usize> = (0..n).filter(|i| *i != victim).collect();
    let mut receive_times: Vec<u64> = live.iter().filter_map(|i| received_ms[*i]).map(|t| t - event_at_ms).collect();
    receive_times.sort_unstable();
    let dissemination_ms = DISSEMINATION_FRACTIONS.map(|fraction| {
        let needed = ((fraction * live.len() as f64).ceil() as usize).max(1);
        receive_times.get(needed - 1).copied()
    });
    let mut detect_times: Vec<u64> = knowers.iter().filter_map(|i| failed_ms[*i]).map(|t| t - kill_at_ms).collect();
    detect_times.sort_unstable();
    let all_detected = detect_times.len() == knowers.len();
    let detection_ms = [
        detect_times.first().copied(),
        detect_times.get(knowers.len() / 2).copied(),
        if all_detected { detect_times.last().copied() } else { None },
    ];
    Figures {
        dissemination_ms,
        event_receivers: receive_times.len(),
        victim_knowers: knowers.len(),
        victim_detectors: detect_times.len(),
        detection_ms,
        false_failures,
        falsely_failed_nodes: falsely_failed.len(),
        self_rejoins,
        view_len_max: model.nodes.iter().map(|m| m.members().count()).max().unwrap_or(0),
        packets_sent: model.stats.packets_sent,
        packets_lost: model.stats.packets_lost,
        wall_secs: started.elapsed().as_secs_f64(),
    }
}

/// serf's convergence model: seconds until `fraction` of `nodes` have a message, with `fanout` targets per
/// `interval_secs` round and `loss` packet loss. Fraction after `x` rounds is `1 / (1 + (n+1)·e^(−c·n·x))`
/// with `c = (fanout/n)·(1−loss)·0.5`; the page counts whole rounds.
pub fn serf_model_secs(nodes: usize, fanout: usize, interval_secs: f64, loss: f64, fraction: f64) -> f64 {
    assert!(fraction > 0.0 && fraction < 1.0, "the model never reaches 100%");
    let n = nodes as f64;
    let cn = fanout as f64 * (1.0 - loss) * 0.5;
    let rounds = ((n + 1.0) / (1.0 / fraction - 1.0)).ln() / cn;
    rounds.max(0.0).ceil() * interval_secs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serf_model_matches_the_published_figures() {
        // consul-api.md: 10,000 nodes → 99.99% at 2.6 s; 1,000 → 2.2 s; 30 nodes at 10% loss → 2.0 s.
        assert!((serf_model_secs(10_000, 3, 0.2, 0.0, 0.9999) - 2.6).abs() < 1e-9);
        assert!((serf_model_secs(1_000, 3, 0.2, 0.0, 0.9999) - 2.2).abs() < 1e-9);
        assert!((serf_model_secs(30, 3, 0.2, 0.1, 0.9999) - 2.0).abs() < 1e-9);
    }
}
