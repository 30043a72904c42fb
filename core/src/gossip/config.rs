//! Gossip timings: Consul's LAN and WAN profiles (memberlist's `DefaultLANConfig` / `DefaultWANConfig`, as
//! listed in Consul's `gossip_lan`/`gossip_wan` options), and their translation into foca's config.
//!
//! What foca 2.0 lacks compared with memberlist + Lifeguard, so Conclave does not have it either:
//! - no dynamic suspicion (Lifeguard §4.2): the suspicion timeout is fixed at
//!   `suspicion_mult × max(1, log10(n)) × probe_interval` (memberlist's formula for the *minimum* timeout)
//!   and does not shrink as independent suspicions arrive; it is recomputed as the cluster grows;
//! - no local health awareness / NACKs (Lifeguard §4.1): the probe interval does not stretch when this node
//!   misses acks;
//! - no TCP push-pull state sync: the closest is foca's periodic announce (an `Announce` to a random member,
//!   answered with a `Feed` of active members) every `push_pull_interval`, plus periodic announces to down
//!   members (memberlist's "gossip to the dead"), which is what lets a healed partition converge.

use std::num::{NonZeroU32, NonZeroU8, NonZeroUsize};
use std::time::Duration;

/// Largest gossip packet sent or accepted: memberlist's UDP buffer (1400 bytes keeps it under a 1500 MTU).
pub const PACKET_BYTES_MAX: usize = 1400;

/// Timings and limits of one gossip pool. Use [`GossipConfig::lan`] or [`GossipConfig::wan`] and adjust.
#[derive(Debug, Clone, PartialEq)]
pub struct GossipConfig {
    /// Time between failure probes of one random member (memberlist `ProbeInterval`).
    pub probe_interval: Duration,
    /// How long to wait for a direct ack before asking others to probe (memberlist `ProbeTimeout`).
    pub probe_timeout: Duration,
    /// Members asked to probe indirectly (memberlist `IndirectChecks`).
    pub indirect_checks: NonZeroUsize,
    /// Suspicion timeout multiplier (memberlist `SuspicionMult`).
    pub suspicion_mult: u32,
    /// Time between gossip rounds (memberlist `GossipInterval`).
    pub gossip_interval: Duration,
    /// Members gossiped to per round (memberlist `GossipNodes`, the fanout).
    pub gossip_nodes: NonZeroUsize,
    /// Retransmissions of each update: `retransmit_mult × ceil(log10(n + 1))` (memberlist `RetransmitMult`).
    pub retransmit_mult: u32,
    /// Period of the announce/feed exchange with a random member (memberlist `PushPullInterval`).
    pub push_pull_interval: Duration,
    /// Period of announces to members believed down, so healed partitions merge
    /// (memberlist `GossipToTheDeadTime`).
    pub gossip_to_the_dead_interval: Duration,
    /// How long a failed or left member stays in the member list (Consul's `reconnect_timeout`, 72 h).
    pub reap_after: Duration,
    /// Largest packet sent or accepted.
    pub packet_bytes_max: usize,
}

impl GossipConfig {
    /// Consul's LAN pool (`gossip_lan`): probe 1 s / 500 ms, suspicion ×4, gossip 200 ms to 3, push-pull 30 s.
    pub fn lan() -> GossipConfig {
        GossipConfig {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            indirect_checks: NonZeroUsize::new(3).expect("3 > 0"),
            suspicion_mult: 4,
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: NonZeroUsize::new(3).expect("3 > 0"),
            retransmit_mult: 4,
            push_pull_interval: Duration::from_secs(30),
            gossip_to_the_dead_interval: Duration::from_secs(30),
            reap_after: Duration::from_secs(72 * 3600),
            packet_bytes_max: PACKET_BYTES_MAX,
        }
    }

    /// Consul's WAN pool (`gossip_wan`): probe 5 s / 3 s, suspicion ×6, gossip 500 ms to 4, push-pull 60 s.
    pub fn wan() -> GossipConfig {
        GossipConfig {
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(3),
            suspicion_mult: 6,
            gossip_interval: Duration::from_millis(500),
            gossip_nodes: NonZeroUsize::new(4).expect("4 > 0"),
            push_pull_interval: Duration::from_secs(60),
            gossip_to_the_dead_interval: Duration::from_secs(60),
            ..GossipConfig::lan()
        }
    }

    /// Checks the relations foca relies on (a probe must time out before the next one starts).
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.probe_timeout >= self.probe_interval {
            return Err("probe_timeout must be shorter than probe_interval");
        }
        if self.suspicion_mult == 0 || self.retransmit_mult == 0 {
            return Err("suspicion_mult and retransmit_mult must be positive");
        }
        if self.gossip_interval.is_zero() || self.push_pull_interval.is_zero() {
            return Err("gossip_interval and push_pull_interval must be positive");
        }
        if self.packet_bytes_max < 512 || self.packet_bytes_max > u16::MAX as usize {
            return Err("packet_bytes_max must be within 512..=65535");
        }
        Ok(())
    }

    /// Suspicion timeout for a cluster of `members` (memberlist `suspicionTimeout`).
    pub fn suspicion_timeout(&self, members: usize) -> Duration {
        let node_scale = (members.max(1) as f64).log10().max(1.0);
        self.probe_interval.mul_f64(node_scale * f64::from(self.suspicion_mult))
    }

    /// Transmissions of each update for a cluster of `members` (memberlist `retransmitLimit`).
    pub fn transmissions(&self, members: usize) -> u8 {
        let node_scale = ((members + 1) as f64).log10().ceil().max(1.0) as u32;
        u8::try_from(self.retransmit_mult.saturating_mul(node_scale)).unwrap_or(u8::MAX).max(1)
    }

    /// foca's config for a cluster of `members`.
    pub(crate) fn to_foca(&self, members: usize) -> foca::Config {
        let periodic = |frequency: Duration, num_members: usize| foca::PeriodicParams {
            frequency,
            num_members: NonZeroUsize::new(num_members).expect("positive"),
        };
        let mut config = foca::Config::new_lan(NonZeroU32::new(members.max(1) as u32).expect("positive"));
        config.probe_period = self.probe_interval;
        config.probe_rtt = self.probe_timeout;
        config.num_indirect_probes = self.indirect_checks;
        config.max_transmissions = NonZeroU8::new(self.transmissions(members)).expect("at least 1");
        config.suspect_to_down_after = self.suspicion_timeout(members);
        config.remove_down_after = Some(self.reap_after);
        config.max_packet_size = NonZeroUsize::new(self.packet_bytes_max).expect("validated");
        config.notify_down_members = true;
        config.periodic_gossip = Some(periodic(self.gossip_interval, self.gossip_nodes.get()));
        config.periodic_announce = Some(periodic(self.push_pull_interval, 1));
        config.periodic_announce_to_down_members = Some(periodic(self.gossip_to_the_dead_interval, 1));
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_and_wan_profiles_validate() {
        assert_eq!(GossipConfig::lan().validate(), Ok(()));
        assert_eq!(GossipConfig::wan().validate(), Ok(()));
    }

    #[test]
    fn suspicion_timeout_scales_with_log10_of_cluster_size() {
        let lan = GossipConfig::lan();
        assert_eq!(lan.suspicion_timeout(3), Duration::from_secs(4));
        assert_eq!(lan.suspicion_timeout(100), Duration::from_secs(8));
        assert_eq!(lan.suspicion_timeout(10_000), Duration::from_secs(16));
        assert_eq!(lan.transmissions(3), 4);
        assert_eq!(lan.transmissions(1_000), 16);
    }
}
