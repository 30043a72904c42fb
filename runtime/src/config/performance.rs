//! `performance {}`, `raft_protocol`, `primary_datacenter` and the `raft_snapshot_*`/`raft_trailing_logs`
//! keys: the keys that tune or describe the Raft cluster, checked as Consul checks them. `raft_multiplier` scales every Raft timing (Conclave's timings
//! are those of multiplier 1, the value Consul recommends in production); `rpc_hold_timeout` bounds how
//! long a request waits for a leader.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::{number, problem, string};

/// What these keys set; `None` where the files leave them out.
#[derive(Clone, Debug, Default)]
pub struct PerformanceFileConfig {
    pub raft_multiplier: Option<u32>,
    pub rpc_hold_timeout: Option<Duration>,
    pub primary_datacenter: Option<String>,
    /// `raft_snapshot_threshold`: applied entries between snapshots.
    pub raft_snapshot_threshold: Option<u64>,
    /// `raft_trailing_logs`: entries kept in the log after a snapshot, for followers that lag.
    pub raft_trailing_logs: Option<u64>,
    /// `raft_snapshot_interval`: how often Consul checks the threshold. Conclave checks it after every
    /// applied entry, which is never later; the value is validated and reported at start-up.
    pub raft_snapshot_interval: Option<Duration>,
}

/// Consul's bound on `raft_multiplier`.
const RAFT_MULTIPLIER_MAX: u32 = 10;

/// Applies `key` if it is one of these; `Ok(false)` if not.
pub fn apply_key(config: &mut PerformanceFileConfig, file: &Path, key: &str, value: &Value) -> Result<bool, String> {
    match key {
        "performance" => {
            let map = value.as_object().ok_or_else(|| problem(file, key, "expected an object"))?;
            for (name, value) in map {
                let full = format!("performance.{name}");
                match name.as_str() {
                    "raft_multiplier" => {
                        let multiplier: u32 = number(file, &full, value)?;
                        if !(1..=RAFT_MULTIPLIER_MAX).contains(&multiplier) {
                            return Err(problem(
                                file,
                                &full,
                                format!("cannot be {multiplier}. Must be between 1 and {RAFT_MULTIPLIER_MAX}"),
                            ));
                        }
                        config.raft_multiplier = Some(multiplier);
                    }
                    "rpc_hold_timeout" => {
                        let text = string(file, &full, value)?;
                        let timeout =
                            conclave_core::api::parse_go_duration(&text).map_err(|e| problem(file, &full, e))?;
                        config.rpc_hold_timeout = Some(timeout);
                    }
                    _ => return Err(problem(file, &full, "is not supported by Conclave")),
                }
            }
        }
        // Conclave speaks Raft protocol 3 only (Consul's only choice since 1.x).
        "raft_protocol" => {
            let version: u32 = number(file, key, value)?;
            if version != 3 {
                return Err(problem(file, key, format!("{version} is not supported: Conclave speaks Raft protocol 3")));
            }
        }
        "primary_datacenter" => config.primary_datacenter = Some(string(file, key, value)?),
        "raft_snapshot_threshold" => {
            let threshold: u64 = number(file, key, value)?;
            if threshold == 0 {
                return Err(problem(file, key, "must be at least 1"));
            }
            config.raft_snapshot_threshold = Some(threshold);
        }
        "raft_trailing_logs" => config.raft_trailing_logs = Some(number(file, key, value)?),
        "raft_snapshot_interval" => {
            let text = string(file, key, value)?;
            let interval = conclave_core::api::parse_go_duration(&text).map_err(|e| problem(file, key, e))?;
            if interval.is_zero() {
                return Err(problem(file, key, "must be positive"));
            }
            config.raft_snapshot_interval = Some(interval);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(key: &str, text: &str) -> Result<PerformanceFileConfig, String> {
        let mut config = PerformanceFileConfig::default();
        apply_key(&mut config, Path::new("c.json"), key, &serde_json::from_str(text).unwrap())?;
        Ok(config)
    }

    #[test]
    fn raft_snapshot_keys_are_read_and_checked() {
        assert_eq!(apply("raft_snapshot_threshold", "16384").unwrap().raft_snapshot_threshold, Some(16384));
        assert!(apply("raft_snapshot_threshold", "0").unwrap_err().contains("raft_snapshot_threshold"));
        assert_eq!(apply("raft_trailing_logs", "10240").unwrap().raft_trailing_logs, Some(10240));
        let interval = apply("raft_snapshot_interval", r#""30s""#).unwrap().raft_snapshot_interval;
        assert_eq!(interval, Some(Duration::from_secs(30)));
        assert!(apply("raft_snapshot_interval", r#""soon""#).is_err());
    }

    #[test]
    fn raft_multiplier_is_bounded_as_in_consul() {
        assert_eq!(apply("performance", r#"{"raft_multiplier": 5}"#).unwrap().raft_multiplier, Some(5));
        let error = apply("performance", r#"{"raft_multiplier": 11}"#).unwrap_err();
        assert!(error.contains("performance.raft_multiplier") && error.contains("between 1 and 10"), "{error}");
    }

    #[test]
    fn unknown_performance_keys_and_other_raft_protocols_are_refused_by_name() {
        assert!(apply("performance", r#"{"leave_drain_time": "5s"}"#).unwrap_err().contains("leave_drain_time"));
        assert!(apply("raft_protocol", "2").unwrap_err().contains("raft_protocol"));
        assert!(apply("raft_protocol", "3").is_ok());
        let hold = apply("performance", r#"{"rpc_hold_timeout": "3s"}"#).unwrap();
        assert_eq!(hold.rpc_hold_timeout, Some(Duration::from_secs(3)));
    }
}
