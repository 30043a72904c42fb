//! The DNS keys of agent configuration files — `recursors` and the `dns_config` block, with Consul's
//! names and defaults — and how they and the `-recursor` flags become the node's [`DnsSettings`].

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use conclave_core::api::parse_go_duration;
use conclave_core::dns::DnsConfig;
use serde_json::Value;

use super::{boolean, number, problem, string};

/// The agent's DNS settings: `recursors`/`-recursor`, `dns_config.recursor_timeout` and the rest of
/// `dns_config` (domain and datacenter are filled in from the node's config at start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsSettings {
    pub recursors: Vec<SocketAddr>,
    /// How long one recursor may take before the next is tried (Consul's default is 2 s).
    pub recursor_timeout: Duration,
    pub config: DnsConfig,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings { recursors: Vec::new(), recursor_timeout: Duration::from_secs(2), config: DnsConfig::default() }
    }
}

/// DNS settings read from files; durations already checked, `None` where no file set them.
#[derive(Clone, Debug, Default)]
pub struct DnsFileConfig {
    /// `recursors`: addresses as written (`1.1.1.1` or `1.1.1.1:53`).
    pub recursors: Vec<String>,
    pub allow_stale: Option<bool>,
    pub max_stale: Option<Duration>,
    pub node_ttl: Option<Duration>,
    /// `service_ttl`: service name (or `*`, or `prefix*`) → TTL.
    pub service_ttl: Vec<(String, Duration)>,
    pub only_passing: Option<bool>,
    pub udp_answer_limit: Option<usize>,
    pub enable_truncate: Option<bool>,
    pub recursor_timeout: Option<Duration>,
    pub soa_refresh_s: Option<u32>,
    pub soa_retry_s: Option<u32>,
    pub soa_expire_s: Option<u32>,
    pub soa_min_ttl_s: Option<u32>,
}

fn duration(file: &Path, key: &str, value: &Value) -> Result<Duration, String> {
    let text = string(file, key, value)?;
    parse_go_duration(&text).map_err(|e| problem(file, key, e.message))
}

/// `recursors = ["1.1.1.1", "8.8.8.8:53"]` (a single string is accepted too).
pub fn apply_recursors(dns: &mut DnsFileConfig, file: &Path, value: &Value) -> Result<(), String> {
    let items = match value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    for item in &items {
        let text = string(file, "recursors", item)?;
        recursor_addr(&text).map_err(|e| problem(file, "recursors", e))?;
        dns.recursors.push(text);
    }
    Ok(())
}

/// The `dns_config` block.
pub fn apply_dns_config(dns: &mut DnsFileConfig, file: &Path, value: &Value) -> Result<(), String> {
    let map = value.as_object().ok_or_else(|| problem(file, "dns_config", "expected an object"))?;
    for (key, value) in map {
        let path = format!("dns_config.{key}");
        let path = path.as_str();
        match key.as_str() {
            "allow_stale" => dns.allow_stale = Some(boolean(file, path, value)?),
            "max_stale" => dns.max_stale = Some(duration(file, path, value)?),
            "node_ttl" => dns.node_ttl = Some(duration(file, path, value)?),
            "service_ttl" => {
                let ttls = value.as_object().ok_or_else(|| problem(file, path, "expected an object"))?;
                for (service, ttl) in ttls {
                    dns.service_ttl.push((service.clone(), duration(file, &format!("{path}.{service}"), ttl)?));
                }
            }
            "only_passing" => dns.only_passing = Some(boolean(file, path, value)?),
            "udp_answer_limit" => {
                let limit: usize = number(file, path, value)?;
                if limit == 0 {
                    return Err(problem(file, path, "must be greater than 0"));
                }
                dns.udp_answer_limit = Some(limit);
            }
            "enable_truncate" => dns.enable_truncate = Some(boolean(file, path, value)?),
            "recursor_timeout" => dns.recursor_timeout = Some(duration(file, path, value)?),
            "soa" => {
                let soa = value.as_object().ok_or_else(|| problem(file, path, "expected an object"))?;
                for (field, value) in soa {
                    let n = Some(number::<u32>(file, &format!("{path}.{field}"), value)?);
                    match field.as_str() {
                        "refresh" => dns.soa_refresh_s = n,
                        "retry" => dns.soa_retry_s = n,
                        "expire" => dns.soa_expire_s = n,
                        "min_ttl" => dns.soa_min_ttl_s = n,
                        other => return Err(problem(file, &format!("{path}.{other}"), "unknown SOA field")),
                    }
                }
            }
            // Accepted for compatibility with Consul configs; Conclave's DNS does not use them.
            "enable_additional_node_meta_txt"
            | "a_record_limit"
            | "disable_compression"
            | "use_cache"
            | "cache_max_age"
            | "prefer_namespace"
            | "recursor_strategy" => {}
            other => return Err(problem(file, &format!("dns_config.{other}"), "unknown DNS setting")),
        }
    }
    Ok(())
}

