//! `conclave operator autopilot get-config | set-config | state`: Consul's commands and output over
//! `/v1/operator/autopilot/...`. `set-config` reads the configuration, changes the flags given and
//! writes it back with check-and-set on its `ModifyIndex`, as Consul's does.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::client::HttpFlags;

#[derive(Subcommand, Debug)]
pub enum AutopilotCommand {
    /// Displays the current autopilot configuration.
    GetConfig(super::commands::HttpOnly),
    /// Modifies the autopilot configuration.
    SetConfig(SetConfigArgs),
    /// Displays the autopilot's view of the servers.
    State(StateArgs),
}

#[derive(Args, Debug)]
pub struct SetConfigArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long = "cleanup-dead-servers")]
    pub cleanup_dead_servers: Option<bool>,
    #[arg(long = "last-contact-threshold")]
    pub last_contact_threshold: Option<String>,
    #[arg(long = "max-trailing-logs")]
    pub max_trailing_logs: Option<u64>,
    #[arg(long = "min-quorum")]
    pub min_quorum: Option<u32>,
    #[arg(long = "server-stabilization-time")]
    pub server_stabilization_time: Option<String>,
}

#[derive(Args, Debug)]
pub struct StateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// `pretty` (default) or `json`.
    #[arg(long, default_value = "pretty")]
    pub format: String,
}

const CONFIGURATION: &str = "/v1/operator/autopilot/configuration";

pub fn run(command: AutopilotCommand) -> anyhow::Result<()> {
    match command {
        AutopilotCommand::GetConfig(args) => print!("{}", config_text(&args.http.json(CONFIGURATION)?)),
        AutopilotCommand::SetConfig(args) => set_config(args)?,
        AutopilotCommand::State(args) => {
            let state = args.http.json("/v1/operator/autopilot/state")?;
            match args.format.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&state)?),
                "pretty" => print!("{}", state_text(&state)),
                other => bail!("Invalid format {other:?}: use pretty or json"),
            }
        }
    }
    Ok(())
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Consul's `get-config` output.
pub fn config_text(config: &Value) -> String {
    let mut out = String::new();
    for key in ["CleanupDeadServers", "LastContactThreshold", "MaxTrailingLogs", "MinQuorum", "ServerStabilizationTime"]
    {
        out.push_str(&format!("{key} = {}\n", text(&config[key])));
    }
    out.push_str(&format!("RedundancyZoneTag = {:?}\n", text(&config["RedundancyZoneTag"])));
    out.push_str(&format!("DisableUpgradeMigration = {}\n", text(&config["DisableUpgradeMigration"])));
    out.push_str(&format!("UpgradeVersionTag = {:?}\n", text(&config["UpgradeVersionTag"])));
    out
}

fn set_config(args: SetConfigArgs) -> anyhow::Result<()> {
    let mut config = args.http.json(CONFIGURATION)?;
    let index = config["ModifyIndex"].as_u64().context("the configuration has no ModifyIndex")?;
    let fields = config.as_object_mut().context("the configuration is not an object")?;
    if let Some(on) = args.cleanup_dead_servers {
        fields.insert("CleanupDeadServers".into(), on.into());
    }
    for (flag, key, value) in [
        ("-last-contact-threshold", "LastContactThreshold", &args.last_contact_threshold),
        ("-server-stabilization-time", "ServerStabilizationTime", &args.server_stabilization_time),
    ] {
        if let Some(value) = value {
            conclave_core::api::parse_go_duration(value).map_err(|e| anyhow::anyhow!("invalid {flag}: {e}"))?;
            fields.insert(key.into(), value.clone().into());
        }
    }
    if let Some(logs) = args.max_trailing_logs {
        fields.insert("MaxTrailingLogs".into(), logs.into());
    }
    if let Some(quorum) = args.min_quorum {
        fields.insert("MinQuorum".into(), quorum.into());
    }
    let body = serde_json::to_vec(&config)?;
    let answer = args.http.ok("PUT", &format!("{CONFIGURATION}?cas={index}"), body)?;
    match answer.json()? {
        Value::Bool(true) => println!("Configuration updated!"),
        _ => println!("Configuration could not be atomically updated, please try again"),
    }
    Ok(())
}

/// Consul's `operator autopilot state` output.
pub fn state_text(state: &Value) -> String {
    let mut out = String::new();
    out.push_str(&format!("Healthy:                      {}\n", text(&state["Healthy"])));
    out.push_str(&format!("Failure Tolerance:            {}\n", text(&state["FailureTolerance"])));
    out.push_str(&format!("Optimistic Failure Tolerance: {}\n", text(&state["OptimisticFailureTolerance"])));
    out.push_str(&format!("Leader:                       {}\n", text(&state["Leader"])));
    out.push_str("Voters:\n");
    for voter in state["Voters"].as_array().into_iter().flatten() {
        out.push_str(&format!("   {}\n", text(voter)));
    }
    out.push_str("\nServers:\n");
    for (id, server) in state["Servers"].as_object().into_iter().flatten() {
        out.push_str(&format!("   {id}\n"));
        for (label, key) in [
            ("Name", "Name"),
            ("Address", "Address"),
            ("Version", "Version"),
            ("Status", "Status"),
            ("Node Status", "NodeStatus"),
            ("Healthy", "Healthy"),
            ("Last Contact", "LastContact"),
            ("Last Term", "LastTerm"),
            ("Last Index", "LastIndex"),
            ("Stable Since", "StableSince"),
        ] {
            out.push_str(&format!("      {:<14}{}\n", format!("{label}:"), text(&server[key])));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_config_prints_consuls_lines() {
        let config = serde_json::json!({"CleanupDeadServers": true, "LastContactThreshold": "200ms", "MaxTrailingLogs": 250,
            "MinQuorum": 0, "ServerStabilizationTime": "10s", "RedundancyZoneTag": "", "DisableUpgradeMigration": false,
            "UpgradeVersionTag": ""});
        let out = config_text(&config);
        assert!(out.starts_with("CleanupDeadServers = true\nLastContactThreshold = 200ms\n"), "{out}");
        assert!(out.contains("RedundancyZoneTag = \"\"\n"), "{out}");
    }
}
