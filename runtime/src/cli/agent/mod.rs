//! `conclave agent`: flags and their translation into a `NodeConfig` and the process settings; `process`
//! runs the node on the production Env until it leaves or a signal stops it.

mod log_file;
mod logging;
mod process;

pub use process::{run, ProcessSettings};

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use crate::config::{NodeConfig, Ports};
use crate::env::join_address::resolve_join;
use crate::env::{FjallStore, MemStore, Store};

#[derive(Args, Clone, Debug, Default)]
pub struct AgentArgs {
    /// Run in server mode (keeps Raft state).
    #[arg(long)]
    pub server: bool,
    /// Servers to wait for before bootstrapping the cluster.
    #[arg(long = "bootstrap-expect")]
    pub bootstrap_expect: Option<u32>,
    /// Bootstrap a single-server cluster (Consul's `-bootstrap`: `-bootstrap-expect 1`).
    #[arg(long)]
    pub bootstrap: bool,
    /// Write the agent's process ID to this file once it has started; removed at exit.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Also log to this file (a directory: `consul.log` in it), rotated as Consul rotates it.
    #[arg(long = "log-file")]
    pub log_file: Option<PathBuf>,
    /// Log as JSON lines.
    #[arg(long = "log-json")]
    pub log_json: bool,
    /// Rotate the log file at this size (0: no size limit).
    #[arg(long = "log-rotate-bytes")]
    pub log_rotate_bytes: Option<u64>,
    /// Rotate the log file at this age (Go duration, default 24h).
    #[arg(long = "log-rotate-duration")]
    pub log_rotate_duration: Option<String>,
    /// Old log files to keep (0: all, -1: none).
    #[arg(long = "log-rotate-max-files", allow_hyphen_values = true)]
    pub log_rotate_max_files: Option<i64>,
    /// The node's ID (a UUID); must match the data dir's once it has one.
    #[arg(long = "node-id")]
    pub node_id: Option<String>,
    /// `false`: derive the node ID from the host's machine ID (Consul's default is true: a random ID).
    #[arg(long = "disable-host-node-id", num_args = 0..=1, default_missing_value = "true")]
    pub disable_host_node_id: Option<bool>,
    /// How long a blocking query without `?wait=` waits (Go duration, default 300s).
    #[arg(long = "default-query-time")]
    pub default_query_time: Option<String>,
    /// The longest any blocking query waits, whatever its `?wait=` (Go duration, default 600s).
    #[arg(long = "max-query-time")]
    pub max_query_time: Option<String>,
    /// Directory for the agent's durable state.
    #[arg(long = "data-dir")]
    pub data_dir: Option<PathBuf>,
    /// Node name (defaults to the host name).
    #[arg(long)]
    pub node: Option<String>,
    /// Address for cluster communication.
    #[arg(long)]
    pub bind: Option<IpAddr>,
    /// Address advertised to other nodes (defaults to -bind).
    #[arg(long)]
    pub advertise: Option<IpAddr>,
    /// Address of the HTTP and DNS interfaces.
    #[arg(long)]
    pub client: Option<IpAddr>,
    /// LAN address of an agent to join at start (repeatable; `host` or `host:port`, port 8301 by default).
    #[arg(long)]
    pub join: Vec<String>,
    /// Like -join, retried until it succeeds.
    #[arg(long = "retry-join")]
    pub retry_join: Vec<String>,
    /// Time between join attempts (Go duration).
    #[arg(long = "retry-interval")]
    pub retry_interval: Option<String>,
    /// Rejoin the gossip members remembered in the data dir after a restart (a server restarted on its data
    /// dir also rejoins its Raft peers without it).
    #[arg(long)]
    pub rejoin: bool,
    #[arg(long)]
    pub datacenter: Option<String>,
    #[arg(long = "http-port")]
    pub http_port: Option<u16>,
    /// Port of the HTTPS API (off unless set; needs a certificate).
    #[arg(long = "https-port")]
    pub https_port: Option<u16>,
    /// Gossip encryption key: base64 of 16, 24 or 32 bytes (`conclave keygen`).
    #[arg(long)]
    pub encrypt: Option<String>,
    #[arg(long = "server-port")]
    pub server_port: Option<u16>,
    #[arg(long = "serf-lan-port")]
    pub serf_lan_port: Option<u16>,
    #[arg(long = "serf-wan-port")]
    pub serf_wan_port: Option<u16>,
    #[arg(long = "dns-port")]
    pub dns_port: Option<u16>,
    /// Single in-memory server on 127.0.0.1 that bootstraps itself.
    #[arg(long)]
    pub dev: bool,
    /// trace, debug, info, warn or err (default info).
    #[arg(long = "log-level")]
    pub log_level: Option<String>,
    /// Directory of `*.json` and `*.hcl` configuration files (repeatable), read in name order.
    #[arg(long = "config-dir")]
    pub config_dir: Vec<PathBuf>,
    /// A configuration file (repeatable), read after the directories.
    #[arg(long = "config-file")]
    pub config_file: Vec<PathBuf>,
    /// Serve the web UI at /ui/.
    #[arg(long)]
    pub ui: bool,
    /// Node metadata `key:value` (repeatable).
    #[arg(long = "node-meta")]
    pub node_meta: Vec<String>,
    /// DNS domain (default "consul.").
    #[arg(long)]
    pub domain: Option<String>,
    /// An upstream DNS server for names outside the domain (`IP` or `IP:port`); may be repeated.
    #[arg(long = "recursor")]
    pub recursor: Vec<String>,
    /// Run script checks (`args`) registered through the API and config files.
    #[arg(long = "enable-script-checks")]
    pub enable_script_checks: bool,
    /// Run script checks defined in config files only.
    #[arg(long = "enable-local-script-checks")]
    pub enable_local_script_checks: bool,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "conclave".to_string())
}

