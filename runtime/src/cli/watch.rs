//! `conclave watch -type TYPE [type flags] [handler...]`, as `consul watch`: a blocking-query loop over
//! the agent's HTTP API that prints the data (indented JSON) each time it changes, or runs the handler
//! with the data on stdin — through `sh -c` unless `-shell=false`.

use anyhow::Context;
use clap::Args;
use serde_json::{Map, Value};

use super::client::HttpFlags;
use crate::agent::watches::{handler, plan};
use crate::config::watches::{parse_kind, WatchHandler, WatchSpec};

#[derive(Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// Type of watch: key, keyprefix, services, nodes, service, checks or event.
    #[arg(long = "type", default_value = "")]
    pub kind: String,
    /// Key to watch (type key).
    #[arg(long)]
    pub key: Option<String>,
    /// Key prefix to watch (type keyprefix).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Service to watch (types service and checks).
    #[arg(long)]
    pub service: Option<String>,
    /// Service tags to filter on (type service); may be repeated.
    #[arg(long)]
    pub tag: Vec<String>,
    /// Only passing instances (type service).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub passingonly: Option<bool>,
    /// Check state to filter on (type checks).
    #[arg(long)]
    pub state: Option<String>,
    /// Event name to filter on (type event).
    #[arg(long)]
    pub name: Option<String>,
    /// Read from any server, not only the leader.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub stale: Option<bool>,
    /// Run the handler through a shell (the default); `-shell=false` runs it directly.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true")]
    pub shell: bool,
    /// The handler command; without one the data is printed.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub handler: Vec<String>,
}

/// The watch the flags describe, refused as Consul refuses it.
pub fn spec(args: &WatchArgs) -> anyhow::Result<WatchSpec> {
    let mut params = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            params.insert(key.to_string(), value);
        }
    };
    put("type", Some(Value::from(args.kind.clone())).filter(|_| !args.kind.is_empty()));
    put("key", args.key.clone().map(Value::from));
    put("prefix", args.prefix.clone().map(Value::from));
    put("service", args.service.clone().map(Value::from));
    put("tag", (!args.tag.is_empty()).then(|| Value::from(args.tag.clone())));
    put("passingonly", args.passingonly.map(Value::from));
    put("state", args.state.clone().map(Value::from));
    put("name", args.name.clone().map(Value::from));
    let kind = parse_kind(&mut params).map_err(|e| anyhow::anyhow!("Failed to parse watch: {e}"))?;
    if let Some(extra) = params.keys().next() {
        anyhow::bail!("Failed to parse watch: Invalid parameters: [{extra}] for type {}", args.kind);
    }
    let handler = match (args.handler.as_slice(), args.shell) {
        ([], _) => WatchHandler::Print,
        (command, true) => WatchHandler::Shell(command.join(" ")),
        (command, false) => WatchHandler::Args(command.to_vec()),
    };
    let datacenter = args.http.datacenter.clone();
    Ok(WatchSpec { kind, datacenter, token: None, stale: args.stale.unwrap_or(false), handler })
}

pub fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let spec = spec(&args)?;
    // The datacenter is already in the watch's query.
    let flags = HttpFlags { datacenter: None, ..args.http.clone() };
    let fetch: plan::Fetch = Box::new(move |path| {
        let flags = flags.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || flags.call("GET", &path, Vec::new()))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("{e:#}"))
        })
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let handler_kind = spec.handler.clone();
    runtime.block_on(plan::run(spec, fetch, move |index, data| {
        let handler_kind = handler_kind.clone();
        async move { handler::invoke(&handler_kind, index, &data).await }
    }));
    Err(anyhow::anyhow!("watch ended")).context("Error watching")
}
