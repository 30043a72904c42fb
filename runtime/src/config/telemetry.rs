//! The `telemetry {}` block: where the agent's metrics go and how they are named, checked as Consul
//! checks it. The in-memory sink behind `/v1/agent/metrics` is always on; `prometheus_retention_time`
//! turns on `?format=prometheus` (off until set, as in Consul); `statsd_address` and `dogstatsd_addr`
//! push over UDP. Sinks Conclave does not have (Circonus, statsite) and the Enterprise keys are refused by
//! name rather than ignored.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::{boolean, problem, string};

/// What the block sets; `None` where the files leave a key out.
#[derive(Clone, Debug, Default)]
pub struct TelemetryFileConfig {
    pub disable_hostname: Option<bool>,
    pub metrics_prefix: Option<String>,
    pub prometheus_retention_time: Option<Duration>,
    pub statsd_address: Option<String>,
    pub dogstatsd_addr: Option<String>,
    pub dogstatsd_tags: Option<Vec<String>>,
    pub filter_default: Option<bool>,
    pub prefix_filter: Option<Vec<String>>,
    pub disable_compat_1_9: Option<bool>,
}

/// The resolved settings the node's telemetry is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelemetrySettings {
    /// Gauges are named `<prefix>.<hostname>.…` unless this is set (go-metrics' `EnableHostname`).
    pub disable_hostname: bool,
    /// The machine's host name, for gauge names.
    pub hostname: String,
    /// First part of every metric name (`consul`).
    pub metrics_prefix: String,
    /// How long Prometheus output keeps a metric that stopped changing; zero: Prometheus output off.
    pub prometheus_retention: Duration,
    /// `host:port` of a statsd server (UDP).
    pub statsd_address: Option<String>,
    /// `host:port` of a DogStatsD server (UDP), with the tags every metric carries.
    pub dogstatsd_addr: Option<String>,
    pub dogstatsd_tags: Vec<String>,
    /// Whether a metric no `prefix_filter` rule names is kept.
    pub filter_default: bool,
    /// `+prefix` keeps, `-prefix` drops; the longest matching prefix decides.
    pub prefix_filter: Vec<String>,
    /// When false, HTTP latencies are also emitted under the pre-1.9 names `http.<METHOD>.<path>` (true by
    /// default, as since Consul 1.12).
    pub disable_compat_1_9: bool,
}

impl Default for TelemetrySettings {
    fn default() -> TelemetrySettings {
        TelemetrySettings {
            disable_hostname: false,
            hostname: "localhost".to_string(),
            metrics_prefix: "consul".to_string(),
            prometheus_retention: Duration::ZERO,
            statsd_address: None,
            dogstatsd_addr: None,
            dogstatsd_tags: Vec::new(),
            filter_default: true,
            prefix_filter: Vec::new(),
            disable_compat_1_9: true,
        }
    }
}

/// Resolves the block; `hostname` is the machine's (the CLI reads it, the simulator names its hosts).
pub fn settings(file: &TelemetryFileConfig, hostname: String) -> TelemetrySettings {
    let defaults = TelemetrySettings::default();
    TelemetrySettings {
        disable_hostname: file.disable_hostname.unwrap_or(defaults.disable_hostname),
        hostname,
        metrics_prefix: file.metrics_prefix.clone().unwrap_or(defaults.metrics_prefix),
        prometheus_retention: file.prometheus_retention_time.unwrap_or_default(),
        statsd_address: file.statsd_address.clone().filter(|a| !a.is_empty()),
        dogstatsd_addr: file.dogstatsd_addr.clone().filter(|a| !a.is_empty()),
        dogstatsd_tags: file.dogstatsd_tags.clone().unwrap_or_default(),
        filter_default: file.filter_default.unwrap_or(defaults.filter_default),
        prefix_filter: file.prefix_filter.clone().unwrap_or_default(),
        disable_compat_1_9: file.disable_compat_1_9.unwrap_or(defaults.disable_compat_1_9),
    }
}

fn strings(file: &Path, key: &str, value: &Value) -> Result<Vec<String>, String> {
    let items = value.as_array().ok_or_else(|| problem(file, key, "expected a list of strings"))?;
    items.iter().map(|item| string(file, key, item)).collect()
}

/// A UDP sink address: `host:port`.
fn sink_address(file: &Path, key: &str, value: &Value) -> Result<String, String> {
    let text = string(file, key, value)?;
    if !text.is_empty() && text.rsplit_once(':').and_then(|(_, port)| port.parse::<u16>().ok()).is_none() {
        return Err(problem(file, key, format!("{text:?} is not host:port")));
    }
    Ok(text)
}

