//! `conclave monitor -log-level=<level> -log-json`: follows an agent's log (`/v1/agent/monitor`) and prints
//! each line until interrupted, as `consul monitor` does; the agent's own log level does not limit it.

use clap::Args;

use super::client::HttpFlags;

#[derive(Args, Debug)]
pub struct MonitorArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// Level of the lines to show: trace, debug, info, warn or err.
    #[arg(long = "log-level", default_value = "INFO")]
    pub log_level: String,
    /// Show the lines as JSON.
    #[arg(long = "log-json")]
    pub log_json: bool,
}

/// The monitor endpoint's path for a level and format.
pub fn monitor_path(level: &str, json: bool) -> String {
    let level: String = percent_encoding::utf8_percent_encode(level, percent_encoding::NON_ALPHANUMERIC).collect();
    match json {
        true => format!("/v1/agent/monitor?loglevel={level}&logjson"),
        false => format!("/v1/agent/monitor?loglevel={level}"),
    }
}

/// Prints the agent's lines until Ctrl-C (exit 0) or until the agent ends the stream (an error, as in
/// Consul: the agent has most likely stopped).
pub fn monitor(args: MonitorArgs) -> anyhow::Result<()> {
    let path = monitor_path(&args.log_level, args.log_json);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let follow = args.http.stream_lines(&path, |line| {
            println!("{line}");
            Ok(())
        });
        tokio::select! {
            result = follow => {
                result.map_err(|e| anyhow::anyhow!("Error starting monitor: {e:#}"))?;
                anyhow::bail!(
                    "Remote side ended the monitor! This usually means that the\nremote side has exited or crashed."
                )
            }
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_asks_for_the_level_and_json_as_consuls_client_does() {
        assert_eq!(monitor_path("debug", false), "/v1/agent/monitor?loglevel=debug");
        assert_eq!(monitor_path("INFO", true), "/v1/agent/monitor?loglevel=INFO&logjson");
        assert_eq!(monitor_path("a b", false), "/v1/agent/monitor?loglevel=a%20b");
    }
}
