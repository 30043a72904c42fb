//! The resolved settings a node starts from: identity, addresses, ports, role, timings and DNS. The CLI
//! builds them from agent flags over configuration files; the simulator builds them by hand.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Consul's default ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    /// Plaintext HTTP; `None` when turned off (`ports.http = -1`).
    pub http: Option<u16>,
    /// HTTPS (`ports.https`, off unless set; 8501 by convention).
    pub https: Option<u16>,
    pub server: u16,
    pub serf_lan: u16,
    pub serf_wan: u16,
    pub dns: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports { http: Some(8500), https: None, server: 8300, serf_lan: 8301, serf_wan: 8302, dns: 8600 }
    }
}

/// Consul's defaults of `default_query_time` and `max_query_time`: how long a blocking query without
/// `?wait=` waits, and the longest any waits.
pub const QUERY_WAIT_DEFAULT: Duration = Duration::from_secs(300);
pub const QUERY_WAIT_MAX: Duration = Duration::from_secs(600);

/// Raft timings. Defaults are tuned for a LAN: heartbeats well under the election timeout, as Raft needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftTimings {
    pub heartbeat_interval: Duration,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// Build a snapshot (and compact the log) after this many applied entries.
    pub snapshot_after_entries: u64,
    /// Entries kept in the log behind a snapshot, so a follower that lags a little catches up from the
    /// log instead of receiving the whole snapshot.
    pub trailing_log_entries: u64,
}

impl Default for RaftTimings {
    fn default() -> Self {
        RaftTimings {
            heartbeat_interval: Duration::from_millis(100),
            election_timeout_min: Duration::from_millis(500),
            election_timeout_max: Duration::from_millis(1000),
            snapshot_after_entries: 5000,
            trailing_log_entries: 1000,
        }
    }
}

/// Planted bugs, off in every real deployment. They exist so a test can prove the simulator's checker
/// catches what they break; nothing turns them on except a simulator run that names them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultSwitches {
    /// Serve default and `?consistent` reads from local state, skipping the read-index round.
    pub local_reads: bool,
    /// Acknowledge a write as soon as it is proposed, before it commits.
    pub ack_before_commit: bool,
    /// Expire sessions after half their TTL instead of Consul's twice their TTL.
    pub session_ttl_early: bool,
    /// Leave check results to the periodic full anti-entropy pass instead of pushing them as they change.
    pub lazy_check_sync: bool,
    /// Authorize a write against this server's local copy of the ACL table and send it on marked as
    /// already authorized, instead of letting the state check it where it applies.
    pub acl_check_locally: bool,
    /// Tell openraft a log append is durable without syncing it (the entries sit in the page cache
    /// until some later sync, and a crash before it loses them).
    pub skip_log_fsync: bool,
}

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub node_name: String,
    pub datacenter: String,
    pub server: bool,
    /// Servers to wait for before bootstrapping Raft; 0 means "do not bootstrap by count".
    pub bootstrap_expect: u32,
    /// `-dev`: a single server that bootstraps itself at once.
    pub dev: bool,
    pub bind_addr: IpAddr,
    /// The address peers and the catalog know this node by (defaults to `bind_addr`).
    pub advertise_addr: IpAddr,
    pub client_addr: IpAddr,
    pub ports: Ports,
    /// LAN addresses to contact at start (`-join`), already resolved to socket addresses.
    pub join: Vec<SocketAddr>,
    /// `-rejoin`: also join the LAN members remembered in the data dir.
    pub rejoin: bool,
    pub retry_interval: Duration,
    pub raft: RaftTimings,
    pub faults: FaultSwitches,
    /// Deadline for a write or a read barrier to find a leader before answering 500.
    pub request_timeout: Duration,
    /// The DNS domain (`-domain`), shown in `/v1/agent/self`.
    pub domain: String,
    pub node_meta: std::collections::BTreeMap<String, String>,
    /// Serve the web UI at `/ui/`.
    pub ui: bool,
    /// `-config-dir` directories and `-config-file` files, scanned again by `reload`.
    pub config_dirs: Vec<std::path::PathBuf>,
    pub config_files: Vec<std::path::PathBuf>,
    /// Run script checks (`-enable-script-checks`); without it they are refused at registration.
    pub enable_script_checks: bool,
    /// The watches of the configuration files, run by the agent.
    pub watches: Vec<super::watches::WatchSpec>,
    /// An unchanged check status with a new output is pushed to the catalog at most this often.
    pub check_update_interval: Duration,
    /// `default_query_time`: a blocking query without `?wait=` waits this long.
    pub query_wait_default: Duration,
    /// `max_query_time`: no blocking query waits longer, whatever its `?wait=`.
    pub query_wait_max: Duration,
    /// `recursors`, `-recursor` and `dns_config`.
    pub dns: crate::config::dns::DnsSettings,
    /// The `autopilot` block: what the first leader stores as the replicated autopilot configuration.
    pub autopilot: conclave_core::autopilot::AutopilotConfig,
    /// The `acl` block (off by default).
    pub acl: crate::config::acl::AclSettings,
    /// TLS on server RPC and HTTPS, `auto_encrypt`, gossip encryption.
    pub security: crate::config::tls::SecuritySettings,
    /// The `telemetry` block: metric names and sinks.
    pub telemetry: crate::config::telemetry::TelemetrySettings,
    /// The data dir, where an operator may leave Consul's `acl-bootstrap-reset` file (None: `-dev`, or
    /// the simulator, whose disks hold only the store).
    pub data_dir: Option<std::path::PathBuf>,
    /// `node_id` / `-node-id` (or the host-based ID): the node ID to use, which must match the one the data
    /// dir holds; `None` keeps the data dir's or makes a random one.
    pub node_id: Option<String>,
}

