//! `conclave agent`: flags, their translation into a `NodeConfig`, and running the node on the production
//! Env until a signal stops it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use crate::config::{NodeConfig, Ports};
use crate::env::join_address::resolve_join;
use crate::env::{FjallStore, MemStore, Store, TokioEnv};

#[derive(Args, Debug, Default)]
pub struct AgentArgs {
    /// Run in server mode (keeps Raft state).
    #[arg(long)]
    pub server: bool,
    /// Servers to wait for before bootstrapping the cluster.
    #[arg(long = "bootstrap-expect")]
    pub bootstrap_expect: Option<u32>,
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
        let expect = self.bootstrap_expect.or(file.bootstrap_expect);
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
        config.rejoin = self.rejoin;
        config.watches = file.watches.clone();
        config.enable_script_checks =
            self.enable_script_checks || self.enable_local_script_checks || file.enable_script_checks.unwrap_or(false);
        if let Some(interval) = &file.check_update_interval {
            config.check_update_interval = conclave_core::api::parse_go_duration(interval)
                .map_err(|e| anyhow::anyhow!("invalid check_update_interval {interval:?}: {e}"))?;
        }
        if let Some(domain) = self.domain.clone().or(file.domain.clone()) {
            config.domain = domain;
        }
        config.dns = crate::config::dns::settings(&file.dns, &self.recursor).map_err(|e| anyhow::anyhow!(e))?;
        config.acl = file.acl.clone();
        let mut security = file.security.clone();
        if let Some(key) = &self.encrypt {
            security.encrypt = Some(key.clone()).filter(|k| !k.is_empty());
        }
        config.security = crate::config::tls::resolve(&security, config.server).map_err(|e| anyhow::anyhow!(e))?;
        if config.ports.https.is_some() && !config.security.https.has_certificate() {
            bail!("ports.https is set but no cert_file and key_file are configured for HTTPS");
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

    fn data_dir(&self) -> anyhow::Result<Option<PathBuf>> {
        if self.data_dir.is_some() {
            return Ok(self.data_dir.clone());
        }
        let file = crate::config::load(&self.config_files()?).map_err(|e| anyhow::anyhow!(e))?;
        Ok(file.data_dir)
    }

    fn log_level(&self) -> anyhow::Result<String> {
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

fn init_logging(level: &str) -> anyhow::Result<()> {
    let level = match level.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" => "warn",
        "err" | "error" => "error",
        other => bail!("invalid -log-level {other:?} (trace, debug, info, warn, err)"),
    };
    // openraft reports every election at info and every unreachable peer as an error on each retry; keep
    // it to real errors unless debugging, and leave peer reachability to our own logs.
    let filter = if matches!(level, "trace" | "debug") {
        tracing_subscriber::EnvFilter::new(level)
    } else {
        tracing_subscriber::EnvFilter::new(format!(
            "{level},openraft=error,openraft::replication=off,openraft::core::raft_core=off"
        ))
    };
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    Ok(())
}

/// Runs the agent until SIGINT/SIGTERM. Returns an error (and the process exits 1) if it cannot start.
pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    init_logging(&args.log_level()?)?;
    let config = args.node_config()?;
    let store = args.open_store()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let env = TokioEnv::new(store.clone());
        let started = crate::agent::start(env, config).await?;
        tracing::info!("Conclave agent running: node {} ({})", started.config.node_name, started.node_id);
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let result = tokio::select! {
            result = crate::agent::run(started.clone()) => result,
            _ = tokio::signal::ctrl_c() => Ok(()),
            _ = terminate.recv() => Ok(()),
        };
        tracing::info!("shutting down");
        if let Some(raft) = &started.raft {
            let _ = raft.shutdown().await;
        }
        store.sync()?;
        result
    })
}