fn parse_ip(text: &str, what: &str) -> anyhow::Result<IpAddr> {
    text.parse().map_err(|_| anyhow::anyhow!("invalid {what} {text:?}: expected an IP address"))
}

/// `performance {}` and `primary_datacenter` on the resolved settings.
fn apply_performance(
    config: &mut NodeConfig,
    performance: &crate::config::performance::PerformanceFileConfig,
) -> anyhow::Result<()> {
    let multiplier = performance.raft_multiplier.unwrap_or(1);
    let raft = &mut config.raft;
    raft.heartbeat_interval *= multiplier;
    raft.election_timeout_min *= multiplier;
    raft.election_timeout_max *= multiplier;
    if let Some(timeout) = performance.rpc_hold_timeout {
        config.request_timeout = timeout;
    }
    if let Some(threshold) = performance.raft_snapshot_threshold {
        raft.snapshot_after_entries = threshold;
    }
    if let Some(trailing) = performance.raft_trailing_logs {
        raft.trailing_log_entries = trailing;
    }
    if let Some(interval) = performance.raft_snapshot_interval {
        tracing::info!(
            target: "conclave::event",
            ?interval,
            "raft_snapshot_interval: Conclave checks raft_snapshot_threshold after every applied entry"
        );
    }
    if let Some(primary) = performance.primary_datacenter.as_ref().filter(|dc| **dc != config.datacenter) {
        bail!(
            "primary_datacenter {primary:?} is not this agent's datacenter {:?}: Conclave serves one datacenter",
            config.datacenter
        );
    }
    Ok(())
}

impl AgentArgs {
    /// The configuration files named by `-config-dir` and `-config-file`.
    pub fn config_files(&self) -> anyhow::Result<Vec<PathBuf>> {
        crate::config::config_files(&self.config_dir, &self.config_file).map_err(|e| anyhow::anyhow!(e))
    }