/// Applies the `telemetry` block.
pub fn apply_block(config: &mut TelemetryFileConfig, file: &Path, value: &Value) -> Result<(), String> {
    let map = value.as_object().ok_or_else(|| problem(file, "telemetry", "expected an object"))?;
    for (name, value) in map {
        let full = format!("telemetry.{name}");
        match name.as_str() {
            "disable_hostname" => config.disable_hostname = Some(boolean(file, &full, value)?),
            "metrics_prefix" => config.metrics_prefix = Some(string(file, &full, value)?.trim_end_matches('.').into()),
            "prometheus_retention_time" => {
                let text = string(file, &full, value)?;
                let retention = conclave_core::api::parse_go_duration(&text).map_err(|e| problem(file, &full, e))?;
                config.prometheus_retention_time = Some(retention);
            }
            "statsd_address" => config.statsd_address = Some(sink_address(file, &full, value)?),
            "dogstatsd_addr" => config.dogstatsd_addr = Some(sink_address(file, &full, value)?),
            "dogstatsd_tags" => config.dogstatsd_tags = Some(strings(file, &full, value)?),
            "filter_default" => config.filter_default = Some(boolean(file, &full, value)?),
            "prefix_filter" => {
                let rules = strings(file, &full, value)?;
                if let Some(bad) = rules.iter().find(|r| !(r.starts_with('+') || r.starts_with('-')) || r.len() < 2) {
                    return Err(problem(file, &full, format!("{bad:?}: a rule is +prefix or -prefix")));
                }
                config.prefix_filter = Some(rules);
            }
            "disable_compat_1.9" => config.disable_compat_1_9 = Some(boolean(file, &full, value)?),
            // UDP sinks have no connection to fail: retrying is what they do.
            "retry_failed_connection" => {
                if !boolean(file, &full, value)? {
                    return Err(problem(file, &full, "false is not supported: the UDP sinks never fail to connect"));
                }
            }
            // Host metrics, Circonus and statsite are sinks Conclave does not have.
            _ if super::is_off(value) => {}
            _ => return Err(problem(file, &full, "is not supported by Conclave")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<TelemetryFileConfig, String> {
        let mut config = TelemetryFileConfig::default();
        apply_block(&mut config, Path::new("t.json"), &serde_json::from_str(json).unwrap())?;
        Ok(config)
    }

    #[test]
    fn the_block_resolves_with_consuls_defaults() {
        let defaults = settings(&parse("{}").unwrap(), "h".into());
        assert_eq!(defaults.metrics_prefix, "consul");
        assert!(defaults.prometheus_retention.is_zero() && defaults.filter_default && !defaults.disable_hostname);
        let file = parse(
            r#"{"disable_hostname":true,"metrics_prefix":"svc.","prometheus_retention_time":"60s",
                "statsd_address":"127.0.0.1:8125","dogstatsd_addr":"127.0.0.1:8126","dogstatsd_tags":["env:x"],
                "filter_default":false,"prefix_filter":["+consul.raft","-consul.http"],"disable_compat_1.9":false}"#,
        )
        .unwrap();
        let s = settings(&file, "h".into());
        assert!(s.disable_hostname && !s.filter_default && !s.disable_compat_1_9);
        assert_eq!(s.metrics_prefix, "svc");
        assert_eq!(s.prometheus_retention, Duration::from_secs(60));
        assert_eq!(s.statsd_address.as_deref(), Some("127.0.0.1:8125"));
        assert_eq!(s.dogstatsd_tags, vec!["env:x".to_string()]);
        assert_eq!(s.prefix_filter.len(), 2);
    }

    #[test]
    fn sinks_conclave_lacks_and_bad_values_are_refused_by_name() {
        for (json, named) in [
            (r#"{"circonus_api_token":"x"}"#, "telemetry.circonus_api_token"),
            (r#"{"statsite_address":"127.0.0.1:8125"}"#, "telemetry.statsite_address"),
            (r#"{"enable_host_metrics":true}"#, "telemetry.enable_host_metrics"),
            (r#"{"statsd_address":"nohost"}"#, "telemetry.statsd_address"),
            (r#"{"prefix_filter":["consul.raft"]}"#, "telemetry.prefix_filter"),
            (r#"{"prometheus_retention_time":"soon"}"#, "telemetry.prometheus_retention_time"),
            (r#"{"retry_failed_connection":false}"#, "telemetry.retry_failed_connection"),
        ] {
            let error = parse(json).unwrap_err();
            assert!(error.contains(named), "{json}: {error}");
        }
        assert!(parse(r#"{"circonus_api_token":"","enable_host_metrics":false}"#).is_ok());
    }
}
