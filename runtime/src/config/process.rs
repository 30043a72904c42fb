//! Configuration keys about the agent process rather than the cluster: its pid file, where and how it
//! logs, whether it leaves the cluster on SIGTERM and SIGINT, whether it rejoins after a leave, and its
//! node ID. Read from files here; flags override them in `cli::agent`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{boolean, problem, string};

/// The process keys of the configuration files, unset where the files do not name them.
#[derive(Clone, Debug, Default)]
pub struct ProcessFileConfig {
    pub pid_file: Option<PathBuf>,
    pub log_file: Option<PathBuf>,
    pub log_json: Option<bool>,
    pub log_rotate_bytes: Option<u64>,
    pub log_rotate_duration: Option<String>,
    pub log_rotate_max_files: Option<i64>,
    pub leave_on_terminate: Option<bool>,
    pub skip_leave_on_interrupt: Option<bool>,
    pub rejoin_after_leave: Option<bool>,
    pub node_id: Option<String>,
    pub disable_host_node_id: Option<bool>,
    /// Keys whose effect cannot apply to Conclave; logged once at start as ignored.
    pub ignored: Vec<String>,
}

/// Applies `key` if it is a process key; `Ok(false)` if it is not one.
pub fn apply_key(config: &mut ProcessFileConfig, file: &Path, key: &str, value: &Value) -> Result<bool, String> {
    match key {
        "pid_file" => config.pid_file = Some(string(file, key, value)?.into()),
        "log_file" => config.log_file = Some(string(file, key, value)?.into()),
        "log_json" => config.log_json = Some(boolean(file, key, value)?),
        "log_rotate_bytes" => {
            let bytes = value.as_u64().ok_or_else(|| problem(file, key, "expected a number of bytes"))?;
            config.log_rotate_bytes = Some(bytes);
        }
        "log_rotate_duration" => config.log_rotate_duration = Some(string(file, key, value)?),
        "log_rotate_max_files" => {
            let count = value.as_i64().ok_or_else(|| problem(file, key, "expected a number"))?;
            config.log_rotate_max_files = Some(count);
        }
        "leave_on_terminate" => config.leave_on_terminate = Some(boolean(file, key, value)?),
        "skip_leave_on_interrupt" => config.skip_leave_on_interrupt = Some(boolean(file, key, value)?),
        "rejoin_after_leave" => config.rejoin_after_leave = Some(boolean(file, key, value)?),
        "node_id" => config.node_id = Some(string(file, key, value)?),
        "disable_host_node_id" => config.disable_host_node_id = Some(boolean(file, key, value)?),
        // Consul asks HashiCorp's update service; Conclave never calls out, so either value is honoured.
        "disable_update_check" => {
            boolean(file, key, value)?;
            config.ignored.push(format!("{key} (Conclave never checks for updates)"));
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Checks a node ID as Consul does: a UUID in its canonical 36-character form.
pub fn validate_node_id(text: &str) -> Result<String, String> {
    let lower = text.trim().to_ascii_lowercase();
    let canonical = uuid::Uuid::parse_str(&lower).ok().filter(|_| lower.len() == 36);
    match canonical {
        Some(id) => Ok(id.hyphenated().to_string()),
        None => Err(format!("node_id {text:?} is not a valid UUID (e.g. \"adf4238a-882b-9ddc-4a9d-5b6758e4159e\")")),
    }
}

/// Consul's host-based node ID (when `disable_host_node_id` is false): a UUID derived from the machine ID,
/// so an agent re-created on the same host keeps its ID. `None` when the host has no machine ID.
pub fn host_node_id(machine_id: &str) -> Option<String> {
    let hex: String = machine_id.trim().chars().filter(char::is_ascii_hexdigit).collect();
    let bytes: Vec<u8> =
        (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()).collect();
    let bytes: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
    Some(uuid::Uuid::from_bytes(bytes).hyphenated().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_must_be_canonical_uuids() {
        assert_eq!(
            validate_node_id("ADF4238A-882B-9DDC-4A9D-5B6758E4159E").unwrap(),
            "adf4238a-882b-9ddc-4a9d-5b6758e4159e"
        );
        assert!(validate_node_id("adf4238a882b9ddc4a9d5b6758e4159e").is_err());
        assert!(validate_node_id("node-1").is_err());
    }

    #[test]
    fn the_host_node_id_is_the_machine_id_as_a_uuid() {
        let id = host_node_id("0123456789abcdef0123456789abcdef\n").unwrap();
        assert_eq!(id, "01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(host_node_id("short"), None);
    }

    #[test]
    fn process_keys_are_read_and_others_left_alone() {
        let mut config = ProcessFileConfig::default();
        let file = Path::new("a.json");
        assert!(apply_key(&mut config, file, "leave_on_terminate", &Value::Bool(true)).unwrap());
        assert!(apply_key(&mut config, file, "pid_file", &Value::String("/run/c.pid".into())).unwrap());
        assert!(!apply_key(&mut config, file, "datacenter", &Value::String("dc1".into())).unwrap());
        assert!(apply_key(&mut config, file, "log_json", &Value::String("yes".into())).is_err());
        assert_eq!(config.leave_on_terminate, Some(true));
        assert_eq!(config.pid_file.as_deref(), Some(Path::new("/run/c.pid")));
    }
}
