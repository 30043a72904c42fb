//! Agent configuration files: every `*.json` and `*.hcl` file of `-config-dir` (in name order) and each
//! `-config-file`, merged in that order, with flags applied on top by the CLI. HCL is read with hcl-rs into
//! the same JSON shape as Consul's JSON files. Service and check definitions are decoded with the HTTP
//! API's rules. An error names the file, the key and the problem. `settings` holds the resolved value a
//! node starts from.

pub mod acl;
pub mod autopilot;
pub mod dns;
pub mod performance;
pub mod process;
pub mod settings;
pub mod telemetry;
pub mod tls;
pub mod watches;

use std::path::{Path, PathBuf};

use conclave_core::api::{decode_check_definition, decode_service_definition, ServiceCheck, ServiceDefinition};
use serde_json::{Map, Value};

pub use acl::{AclSettings, AgentTokens, DownPolicy};
pub use dns::DnsSettings;
pub use settings::{FaultSwitches, NodeConfig, Ports, RaftTimings};
pub use tls::{EncryptSettings, SecuritySettings, TlsInterface};

/// Settings read from files; `None` where no file set them.
#[derive(Clone, Debug, Default)]
pub struct FileConfig {
    pub datacenter: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub server: Option<bool>,
    pub bootstrap_expect: Option<u32>,
    pub node_name: Option<String>,
    pub client_addr: Option<String>,
    pub bind_addr: Option<String>,
    pub advertise_addr: Option<String>,
    pub retry_join: Vec<String>,
    pub retry_interval: Option<String>,
    pub log_level: Option<String>,
    pub domain: Option<String>,
    pub ui: Option<bool>,
    pub node_meta: Vec<(String, String)>,
    pub ports: FilePorts,
    pub enable_script_checks: Option<bool>,
    pub check_update_interval: Option<String>,
    /// `default_query_time` and `max_query_time` (Go durations).
    pub default_query_time: Option<String>,
    pub max_query_time: Option<String>,
    pub services: Vec<(ServiceDefinition, String)>,
    pub checks: Vec<(ServiceCheck, String, String)>,
    /// `recursors` and `dns_config`.
    pub dns: dns::DnsFileConfig,
    /// The `acl` block.
    pub acl: AclSettings,
    /// TLS, `auto_encrypt` and gossip encryption.
    pub security: tls::SecurityFileConfig,
    /// Pid file, logging, leave behaviour, node ID.
    pub process: process::ProcessFileConfig,
    /// `performance {}`, `raft_protocol`, `primary_datacenter`.
    pub performance: performance::PerformanceFileConfig,
    /// The `autopilot {}` block (Consul's defaults where it is silent).
    pub autopilot: conclave_core::autopilot::AutopilotConfig,
    /// The `watches` the agent runs.
    pub watches: Vec<watches::WatchSpec>,
    /// The `telemetry` block.
    pub telemetry: telemetry::TelemetryFileConfig,
}

#[derive(Clone, Debug, Default)]
pub struct FilePorts {
    /// `Some(None)`: `-1`, plaintext HTTP off.
    pub http: Option<Option<u16>>,
    pub https: Option<Option<u16>>,
    pub server: Option<u16>,
    pub serf_lan: Option<u16>,
    pub serf_wan: Option<u16>,
    pub dns: Option<u16>,
}

/// The files a set of `-config-dir`/`-config-file` arguments names, in the order they are read.
pub fn config_files(dirs: &[PathBuf], files: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for dir in dirs {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("Error reading config dir {}: {e}", dir.display()))?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("json" | "hcl")))
            .collect();
        found.sort();
        out.extend(found);
    }
    out.extend(files.iter().cloned());
    Ok(out)
}

/// Reads and merges `files`.
pub fn load(files: &[PathBuf]) -> Result<FileConfig, String> {
    let mut config = FileConfig::default();
    for file in files {
        let value = parse_file(file)?;
        apply(&mut config, file, value)?;
    }
    Ok(config)
}