    /// Flags over files over defaults.
    pub fn node_config(&self) -> anyhow::Result<NodeConfig> {
        let files = self.config_files()?;
        let file = crate::config::load(&files).map_err(|e| anyhow::anyhow!(e))?;
        let node_name = self.node.clone().or(file.node_name.clone()).unwrap_or_else(host_name);
        let mut config = NodeConfig::new(&node_name);
        config.config_dirs = self.config_dir.clone();
        config.config_files = self.config_file.clone();
        config.dev = self.dev;
        config.server = self.server || self.dev || file.server.unwrap_or(false);
        let expect = self.bootstrap_expect.or(self.bootstrap.then_some(1)).or(file.bootstrap_expect);
        if self.bootstrap && self.bootstrap_expect.is_some() {
            bail!("'bootstrap_expect' is not allowed with 'bootstrap' (Consul: bootstrap mode and bootstrap_expect are exclusive)");
        }
        if self.dev {
            config.bootstrap_expect = 1;
        } else if let Some(expect) = expect {
            if !config.server {
                bail!("bootstrap_expect can only be set on server agents (add -server)");
            }
            config.bootstrap_expect = expect;
        }
        if let Some(dc) = self.datacenter.clone().or(file.datacenter.clone()) {
            config.datacenter = dc;
        }
        let defaults = Ports::default();
        config.ports = Ports {
            http: self.http_port.map(Some).or(file.ports.http).unwrap_or(defaults.http),
            https: self.https_port.map(Some).or(file.ports.https).unwrap_or(defaults.https),
            server: self.server_port.or(file.ports.server).unwrap_or(defaults.server),
            serf_lan: self.serf_lan_port.or(file.ports.serf_lan).unwrap_or(defaults.serf_lan),
            serf_wan: self.serf_wan_port.or(file.ports.serf_wan).unwrap_or(defaults.serf_wan),
            dns: self.dns_port.or(file.ports.dns).unwrap_or(defaults.dns),
        };
        if let Some(bind) = self.bind {
            config.bind_addr = bind;
        } else if let Some(bind) = &file.bind_addr {
            config.bind_addr = parse_ip(bind, "bind_addr")?;
        }
        config.advertise_addr = match (&self.advertise, &file.advertise_addr) {
            (Some(ip), _) => *ip,
            (None, Some(text)) => parse_ip(text, "advertise_addr")?,
            (None, None) => config.bind_addr,
        };
        if config.advertise_addr.is_unspecified() {
            bail!(
                "-advertise is required when -bind is {} (peers need an address to reach this node)",
                config.bind_addr
            );
        }
        if let Some(client) = self.client {
            config.client_addr = client;
        } else if let Some(client) = &file.client_addr {
            // Consul allows a space-separated list; the first address is served.
            let first = client.split_whitespace().next().unwrap_or_default();
            config.client_addr = parse_ip(first, "client_addr")?;
        }
        if let Some(interval) = self.retry_interval.clone().or(file.retry_interval.clone()) {
            config.retry_interval = conclave_core::api::parse_go_duration(&interval)
                .map_err(|e| anyhow::anyhow!("invalid -retry-interval {interval:?}: {e}"))?
                .max(Duration::from_millis(100));
        }
        for addr in self.join.iter().chain(&self.retry_join).chain(&file.retry_join) {
            config.join.push(resolve_join(addr, config.ports.serf_lan)?);
        }
        config.ui = self.ui || file.ui.unwrap_or(false);
        config.rejoin = self.rejoin || file.process.rejoin_after_leave.unwrap_or(false);
        config.node_id = self.node_id(&file.process)?;
        config.watches = file.watches.clone();
        apply_performance(&mut config, &file.performance)?;
        config.enable_script_checks =
            self.enable_script_checks || self.enable_local_script_checks || file.enable_script_checks.unwrap_or(false);
        if let Some(interval) = &file.check_update_interval {
            config.check_update_interval = conclave_core::api::parse_go_duration(interval)
                .map_err(|e| anyhow::anyhow!("invalid check_update_interval {interval:?}: {e}"))?;
        }
        for (flag, value, setting) in [
            (
                "default_query_time",
                self.default_query_time.clone().or(file.default_query_time.clone()),
                &mut config.query_wait_default,
            ),
            ("max_query_time", self.max_query_time.clone().or(file.max_query_time.clone()), &mut config.query_wait_max),
        ] {
            if let Some(text) = value {
                let wait = conclave_core::api::parse_go_duration(&text)
                    .map_err(|e| anyhow::anyhow!("invalid {flag} {text:?}: {e}"))?;
                if wait.is_zero() {
                    bail!("{flag} must be positive, got {text:?}");
                }
                *setting = wait;
            }
        }
        if let Some(domain) = self.domain.clone().or(file.domain.clone()) {
            config.domain = domain;
        }
        config.dns = crate::config::dns::settings(&file.dns, &self.recursor).map_err(|e| anyhow::anyhow!(e))?;
        config.acl = file.acl.clone();
        config.telemetry = crate::config::telemetry::settings(&file.telemetry, host_name());
        config.autopilot = file.autopilot.clone();
        let mut security = file.security.clone();
        if let Some(key) = &self.encrypt {
            security.encrypt = Some(key.clone()).filter(|k| !k.is_empty());
        }
        config.security = crate::config::tls::resolve(&security, config.server).map_err(|e| anyhow::anyhow!(e))?;
        let auto_certificate = config.security.auto_encrypt_tls && !config.server;
        if config.ports.https.is_some() && !config.security.https.has_certificate() && !auto_certificate {
            bail!("ports.https is set but no cert_file and key_file are configured for HTTPS (a client agent can use auto_encrypt's instead)");
        }
        if config.ports.http.is_none() && config.ports.https.is_none() {
            bail!("ports.http is -1 and ports.https is not set: the agent would serve no HTTP API");
        }
        config.data_dir = if self.dev { None } else { self.data_dir()? };
        for (key, value) in &file.node_meta {
            config.node_meta.insert(key.clone(), value.clone());
        }
        for pair in &self.node_meta {
            let (key, value) = pair
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("invalid -node-meta {pair:?}: expected key:value"))?;
            config.node_meta.insert(key.to_string(), value.to_string());
        }
        if !self.dev && self.data_dir.is_none() && file.data_dir.is_none() {
            bail!("data_dir cannot be empty (set -data-dir)");
        }
        Ok(config)
    }

    /// `-node-id` over `node_id`; else, with `disable_host_node_id = false`, the machine ID as a UUID.
    fn node_id(&self, file: &crate::config::process::ProcessFileConfig) -> anyhow::Result<Option<String>> {
        use crate::config::process::{host_node_id, validate_node_id};
        if let Some(id) = self.node_id.as_ref().or(file.node_id.as_ref()) {
            return validate_node_id(id).map(Some).map_err(|e| anyhow::anyhow!(e));
        }
        if self.disable_host_node_id.or(file.disable_host_node_id).unwrap_or(true) {
            return Ok(None);
        }
        let machine_id = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
        match host_node_id(&machine_id) {
            Some(id) => Ok(Some(id)),
            None => {
                bail!("disable_host_node_id is false but this host has no /etc/machine-id to derive a node ID from")
            }
        }
    }

    /// Logging, the pid file and the leave behaviour, flags over files over Consul's defaults (which depend
    /// on whether the agent is a server).
    pub fn process_settings(&self) -> anyhow::Result<ProcessSettings> {
        let file = crate::config::load(&self.config_files()?).map_err(|e| anyhow::anyhow!(e))?;
        let server = self.server || self.dev || file.server.unwrap_or(false);
        let process = &file.process;
        let mut rotation = log_file::Rotation::default();
        if let Some(text) = self.log_rotate_duration.as_ref().or(process.log_rotate_duration.as_ref()) {
            rotation.max_age = conclave_core::api::parse_go_duration(text)
                .map_err(|e| anyhow::anyhow!("invalid log_rotate_duration {text:?}: {e}"))?;
        }
        rotation.max_bytes = self.log_rotate_bytes.or(process.log_rotate_bytes).unwrap_or(0);
        rotation.max_files = self.log_rotate_max_files.or(process.log_rotate_max_files).unwrap_or(0);
        Ok(ProcessSettings {
            log: logging::LogSettings {
                level: self.log_level()?,
                json: self.log_json || process.log_json.unwrap_or(false),
                file: self.log_file.clone().or(process.log_file.clone()),
                rotation,
            },
            pid_file: self.pid_file.clone().or(process.pid_file.clone()),
            leave_on_terminate: process.leave_on_terminate.unwrap_or(!server),
            skip_leave_on_interrupt: process.skip_leave_on_interrupt.unwrap_or(server),
            ignored: process.ignored.clone(),
        })
    }

    fn data_dir(&self) -> anyhow::Result<Option<PathBuf>> {
        if self.data_dir.is_some() {
            return Ok(self.data_dir.clone());
        }
        let file = crate::config::load(&self.config_files()?).map_err(|e| anyhow::anyhow!(e))?;
        Ok(file.data_dir)
    }

    pub(crate) fn log_level(&self) -> anyhow::Result<String> {
        if let Some(level) = &self.log_level {
            return Ok(level.clone());
        }
        let file = crate::config::load(&self.config_files()?).map_err(|e| anyhow::anyhow!(e))?;
        Ok(file.log_level.unwrap_or_else(|| "info".to_string()))
    }

    fn open_store(&self) -> anyhow::Result<Arc<dyn Store>> {
        if self.dev {
            return Ok(Arc::new(MemStore::new()));
        }
        let dir = self.data_dir()?.expect("checked in node_config");
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create data dir {}", dir.display()))?;
        Ok(Arc::new(FjallStore::open(&dir)?))
    }
}
