//! A check definition as users send it (Consul's `CheckType`), its validation and its conversion into
//! what the catalog stores.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::duration::GoDuration;
use super::ApiError;
use crate::agent::{CheckRun, LocalCheck};
use crate::catalog::{CheckDefinition, CheckSpec, CheckStatus};

/// The fields of Consul's `CheckType`, by normalised name. Fields Conclave does not act on yet are
/// accepted (a Consul payload carrying them must not be refused) and ignored.
// Consul fields Conclave accepts but does not act on are kept so payloads carrying them decode.
#[allow(dead_code)]
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckInput {
    #[serde(rename = "checkid")]
    pub check_id: Option<String>,
    pub id: Option<String>,
    pub name: Option<String>,
    pub notes: Option<String>,
    pub status: Option<String>,
    #[serde(rename = "scriptargs")]
    pub script_args: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub http: Option<String>,
    pub header: Option<BTreeMap<String, Vec<String>>>,
    pub method: Option<String>,
    pub body: Option<String>,
    #[serde(rename = "disableredirects")]
    pub disable_redirects: Option<bool>,
    pub tcp: Option<String>,
    pub udp: Option<String>,
    pub interval: Option<GoDuration>,
    pub timeout: Option<GoDuration>,
    pub ttl: Option<GoDuration>,
    #[serde(rename = "aliasnode")]
    pub alias_node: Option<String>,
    #[serde(rename = "aliasservice")]
    pub alias_service: Option<String>,
    #[serde(rename = "dockercontainerid")]
    pub docker_container_id: Option<String>,
    pub shell: Option<String>,
    pub grpc: Option<String>,
    #[serde(rename = "grpcusetls")]
    pub grpc_use_tls: Option<bool>,
    pub h2ping: Option<String>,
    #[serde(rename = "h2pingusetls")]
    pub h2ping_use_tls: Option<bool>,
    #[serde(rename = "osservice")]
    pub os_service: Option<String>,
    #[serde(rename = "tlsservername")]
    pub tls_server_name: Option<String>,
    #[serde(rename = "tlsskipverify")]
    pub tls_skip_verify: Option<bool>,
    #[serde(rename = "successbeforepassing")]
    pub success_before_passing: Option<i64>,
    #[serde(rename = "failuresbeforewarning")]
    pub failures_before_warning: Option<i64>,
    #[serde(rename = "failuresbeforecritical")]
    pub failures_before_critical: Option<i64>,
    #[serde(rename = "deregistercriticalserviceafter")]
    pub deregister_critical_service_after: Option<GoDuration>,
    #[serde(rename = "outputmaxsize")]
    pub output_max_size: Option<i64>,
    /// Accepted and ignored, as Consul does: a service's checks belong to that service.
    #[serde(rename = "serviceid")]
    pub service_id: Option<String>,
    #[serde(rename = "type")]
    pub check_type: Option<String>,
}

/// A validated check of a service definition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceCheck {
    /// Empty: generated from the service ID and the check's position.
    pub check_id: String,
    pub name: String,
    pub notes: String,
    /// `None`: Consul's initial status (critical).
    pub status: Option<CheckStatus>,
    pub check_type: String,
    pub definition: CheckDefinition,
    pub script_args: Vec<String>,
    pub grpc: String,
    pub disable_redirects: bool,
    pub success_before_passing: u32,
    pub failures_before_critical: u32,
    pub failures_before_warning: u32,
}

fn non_negative(value: Option<i64>, field: &str) -> Result<u32, ApiError> {
    match value {
        None => Ok(0),
        Some(v) if (0..=i64::from(u32::MAX)).contains(&v) => Ok(v as u32),
        Some(v) => Err(ApiError::bad_request(format!("Invalid check: {field} must be >= 0, got {v}"))),
    }
}