/// A recursor address: an IP with an optional port (53 by default).
pub fn recursor_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let ip: IpAddr = text
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| format!("invalid recursor address {text:?} (expected an IP, optionally with a port)"))?;
    Ok(SocketAddr::new(ip, 53))
}

fn seconds(duration: Duration) -> u32 {
    u32::try_from(duration.as_secs()).unwrap_or(u32::MAX)
}

/// The node's DNS settings from the files and the `-recursor` flags (flags first, as Consul merges them).
pub fn settings(file: &DnsFileConfig, flag_recursors: &[String]) -> Result<DnsSettings, String> {
    let mut out = DnsSettings::default();
    for text in flag_recursors.iter().chain(&file.recursors) {
        out.recursors.push(recursor_addr(text)?);
    }
    if let Some(timeout) = file.recursor_timeout {
        out.recursor_timeout = timeout;
    }
    let config = &mut out.config;
    config.allow_stale = file.allow_stale.unwrap_or(config.allow_stale);
    if let Some(max_stale) = file.max_stale {
        config.max_stale_ms = max_stale.as_millis() as u64;
    }
    if let Some(ttl) = file.node_ttl {
        config.node_ttl_s = seconds(ttl);
    }
    for (service, ttl) in &file.service_ttl {
        config.service_ttl_s.insert(service.clone(), seconds(*ttl));
    }
    config.only_passing = file.only_passing.unwrap_or(config.only_passing);
    config.udp_answer_limit = file.udp_answer_limit.unwrap_or(config.udp_answer_limit);
    config.enable_truncate = file.enable_truncate.unwrap_or(config.enable_truncate);
    let soa = &mut config.soa;
    soa.refresh_s = file.soa_refresh_s.unwrap_or(soa.refresh_s);
    soa.retry_s = file.soa_retry_s.unwrap_or(soa.retry_s);
    soa.expire_s = file.soa_expire_s.unwrap_or(soa.expire_s);
    soa.min_ttl_s = file.soa_min_ttl_s.unwrap_or(soa.min_ttl_s);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_config_text;

    #[test]
    fn dns_config_in_json_and_hcl_gives_the_same_settings() {
        let json = r#"{"recursors": ["127.0.0.1:5353", "8.8.8.8"],
            "dns_config": {"only_passing": true, "node_ttl": "10s", "service_ttl": {"*": "5s", "web": "30s"},
                           "udp_answer_limit": 5, "enable_truncate": true, "allow_stale": true, "max_stale": "87600h",
                           "soa": {"min_ttl": 7}}}"#;
        let hcl = r#"
recursors = ["127.0.0.1:5353", "8.8.8.8"]
dns_config {
  only_passing = true
  node_ttl = "10s"
  service_ttl = { "*" = "5s", "web" = "30s" }
  udp_answer_limit = 5
  enable_truncate = true
  allow_stale = true
  max_stale = "87600h"
  soa { min_ttl = 7 }
}
"#;
        let from_json = parse_config_text(Path::new("a.json"), json).unwrap();
        let from_hcl = parse_config_text(Path::new("a.hcl"), hcl).unwrap();
        let a = settings(&from_json.dns, &[]).unwrap();
        let b = settings(&from_hcl.dns, &[]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.recursors, ["127.0.0.1:5353".parse().unwrap(), "8.8.8.8:53".parse().unwrap()]);
        assert!(a.config.only_passing && a.config.enable_truncate);
        assert_eq!((a.config.node_ttl_s, a.config.service_ttl_s("web"), a.config.service_ttl_s("db")), (10, 30, 5));
        assert_eq!((a.config.udp_answer_limit, a.config.soa.min_ttl_s), (5, 7));
    }

    #[test]
    fn defaults_are_consuls() {
        let s = settings(&DnsFileConfig::default(), &[]).unwrap();
        assert!(s.recursors.is_empty());
        assert_eq!(s.recursor_timeout, Duration::from_secs(2));
        assert_eq!(s.config, conclave_core::dns::DnsConfig::default());
        assert_eq!(s.config.udp_answer_limit, 3);
        assert!(s.config.allow_stale && !s.config.enable_truncate && !s.config.only_passing);
    }

    #[test]
    fn bad_dns_settings_name_the_key() {
        let error = parse_config_text(Path::new("x.json"), r#"{"dns_config": {"node_ttl": "soon"}}"#).unwrap_err();
        assert!(error.contains("dns_config.node_ttl"), "{error}");
        let error = parse_config_text(Path::new("x.json"), r#"{"dns_config": {"udp_answer_limit": 0}}"#).unwrap_err();
        assert!(error.contains("udp_answer_limit"), "{error}");
        let error = parse_config_text(Path::new("x.json"), r#"{"recursors": ["not an ip"]}"#).unwrap_err();
        assert!(error.contains("recursors"), "{error}");
    }
}
