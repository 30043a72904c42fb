//! The `autopilot {}` block: the values the first leader stores as the cluster's replicated autopilot
//! configuration (later changes go through `/v1/operator/autopilot/configuration`). Consul's
//! enterprise-only keys are refused unless they turn nothing on; unknown keys are refused by name.

use std::path::Path;

use conclave_core::autopilot::AutopilotConfig;
use serde_json::Value;

use super::{boolean, is_off, number, problem, string};

/// Reads the `autopilot` block into `config` (starting from what earlier files set).
pub fn apply_autopilot(config: &mut AutopilotConfig, file: &Path, value: &Value) -> Result<(), String> {
    let map = value.as_object().ok_or_else(|| problem(file, "autopilot", "expected an object"))?;
    for (name, value) in map {
        let full = format!("autopilot.{name}");
        let duration_ms = |value: &Value| -> Result<u64, String> {
            let text = string(file, &full, value)?;
            let duration = conclave_core::api::parse_go_duration(&text).map_err(|e| problem(file, &full, e))?;
            Ok(duration.as_millis() as u64)
        };
        match name.as_str() {
            "cleanup_dead_servers" => config.cleanup_dead_servers = boolean(file, &full, value)?,
            "last_contact_threshold" => config.last_contact_threshold_ms = duration_ms(value)?,
            "max_trailing_logs" => config.max_trailing_logs = number(file, &full, value)?,
            "min_quorum" => config.min_quorum = number(file, &full, value)?,
            "server_stabilization_time" => config.server_stabilization_time_ms = duration_ms(value)?,
            "redundancy_zone_tag" | "disable_upgrade_migration" | "upgrade_version_tag" => {
                if !is_off(value) {
                    return Err(problem(file, &full, "is a Consul Enterprise feature Conclave does not have"));
                }
            }
            _ => return Err(problem(file, &full, "unknown autopilot key")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(text: &str) -> Result<AutopilotConfig, String> {
        let mut config = AutopilotConfig::default();
        apply_autopilot(&mut config, Path::new("a.json"), &serde_json::from_str(text).unwrap())?;
        Ok(config)
    }

    #[test]
    fn defaults_are_consuls() {
        let config = apply("{}").unwrap();
        assert!(config.cleanup_dead_servers);
        assert_eq!(config.last_contact_threshold_ms, 200);
        assert_eq!(config.max_trailing_logs, 250);
        assert_eq!(config.min_quorum, 0);
        assert_eq!(config.server_stabilization_time_ms, 10_000);
    }

    #[test]
    fn every_open_source_key_is_read() {
        let config = apply(
            r#"{"cleanup_dead_servers": false, "last_contact_threshold": "1s", "max_trailing_logs": 10,
                "min_quorum": 3, "server_stabilization_time": "2s500ms"}"#,
        )
        .unwrap();
        assert!(!config.cleanup_dead_servers);
        assert_eq!(config.last_contact_threshold_ms, 1_000);
        assert_eq!(config.max_trailing_logs, 10);
        assert_eq!(config.min_quorum, 3);
        assert_eq!(config.server_stabilization_time_ms, 2_500);
    }

    #[test]
    fn enterprise_keys_are_refused_by_name_unless_off() {
        apply(r#"{"redundancy_zone_tag": "", "disable_upgrade_migration": false, "upgrade_version_tag": ""}"#).unwrap();
        let error = apply(r#"{"redundancy_zone_tag": "zone"}"#).unwrap_err();
        assert!(error.contains("autopilot.redundancy_zone_tag") && error.contains("Enterprise"), "{error}");
        assert!(apply(r#"{"disable_upgrade_migration": true}"#).unwrap_err().contains("disable_upgrade_migration"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_by_name() {
        assert!(apply(r#"{"cleanup_dead": true}"#).unwrap_err().contains("autopilot.cleanup_dead"));
        assert!(apply(r#"{"last_contact_threshold": "soon"}"#).unwrap_err().contains("last_contact_threshold"));
        assert!(apply(r#"{"min_quorum": "many"}"#).unwrap_err().contains("min_quorum"));
    }
}