impl NodeConfig {
    pub fn new(node_name: &str) -> NodeConfig {
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        NodeConfig {
            node_name: node_name.to_string(),
            datacenter: "dc1".to_string(),
            server: true,
            bootstrap_expect: 0,
            dev: false,
            bind_addr: localhost,
            advertise_addr: localhost,
            client_addr: localhost,
            ports: Ports::default(),
            join: Vec::new(),
            rejoin: false,
            retry_interval: Duration::from_secs(1),
            raft: RaftTimings::default(),
            faults: FaultSwitches::default(),
            request_timeout: Duration::from_secs(7),
            domain: "consul.".to_string(),
            node_meta: std::collections::BTreeMap::new(),
            ui: false,
            config_dirs: Vec::new(),
            config_files: Vec::new(),
            enable_script_checks: false,
            watches: Vec::new(),
            check_update_interval: Duration::from_millis(
                conclave_core::agent::check_monitor::CHECK_UPDATE_INTERVAL_DEFAULT_MS,
            ),
            query_wait_default: QUERY_WAIT_DEFAULT,
            query_wait_max: QUERY_WAIT_MAX,
            dns: crate::config::dns::DnsSettings::default(),
            autopilot: conclave_core::autopilot::AutopilotConfig::default(),
            acl: crate::config::acl::AclSettings::default(),
            security: crate::config::tls::SecuritySettings::default(),
            telemetry: crate::config::telemetry::TelemetrySettings {
                hostname: node_name.to_string(),
                ..Default::default()
            },
            data_dir: None,
            node_id: None,
        }
    }

    pub fn rpc_addr(&self) -> SocketAddr {
        SocketAddr::new(self.advertise_addr, self.ports.server)
    }

    /// Where plaintext HTTP is served, unless it is turned off.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.ports.http.map(|port| SocketAddr::new(self.client_addr, port))
    }

    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.ports.https.map(|port| SocketAddr::new(self.client_addr, port))
    }

    /// The name a server's certificate must hold under `verify_server_hostname`: `server.<dc>.<domain>`.
    pub fn server_tls_name(&self) -> String {
        format!("server.{}.{}", self.datacenter, self.domain.trim_end_matches('.'))
    }

    pub fn lan_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind_addr, self.ports.serf_lan)
    }
}
