//! The agent process: its logger, its pid file, and Consul's signals. SIGHUP reloads what can be
//! reloaded (services, checks and the log level) and logs the settings that need a restart; SIGTERM
//! leaves the cluster first when `leave_on_terminate` (default: client agents yes, servers no); SIGINT
//! leaves unless `skip_leave_on_interrupt` (default: client agents no, servers yes).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};

use super::logging::{self, LogHandle, LogSettings};
use super::AgentArgs;
use crate::config::NodeConfig;
use crate::env::{Store, TokioEnv};
use crate::node::Node;

/// What the process does beside running the node.
#[derive(Clone, Debug, Default)]
pub struct ProcessSettings {
    pub log: LogSettings,
    pub pid_file: Option<PathBuf>,
    pub leave_on_terminate: bool,
    pub skip_leave_on_interrupt: bool,
    /// Keys of the configuration files that cannot apply, logged once at start.
    pub ignored: Vec<String>,
}

/// The pid file: written once the agent has started, removed when the process ends.
struct PidFile(PathBuf);

impl PidFile {
    fn write(path: &Path) -> anyhow::Result<PidFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(path, std::process::id().to_string())
            .with_context(|| format!("cannot write pid file {}", path.display()))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Why the agent stopped.
enum Stop {
    Ended(anyhow::Result<()>),
    Terminate,
    Interrupt,
}

/// Runs the agent until it leaves, fails or is stopped by a signal.
pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    let process = args.process_settings()?;
    let log = logging::init(&process.log)?;
    install_level_reloader(args.clone(), log);
    for key in &process.ignored {
        tracing::info!("configuration key ignored: {key}");
    }
    let config = args.node_config()?;
    let store = args.open_store()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run_node(args, process, config, store))
}

/// A reload (SIGHUP, `conclave reload`, `/v1/agent/reload`) reads the level again, flags over files, and
/// applies it to the agent's own output; the monitor stream keeps its readers' levels.
fn install_level_reloader(args: AgentArgs, log: LogHandle) {
    crate::env::logs::install_level_reloader(move || {
        let level = args.log_level().map_err(|e| format!("{e:#}"))?;
        log.set_level(&level).map_err(|e| format!("{e:#}"))?;
        tracing::info!("log level is {level}");
        Ok(())
    });
}

async fn run_node(
    args: AgentArgs,
    process: ProcessSettings,
    config: NodeConfig,
    store: Arc<dyn Store>,
) -> anyhow::Result<()> {
    // Consul's peers.json: applied before Raft reads the store, once (the file is deleted).
    if let (true, Some(dir)) = (config.server && !args.dev, args.data_dir()?) {
        crate::node::raft_recover::apply_peers_file(&dir, store.clone()).await?;
    }
    let env = TokioEnv::new(store.clone());
    let node = crate::agent::start(env, config).await?;
    tracing::info!("Conclave agent running: node {} ({})", node.config.node_name, node.node_id);
    let _pid_file = process.pid_file.as_deref().map(PidFile::write).transpose()?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let running = crate::agent::run(node.clone());
    tokio::pin!(running);
    let stop = loop {
        tokio::select! {
            result = &mut running => break Stop::Ended(result),
            _ = terminate.recv() => break Stop::Terminate,
            _ = interrupt.recv() => break Stop::Interrupt,
            _ = hangup.recv() => reload(&args, &node).await,
        }
    };
    let result = match stop {
        Stop::Ended(result) => result,
        Stop::Terminate => {
            tracing::info!("caught SIGTERM");
            if process.leave_on_terminate {
                crate::node::leave::leave_cluster(&node).await;
            }
            Ok(())
        }
        Stop::Interrupt => {
            tracing::info!("caught SIGINT");
            if !process.skip_leave_on_interrupt {
                crate::node::leave::leave_cluster(&node).await;
            }
            Ok(())
        }
    };
    tracing::info!("shutting down");
    if let Some(raft) = &node.raft {
        let _ = raft.shutdown().await;
    }
    store.sync()?;
    result
}

/// SIGHUP: services and checks from the files, the log level (through `node::reload_config`, as the other
/// reload paths); the rest needs a restart, and the log says which settings changed without taking effect
/// (names only: values may be secrets).
async fn reload(args: &AgentArgs, node: &Arc<Node<TokioEnv>>) {
    tracing::info!("caught SIGHUP, reloading configuration");
    let fresh = match args.node_config() {
        Ok(fresh) => fresh,
        Err(e) => {
            tracing::error!("reload failed, the configuration is unchanged: {e:#}");
            return;
        }
    };
    if let Err(e) = crate::node::reload_config(node).await {
        tracing::error!("reload failed: {e}");
    }
    let restart_needed = needs_restart(&node.config, &fresh);
    if !restart_needed.is_empty() {
        tracing::warn!(
            "reload: these settings changed and take effect only after a restart: {}",
            restart_needed.join(", ")
        );
    }
}

/// The settings that differ between the running configuration and a fresh read, by name.
fn needs_restart(running: &NodeConfig, fresh: &NodeConfig) -> Vec<&'static str> {
    let checks: [(&'static str, bool); 15] = [
        ("datacenter", running.datacenter != fresh.datacenter),
        ("node_name", running.node_name != fresh.node_name),
        ("server", running.server != fresh.server),
        ("bind_addr", running.bind_addr != fresh.bind_addr),
        ("advertise_addr", running.advertise_addr != fresh.advertise_addr),
        ("client_addr", running.client_addr != fresh.client_addr),
        ("ports", running.ports != fresh.ports),
        ("domain", running.domain != fresh.domain),
        ("node_meta", running.node_meta != fresh.node_meta),
        ("ui", running.ui != fresh.ui),
        ("acl", running.acl != fresh.acl),
        ("tls / encrypt", running.security != fresh.security),
        ("telemetry", running.telemetry != fresh.telemetry),
        ("default_query_time", running.query_wait_default != fresh.query_wait_default),
        ("max_query_time", running.query_wait_max != fresh.query_wait_max),
    ];
    checks.into_iter().filter(|(_, changed)| *changed).map(|(name, _)| name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_file_holds_the_pid_and_goes_away_at_exit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/conclave.pid");
        let pid_file = PidFile::write(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), std::process::id().to_string());
        drop(pid_file);
        assert!(!path.exists());
    }

    #[test]
    fn a_reload_names_the_settings_that_need_a_restart() {
        let running = NodeConfig::new("n1");
        let mut fresh = running.clone();
        assert!(needs_restart(&running, &fresh).is_empty());
        fresh.datacenter = "dc2".into();
        fresh.ports.dns = 53;
        assert_eq!(needs_restart(&running, &fresh), ["datacenter", "ports"]);
    }
}