/// Parses one config file's text (`*.hcl` as HCL, anything else as JSON) into settings; `file` names it
/// in errors. What `load` does for each file, without the file system.
pub fn parse_config_text(file: &Path, text: &str) -> Result<FileConfig, String> {
    let mut config = FileConfig::default();
    apply(&mut config, file, parse_text(file, text)?)?;
    Ok(config)
}

fn parse_file(file: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("Error reading {}: {e}", file.display()))?;
    parse_text(file, &text)
}

fn parse_text(file: &Path, text: &str) -> Result<Value, String> {
    let value: Value = if file.extension().and_then(|e| e.to_str()) == Some("hcl") {
        hcl::from_str(text).map_err(|e| format!("Error parsing {}: {e}", file.display()))?
    } else {
        serde_json::from_str(text).map_err(|e| format!("Error parsing {}: {e}", file.display()))?
    };
    if !value.is_object() {
        return Err(format!("Error parsing {}: the top level must be an object", file.display()));
    }
    Ok(value)
}

fn problem(file: &Path, key: &str, what: impl std::fmt::Display) -> String {
    format!("Error in {}: key {key:?}: {what}", file.display())
}

fn string(file: &Path, key: &str, value: &Value) -> Result<String, String> {
    value.as_str().map(str::to_string).ok_or_else(|| problem(file, key, "expected a string"))
}

fn boolean(file: &Path, key: &str, value: &Value) -> Result<bool, String> {
    value.as_bool().ok_or_else(|| problem(file, key, "expected true or false"))
}

fn number<T: TryFrom<u64>>(file: &Path, key: &str, value: &Value) -> Result<T, String> {
    let n = value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| problem(file, key, "expected a number"))?;
    T::try_from(n).map_err(|_| problem(file, key, format!("{n} is out of range")))
}

