//! DNS settings: the agent's domain and datacenter and Consul's `dns_config` block, with Consul's defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Consul's `dns_config.soa` block; TTLs and intervals in seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoaConfig {
    pub refresh_s: u32,
    pub retry_s: u32,
    pub expire_s: u32,
    /// Also the TTL of the SOA record and of negative answers (RFC 2308).
    pub min_ttl_s: u32,
}

impl Default for SoaConfig {
    fn default() -> Self {
        SoaConfig { refresh_s: 3600, retry_s: 600, expire_s: 86400, min_ttl_s: 0 }
    }
}

/// How the DNS interface answers. Serializable: a client agent sends it along with a query it forwards to
/// a server, so the answer follows the client's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsConfig {
    /// `-domain`, such as `consul.` (case and the trailing dot do not matter).
    pub domain: String,
    /// Our datacenter: `.service.<dc>.` and `.node.<dc>.` name it or another one (NXDOMAIN, no WAN yet).
    pub datacenter: String,
    /// `dns_config.node_ttl`: TTL of node answers.
    pub node_ttl_s: u32,
    /// `dns_config.service_ttl`: TTL by service name; `"*"` for every service, `"prefix*"` for a prefix.
    pub service_ttl_s: BTreeMap<String, u32>,
    /// `dns_config.only_passing`: leave out instances with a warning check too, not only critical ones.
    pub only_passing: bool,
    /// `dns_config.udp_answer_limit`: answers in a non-EDNS UDP reply (at most [`super::UDP_ANSWERS_MAX`]).
    pub udp_answer_limit: usize,
    /// `dns_config.enable_truncate`: set TC when a UDP reply had to leave answers out.
    pub enable_truncate: bool,
    /// `dns_config.allow_stale` and `max_stale`: accepted; answers always come from the local catalog copy.
    pub allow_stale: bool,
    pub max_stale_ms: u64,
    /// Recursors are configured: names outside the domain are forwarded instead of REFUSED, and RA is set.
    pub recursion_available: bool,
    pub soa: SoaConfig,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            domain: "consul.".to_string(),
            datacenter: "dc1".to_string(),
            node_ttl_s: 0,
            service_ttl_s: BTreeMap::new(),
            only_passing: false,
            udp_answer_limit: 3,
            enable_truncate: false,
            allow_stale: true,
            max_stale_ms: 87600 * 3600 * 1000,
            recursion_available: false,
            soa: SoaConfig::default(),
        }
    }
}

impl DnsConfig {
    /// The domain's labels, lower case, without the root: `["consul"]`.
    pub fn domain_labels(&self) -> Vec<String> {
        self.domain.split('.').filter(|l| !l.is_empty()).map(|l| l.to_ascii_lowercase()).collect()
    }

    /// The domain as an absolute name, lower case: `consul.`.
    pub fn domain_fqdn(&self) -> String {
        let mut out = self.domain_labels().join(".");
        out.push('.');
        out
    }

    /// The TTL of a service's answers: its own entry, else the longest matching `prefix*`, else `*`, else 0.
    pub fn service_ttl_s(&self, service: &str) -> u32 {
        if let Some(ttl) = self.service_ttl_s.get(service) {
            return *ttl;
        }
        self.service_ttl_s
            .iter()
            .filter_map(|(pattern, ttl)| {
                let prefix = pattern.strip_suffix('*')?;
                service.starts_with(prefix).then_some((prefix.len(), *ttl))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, ttl)| ttl)
            .unwrap_or(0)
    }
}
