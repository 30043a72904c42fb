//! The agent's log: to stderr, and also to `-log-file` when set; plain text or JSON (`-log-json`); its
//! level set by `-log-level` and changed by a reload (SIGHUP, `conclave reload`, `/v1/agent/reload`)
//! without restarting. Beside that output, and filtered apart from it, the log feeds the stream that
//! `/v1/agent/monitor` serves (`env::logs`), so a monitor at `debug` sees debug lines while the agent's own
//! output stays at `info`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{bail, Context};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Layer, Registry};

use super::log_file::{LogFile, Rotation};
use crate::env::logs::{MonitorFilter, MonitorLayer};

/// Where and how the agent logs.
#[derive(Clone, Debug, Default)]
pub struct LogSettings {
    pub level: String,
    pub json: bool,
    pub file: Option<PathBuf>,
    pub rotation: Rotation,
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Changes the level of the running log.
pub struct LogHandle {
    filter: reload::Handle<EnvFilter, Registry>,
}

impl LogHandle {
    pub fn set_level(&self, level: &str) -> anyhow::Result<()> {
        self.filter.reload(filter_for(level)?).context("changing the log level")
    }
}

/// Consul's level names; openraft's chatter is kept to real errors unless debugging.
fn filter_for(level: &str) -> anyhow::Result<EnvFilter> {
    let level = match level.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" => "warn",
        "err" | "error" => "error",
        other => bail!("invalid -log-level {other:?} (trace, debug, info, warn, err)"),
    };
    Ok(if matches!(level, "trace" | "debug") {
        EnvFilter::new(level)
    } else {
        EnvFilter::new(format!("{level},openraft=error,openraft::replication=off,openraft::core::raft_core=off"))
    })
}

fn layer_to<W>(writer: W, json: bool, ansi: bool) -> BoxedLayer
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    match json {
        true => fmt::layer().json().with_ansi(false).with_writer(writer).boxed(),
        false => fmt::layer().with_ansi(ansi).with_writer(writer).boxed(),
    }
}

/// Installs the process's logger: its outputs behind the reloadable level filter, and the monitor stream
/// behind its own filter (per-layer filters, so neither limits the other).
pub fn init(settings: &LogSettings) -> anyhow::Result<LogHandle> {
    let (filter, handle) = reload::Layer::new(filter_for(&settings.level)?);
    let mut layers: Vec<BoxedLayer> = vec![layer_to(std::io::stderr, settings.json, std::io::stderr().is_terminal())];
    if let Some(path) = &settings.file {
        let file = LogFile::open(path, settings.rotation.clone())
            .with_context(|| format!("cannot open log file {}", path.display()))?;
        layers.push(layer_to(Mutex::new(file), settings.json, false));
    }
    tracing_subscriber::registry()
        .with(layers.with_filter(filter))
        .with(MonitorLayer.with_filter(MonitorFilter))
        .init();
    Ok(LogHandle { filter: handle })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consul_level_names_are_accepted_and_others_refused() {
        for level in ["trace", "DEBUG", "info", "warn", "err", "error"] {
            assert!(filter_for(level).is_ok(), "{level}");
        }
        assert!(filter_for("loud").unwrap_err().to_string().contains("invalid -log-level"));
    }
}