/// A block that may be written once (an object) or repeated (an array of objects).
pub(crate) fn objects(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

fn apply(config: &mut FileConfig, file: &Path, value: Value) -> Result<(), String> {
    let source = file.display().to_string();
    let Value::Object(map) = value else { unreachable!("checked in parse_file") };
    for (key, value) in map {
        match key.as_str() {
            "datacenter" => config.datacenter = Some(string(file, &key, &value)?),
            "data_dir" => config.data_dir = Some(PathBuf::from(string(file, &key, &value)?)),
            "server" => config.server = Some(boolean(file, &key, &value)?),
            "bootstrap_expect" => config.bootstrap_expect = Some(number(file, &key, &value)?),
            "bootstrap" => {
                if boolean(file, &key, &value)? {
                    config.bootstrap_expect = Some(1);
                }
            }
            "node_name" => config.node_name = Some(string(file, &key, &value)?),
            "client_addr" => config.client_addr = Some(string(file, &key, &value)?),
            "bind_addr" => config.bind_addr = Some(string(file, &key, &value)?),
            "advertise_addr" => config.advertise_addr = Some(string(file, &key, &value)?),
            "retry_join" | "start_join" => {
                let items = value.as_array().ok_or_else(|| problem(file, &key, "expected a list of addresses"))?;
                for item in items {
                    config.retry_join.push(string(file, &key, item)?);
                }
            }
            "retry_interval" => config.retry_interval = Some(string(file, &key, &value)?),
            "log_level" => config.log_level = Some(string(file, &key, &value)?),
            "domain" => config.domain = Some(string(file, &key, &value)?),
            "ui" => config.ui = Some(boolean(file, &key, &value)?),
            "ui_config" => {
                let enabled = value.get("enabled").map(|v| boolean(file, "ui_config.enabled", v)).transpose()?;
                config.ui = enabled.or(config.ui);
            }
            "enable_script_checks" | "enable_local_script_checks" => {
                config.enable_script_checks = Some(boolean(file, &key, &value)?)
            }
            "check_update_interval" => config.check_update_interval = Some(string(file, &key, &value)?),
            "default_query_time" => config.default_query_time = Some(string(file, &key, &value)?),
            "max_query_time" => config.max_query_time = Some(string(file, &key, &value)?),
            "node_meta" => {
                let meta = value.as_object().ok_or_else(|| problem(file, &key, "expected an object"))?;
                for (k, v) in meta {
                    config.node_meta.push((k.clone(), string(file, &format!("node_meta.{k}"), v)?));
                }
            }
            "ports" => apply_ports(&mut config.ports, file, &value)?,
            "dns_config" => dns::apply_dns_config(&mut config.dns, file, &value)?,
            "recursors" => dns::apply_recursors(&mut config.dns, file, &value)?,
            "acl" => acl::apply_acl(&mut config.acl, file, &value)?,
            "autopilot" => autopilot::apply_autopilot(&mut config.autopilot, file, &value)?,
            // Consul's pre-1.4 ACL keys: refused by name, as Consul 1.11+ refuses them.
            "acl_datacenter"
            | "acl_default_policy"
            | "acl_down_policy"
            | "acl_master_token"
            | "acl_token"
            | "acl_agent_token"
            | "acl_agent_master_token"
            | "acl_replication_token"
            | "acl_ttl"
            | "acl_enforce_version_8"
            | "enable_acl_replication" => {
                return Err(problem(file, &key, "is a legacy ACL key Consul no longer reads: use the acl block"));
            }
            "service" | "services" => {
                for service in objects(&value) {
                    let definition = decode_service_definition(service.to_string().as_bytes())
                        .map_err(|e| problem(file, &key, e))?;
                    config.services.push((definition, source.clone()));
                }
            }
            "check" | "checks" => {
                for check in objects(&value) {
                    let (check, service_id) =
                        decode_check_definition(check.to_string().as_bytes()).map_err(|e| problem(file, &key, e))?;
                    config.checks.push((check, service_id, source.clone()));
                }
            }
            "watches" => {
                let items = value.as_array().ok_or_else(|| problem(file, &key, "expected a list of watches"))?;
                for (i, item) in items.iter().enumerate() {
                    let spec = watches::parse_watch(item).map_err(|e| problem(file, &format!("watches[{i}]"), e))?;
                    config.watches.push(spec);
                }
            }
            // The service mesh Conclave does not have: refused unless off, so no one believes it on.
            "connect" => refuse_unless_off(file, &key, &value, "there is no service mesh")?,
            // Not built yet: accepted only when they turn nothing on (see docs/limits.md).
            "telemetry" => telemetry::apply_block(&mut config.telemetry, file, &value)?,
            "addresses" | "limits" => refuse_unless_off(file, &key, &value, "not yet")?,
            other => {
                if !tls::apply_top_level(&mut config.security, file, other, &value)?
                    && !process::apply_key(&mut config.process, file, other, &value)?
                    && !performance::apply_key(&mut config.performance, file, other, &value)?
                {
                    return Err(problem(file, other, "unknown configuration key"));
                }
            }
        }
    }
    Ok(())
}

/// Refuses a security setting that would turn on something Conclave does not enforce: any value but
/// an "off" one (false, an empty string, an empty block, or a block whose `enabled` is false and whose
/// other values are all off too).
fn refuse_unless_off(file: &Path, key: &str, value: &Value, why: &str) -> Result<(), String> {
    if is_off(value) {
        return Ok(());
    }
    Err(problem(file, key, format!("is not supported by Conclave ({why}), so it is refused rather than ignored")))
}

pub(crate) fn is_off(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(on) => !on,
        Value::String(text) => text.is_empty(),
        Value::Array(items) => items.iter().all(is_off),
        Value::Object(map) => match map.get("enabled") {
            Some(enabled) => is_off(enabled),
            None => map.values().all(is_off),
        },
        Value::Number(_) => false,
    }
}

