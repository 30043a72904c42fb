//! `conclave event -name NAME [-node RE] [-service RE] [-tag RE] [payload]`, as `consul event`: fires a
//! user event through the local agent and prints `Event ID: <id>`.

use anyhow::{bail, Context};
use clap::Args;

use super::client::HttpFlags;
use super::kv::key_path;

#[derive(Args, Debug)]
pub struct EventArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// Name of the event.
    #[arg(long, default_value = "")]
    pub name: String,
    /// Regular expression to filter on node names.
    #[arg(long, default_value = "")]
    pub node: String,
    /// Regular expression to filter on service instances.
    #[arg(long, default_value = "")]
    pub service: String,
    /// Regular expression to filter on service tags. Must be used with -service.
    #[arg(long, default_value = "")]
    pub tag: String,
    /// The payload (at most one argument).
    pub payload: Vec<String>,
}

pub fn event(args: EventArgs) -> anyhow::Result<()> {
    if args.name.is_empty() {
        bail!("Event name must be specified");
    }
    let filters = [("node", &args.node), ("service", &args.service), ("tag", &args.tag)];
    for (what, filter) in filters {
        if !filter.is_empty() {
            regex_automata::meta::Regex::new(filter)
                .map_err(|e| anyhow::anyhow!("Failed to compile {what} filter regexp: {e}"))?;
        }
    }
    if !args.tag.is_empty() && args.service.is_empty() {
        bail!("Cannot provide tag filter without service filter.");
    }
    let payload = match args.payload.as_slice() {
        [] => Vec::new(),
        [one] => one.clone().into_bytes(),
        _ => bail!("Too many command line arguments."),
    };
    let mut path = format!("/v1/event/fire/{}", key_path(&args.name));
    let query: Vec<(&str, &str)> =
        filters.iter().filter(|(_, f)| !f.is_empty()).map(|(k, f)| (*k, f.as_str())).collect();
    if !query.is_empty() {
        path.push('?');
        path.push_str(&serde_urlencoded::to_string(&query).context("encoding the filters")?);
    }
    let response = args.http.ok("PUT", &path, payload).map_err(|e| anyhow::anyhow!("Error firing event: {e}"))?;
    let fired = response.json()?;
    let id = fired.get("ID").and_then(|v| v.as_str()).context("Error firing event: the answer has no ID")?;
    println!("Event ID: {id}");
    Ok(())
}
