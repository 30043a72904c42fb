//! `conclave agent`: flags, their translation into a `NodeConfig`, and running the node on the production
//! Env until a signal stops it.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use crate::env::{FjallStore, MemStore, Store, TokioEnv};
use crate::node::{self, NodeConfig, Ports};

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
    /// Rejoin the cluster after a restart (a server restarted on its data dir always rejoins its Raft peers).
    #[arg(long)]
    pub rejoin: bool,
    #[arg(long)]
    pub datacenter: Option<String>,
    #[arg(long = "http-port")]
    pub http_port: Option<u16>,
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
    /// trace, debug, info, warn or err.
    #[arg(long = "log-level", default_value = "info")]
    pub log_level: String,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "conclave".to_string())
}

/// Resolves a `-join` address: `host` or `host:port`, LAN port by default (Consul's rule).
pub fn resolve_join(addr: &str, default_port: u16) -> anyhow::Result<SocketAddr> {
    if let Ok(sock) = addr.parse::<SocketAddr>() {
        return Ok(sock);
    }
    if let Ok(ip) = addr.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    let with_port = if addr.contains(':') {
        addr.to_string()
    } else {
        format!("{addr}:{default_port}")
    };
    with_port
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve join address {addr:?}"))?
        .next()
        .with_context(|| format!("join address {addr:?} resolves to nothing"))
}

impl AgentArgs {
    pub fn node_config(&self) -> anyhow::Result<NodeConfig> {
        let mut config = NodeConfig::new(&self.node.clone().unwrap_or_else(host_name));
        config.dev = self.dev;
        config.server = self.server || self.dev;
        if self.dev {
            config.bootstrap_expect = 1;
        } else if let Some(expect) = self.bootstrap_expect {
            if !self.server {
                bail!("bootstrap_expect can only be set on server agents (add -server)");
            }
            config.bootstrap_expect = expect;
        }
        if let Some(dc) = &self.datacenter {
            config.datacenter = dc.clone();
        }
        let defaults = Ports::default();
        config.ports = Ports {
            http: self.http_port.unwrap_or(defaults.http),
            server: self.server_port.unwrap_or(defaults.server),
            serf_lan: self.serf_lan_port.unwrap_or(defaults.serf_lan),
            serf_wan: self.serf_wan_port.unwrap_or(defaults.serf_wan),
            dns: self.dns_port.unwrap_or(defaults.dns),
        };
        if let Some(bind) = self.bind {
            config.bind_addr = bind;
        }
        config.advertise_addr = self.advertise.unwrap_or(config.bind_addr);
        if config.advertise_addr.is_unspecified() {
            bail!("-advertise is required when -bind is {} (peers need an address to reach this node)", config.bind_addr);
        }
        if let Some(client) = self.client {
            config.client_addr = client;
        }
        if let Some(interval) = &self.retry_interval {
            config.retry_interval = conclave_core::api::parse_go_duration(interval)
                .map_err(|e| anyhow::anyhow!("invalid -retry-interval {interval:?}: {e}"))?
                .max(Duration::from_millis(100));
        }
        for addr in self.join.iter().chain(&self.retry_join) {
            config.join.push(resolve_join(addr, config.ports.serf_lan)?);
        }
        if !self.dev && self.data_dir.is_none() {
            bail!("data_dir cannot be empty (set -data-dir)");
        }
        Ok(config)
    }

    fn open_store(&self) -> anyhow::Result<Arc<dyn Store>> {
        if self.dev {
            return Ok(Arc::new(MemStore::new()));
        }
        let dir = self.data_dir.as_ref().expect("checked in node_config");
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data dir {}", dir.display()))?;
        Ok(Arc::new(FjallStore::open(&dir.join("store"))?))
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
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

/// Runs the agent until SIGINT/SIGTERM. Returns an error (and the process exits 1) if it cannot start.
pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    init_logging(&args.log_level)?;
    let config = args.node_config()?;
    let store = args.open_store()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let env = TokioEnv::new(store.clone());
        let started = node::start_node(env, config).await?;
        tracing::info!(
            "Conclave agent running: node {} ({})",
            started.config.node_name,
            started.node_id
        );
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let result = tokio::select! {
            result = node::node_main(started.clone()) => result,
            _ = tokio::signal::ctrl_c() => Ok(()),
            _ = terminate.recv() => Ok(()),
        };
        tracing::info!("shutting down");
        let _ = started.raft.shutdown().await;
        store.sync()?;
        result
    })
}