fn apply_ports(ports: &mut FilePorts, file: &Path, value: &Value) -> Result<(), String> {
    let map: &Map<String, Value> = value.as_object().ok_or_else(|| problem(file, "ports", "expected an object"))?;
    for (key, value) in map {
        let name = format!("ports.{key}");
        // -1 turns an interface off, as in Consul.
        let port = match value.as_i64() {
            Some(-1) => None,
            _ => Some(number::<u16>(file, &name, value)?),
        };
        match (key.as_str(), port) {
            ("http", port) => ports.http = Some(port),
            ("https", port) => ports.https = Some(port),
            ("server", Some(port)) => ports.server = Some(port),
            ("serf_lan", Some(port)) => ports.serf_lan = Some(port),
            ("serf_wan", Some(port)) => ports.serf_wan = Some(port),
            ("dns", Some(port)) => ports.dns = Some(port),
            ("grpc" | "grpc_tls", None) => {}
            ("grpc" | "grpc_tls", Some(_)) => {
                return Err(problem(file, &name, "Conclave serves no gRPC port; set it to -1 or leave it out"))
            }
            ("server" | "serf_lan" | "serf_wan" | "dns", None) => {
                return Err(problem(file, &name, "this port cannot be turned off"))
            }
            (other, _) => return Err(problem(file, &format!("ports.{other}"), "unknown port")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_mesh_is_refused_unless_off() {
        let error = parse_config_text(Path::new("a.json"), r#"{"connect":{"enabled":true}}"#).unwrap_err();
        assert!(error.contains("key \"connect\"") && error.contains("refused"), "{error}");
        parse_config_text(Path::new("a.json"), r#"{"connect":{"enabled":false}}"#).unwrap();
    }

    #[test]
    fn security_keys_are_read_into_the_security_settings() {
        let text = r#"{"encrypt":"k","verify_incoming":true,"tls":{"defaults":{"ca_file":"ca.pem"}},"ports":{"https":8501,"http":-1}}"#;
        let config = parse_config_text(Path::new("a.json"), text).unwrap();
        assert_eq!(config.security.encrypt.as_deref(), Some("k"));
        assert_eq!(config.security.legacy.verify_incoming, Some(true));
        assert_eq!(config.ports.https, Some(Some(8501)));
        assert_eq!(config.ports.http, Some(None));
        let grpc = parse_config_text(Path::new("a.json"), r#"{"ports":{"grpc":8502}}"#).unwrap_err();
        assert!(grpc.contains("ports.grpc"), "{grpc}");
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn json_and_hcl_files_load_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a.json",
            r#"{"datacenter":"east","service":{"name":"web","port":80,"check":{"ttl":"30s"}}}"#,
        );
        write(dir.path(), "b.hcl", "datacenter = \"west\"\nports { http = 18500 }\nservice {\n  name = \"db\"\n  port = 5432\n  checks = [{ tcp = \"localhost:5432\", interval = \"10s\" }]\n}\n");
        write(dir.path(), "ignored.txt", "not config");
        let files = config_files(&[dir.path().to_path_buf()], &[]).unwrap();
        assert_eq!(files.len(), 2);
        let config = load(&files).unwrap();
        assert_eq!(config.datacenter.as_deref(), Some("west"));
        assert_eq!(config.ports.http, Some(Some(18500)));
        let names: Vec<_> = config.services.iter().map(|(s, _)| s.name.as_str()).collect();
        assert_eq!(names, ["web", "db"]);
        assert_eq!(config.services[1].0.checks[0].definition.tcp, "localhost:5432");
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "bad.json", r#"{"bogus_key": 1}"#);
        let error = load(std::slice::from_ref(&file)).unwrap_err();
        assert!(error.contains("bad.json") && error.contains("bogus_key"), "{error}");
        let file = write(dir.path(), "bad2.json", r#"{"service": {"port": 80}}"#);
        let error = load(&[file]).unwrap_err();
        assert!(error.contains("bad2.json") && error.contains("Missing service name"), "{error}");
        let file = write(dir.path(), "bad3.hcl", "service {");
        assert!(load(&[file]).unwrap_err().contains("bad3.hcl"));
    }
}