impl CheckInput {
    /// Consul's `CheckType.Type()` precedence.
    fn kind(&self) -> &'static str {
        let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
        let args = self.script_args.as_ref().or(self.args.as_ref()).is_some_and(|a| !a.is_empty());
        if set(&self.grpc) {
            "grpc"
        } else if set(&self.http) {
            "http"
        } else if self.ttl.is_some_and(|t| !t.0.is_zero()) {
            "ttl"
        } else if set(&self.tcp) {
            "tcp"
        } else if set(&self.udp) {
            "udp"
        } else if set(&self.alias_node) || set(&self.alias_service) {
            "alias"
        } else if set(&self.docker_container_id) {
            "docker"
        } else if args {
            "script"
        } else if set(&self.h2ping) {
            "h2ping"
        } else if set(&self.os_service) {
            "os_service"
        } else {
            ""
        }
    }

    /// Validates like Consul's `CheckType.Validate` and converts.
    pub fn into_check(self) -> Result<ServiceCheck, ApiError> {
        let kind = self.kind();
        let interval = self.interval.unwrap_or_default();
        let ttl = self.ttl.unwrap_or_default();
        if !interval.0.is_zero() && !ttl.0.is_zero() {
            return Err(ApiError::bad_request("Invalid check: Interval and TTL cannot both be specified"));
        }
        let needs_interval =
            matches!(kind, "http" | "tcp" | "udp" | "script" | "grpc" | "h2ping" | "docker" | "os_service");
        if needs_interval && interval.0.is_zero() {
            return Err(ApiError::bad_request(
                "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, or TCP checks",
            ));
        }
        if !needs_interval && kind != "alias" && ttl.0.is_zero() {
            return Err(ApiError::bad_request("Invalid check: TTL must be > 0 for TTL checks"));
        }
        let status = match self.status.as_deref() {
            None | Some("") => None,
            Some(text) => Some(
                CheckStatus::parse(text)
                    .ok_or_else(|| ApiError::bad_request("Status for checks must 'passing', 'warning', 'critical'"))?,
            ),
        };
        let definition = CheckDefinition {
            http: self.http.unwrap_or_default(),
            method: self.method.unwrap_or_default(),
            header: self.header.unwrap_or_default(),
            body: self.body.unwrap_or_default(),
            tls_skip_verify: self.tls_skip_verify.unwrap_or(false),
            tls_server_name: self.tls_server_name.unwrap_or_default(),
            tcp: self.tcp.unwrap_or_default(),
            interval_ms: interval.as_millis(),
            timeout_ms: self.timeout.unwrap_or_default().as_millis(),
            ttl_ms: ttl.as_millis(),
            deregister_critical_service_after_ms: self
                .deregister_critical_service_after
                .unwrap_or_default()
                .as_millis(),
        };
        Ok(ServiceCheck {
            check_id: self.check_id.or(self.id).unwrap_or_default(),
            name: self.name.unwrap_or_default(),
            notes: self.notes.unwrap_or_default(),
            status,
            check_type: kind.to_string(),
            definition,
            script_args: self.script_args.or(self.args).unwrap_or_default(),
            grpc: self.grpc.unwrap_or_default(),
            disable_redirects: self.disable_redirects.unwrap_or(false),
            success_before_passing: non_negative(self.success_before_passing, "SuccessBeforePassing")?,
            failures_before_critical: non_negative(self.failures_before_critical, "FailuresBeforeCritical")?,
            failures_before_warning: non_negative(self.failures_before_warning, "FailuresBeforeWarning")?,
        })
    }
}

impl ServiceCheck {
    /// How the agent runs this check.
    pub fn run(&self) -> CheckRun {
        CheckRun {
            script_args: self.script_args.clone(),
            grpc: self.grpc.clone(),
            success_before_passing: self.success_before_passing,
            failures_before_warning: self.failures_before_warning,
            failures_before_critical: self.failures_before_critical,
            disable_redirects: self.disable_redirects,
        }
    }

    /// The catalog entry for this check, the `position`-th (0-based) of `count` checks of the service.
    /// Generated IDs and names follow Consul: `service:<id>` (`service:<id>:<n>` with several checks) and
    /// `Service '<name>' check`.
    pub fn to_check_spec(&self, service_id: &str, service_name: &str, position: usize, count: usize) -> CheckSpec {
        let check_id = if !self.check_id.is_empty() {
            self.check_id.clone()
        } else if count > 1 {
            format!("service:{service_id}:{}", position + 1)
        } else {
            format!("service:{service_id}")
        };
        let name = if self.name.is_empty() { format!("Service '{service_name}' check") } else { self.name.clone() };
        CheckSpec {
            check_id,
            name,
            status: self.status.unwrap_or(CheckStatus::Critical),
            notes: self.notes.clone(),
            output: String::new(),
            service_id: service_id.to_string(),
            check_type: self.check_type.clone(),
            definition: self.definition.clone(),
        }
    }
}

/// A check registered on its own (`PUT /v1/agent/check/register`, `check {}` in config files): the check
/// and the service it belongs to (empty: a node check).
pub fn decode_check_definition(body: &[u8]) -> Result<(ServiceCheck, String), ApiError> {
    let input: CheckInput = super::keys::decode_object(body, "structs.CheckDefinition")?;
    let service_id = input.service_id.clone().unwrap_or_default();
    if input.name.as_deref().unwrap_or("").is_empty() {
        return Err(ApiError::bad_request("Missing check name"));
    }
    Ok((input.into_check()?, service_id))
}

impl ServiceCheck {
    /// A check registered on its own, as the agent keeps it.
    pub fn to_local_check(&self, service_id: &str) -> LocalCheck {
        LocalCheck { spec: self.to_standalone_spec(service_id), run: self.run() }
    }

    /// The catalog entry of a check registered on its own; its ID defaults to its name.
    pub fn to_standalone_spec(&self, service_id: &str) -> CheckSpec {
        let check_id = if self.check_id.is_empty() { self.name.clone() } else { self.check_id.clone() };
        CheckSpec {
            check_id,
            name: self.name.clone(),
            status: self.status.unwrap_or(CheckStatus::Critical),
            notes: self.notes.clone(),
            output: String::new(),
            service_id: service_id.to_string(),
            check_type: self.check_type.clone(),
            definition: self.definition.clone(),
        }
    }
}
