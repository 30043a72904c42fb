//! Client subcommands: each is one or two HTTP calls to an agent and Consul's output format.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::client::{columns, HttpFlags};

#[derive(Args, Debug)]
pub struct MembersArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// Show every tag of each member.
    #[arg(long)]
    pub detailed: bool,
    /// Show the WAN members (servers of every datacenter).
    #[arg(long)]
    pub wan: bool,
    /// Only members whose status matches this regular expression.
    #[arg(long)]
    pub status: Option<String>,
}

fn status_name(code: u64) -> &'static str {
    match code {
        1 => "alive",
        2 => "leaving",
        3 => "left",
        4 => "failed",
        _ => "none",
    }
}

pub fn members(args: MembersArgs) -> anyhow::Result<()> {
    let path = if args.wan { "/v1/agent/members?wan=1" } else { "/v1/agent/members" };
    let members = args.http.json(path)?;
    let mut rows = vec![if args.detailed {
        vec!["Node".into(), "Address".into(), "Status".into(), "Tags".into()]
    } else {
        ["Node", "Address", "Status", "Type", "Build", "Protocol", "DC", "Partition", "Segment"]
            .map(String::from)
            .to_vec()
    }];
    let mut entries: Vec<&Value> = members.as_array().context("members must be a list")?.iter().collect();
    entries.sort_by_key(|m| m["Name"].as_str().unwrap_or("").to_string());
    for member in entries {
        let tag = |k: &str| member["Tags"][k].as_str().unwrap_or("").to_string();
        let status = status_name(member["Status"].as_u64().unwrap_or(0));
        if let Some(wanted) = &args.status {
            if !status.contains(wanted.trim_matches(|c| c == '^' || c == '$')) {
                continue;
            }
        }
        let address = format!("{}:{}", member["Addr"].as_str().unwrap_or(""), member["Port"].as_u64().unwrap_or(0));
        if args.detailed {
            let tags = member["Tags"].as_object().map(|t| {
                t.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(",")
            });
            rows.push(vec![
                member["Name"].as_str().unwrap_or("").into(),
                address,
                status.into(),
                tags.unwrap_or_default(),
            ]);
        } else {
            let kind = if tag("role") == "consul" { "server" } else { "client" };
            let build = tag("build").split(':').next().unwrap_or("").to_string();
            rows.push(vec![
                member["Name"].as_str().unwrap_or("").into(),
                address,
                status.into(),
                kind.into(),
                build,
                tag("vsn"),
                tag("dc"),
                "default".into(),
                "<all>".into(),
            ]);
        }
    }
    print!("{}", columns(&rows));
    Ok(())
}

#[derive(Args, Debug)]
pub struct JoinArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// Join the WAN pool.
    #[arg(long)]
    pub wan: bool,
    /// LAN addresses of agents to join.
    #[arg(required = true)]
    pub addresses: Vec<String>,
}

pub fn join(args: JoinArgs) -> anyhow::Result<()> {
    let mut joined = 0;
    for address in &args.addresses {
        match args.http.ok("PUT", &format!("/v1/agent/join/{address}"), Vec::new()) {
            Ok(_) => joined += 1,
            Err(e) => eprintln!("Error joining address '{address}': {e}"),
        }
    }
    if joined == 0 {
        bail!("Failed to join any nodes.");
    }
    println!("Successfully joined cluster by contacting {joined} nodes.");
    Ok(())
}

#[derive(Args, Debug)]
pub struct HttpOnly {
    #[command(flatten)]
    pub http: HttpFlags,
}

pub fn leave(args: HttpOnly) -> anyhow::Result<()> {
    args.http.ok("PUT", "/v1/agent/leave", Vec::new())?;
    println!("Graceful leave complete");
    Ok(())
}

pub fn reload(args: HttpOnly) -> anyhow::Result<()> {
    args.http.ok("PUT", "/v1/agent/reload", Vec::new())?;
    println!("Configuration reload triggered");
    Ok(())
}

#[derive(Args, Debug)]
pub struct ForceLeaveArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// Remove the node from the member list at once.
    #[arg(long)]
    pub prune: bool,
    pub node: String,
}

pub fn force_leave(args: ForceLeaveArgs) -> anyhow::Result<()> {
    args.http.ok("PUT", &format!("/v1/agent/force-leave/{}", args.node), Vec::new())?;
    Ok(())
}

pub fn info(args: HttpOnly) -> anyhow::Result<()> {
    let info = args.http.json("/v1/agent/self")?;
    let config = &info["Config"];
    let raft = &info["Stats"]["raft"];
    println!("agent:");
    println!("\tserver = {}", config["Server"]);
    println!("\tversion = {}", config["Version"].as_str().unwrap_or(""));
    println!("consul:");
    println!("\tdatacenter = {}", config["Datacenter"].as_str().unwrap_or(""));
    println!("\tnode_name = {}", config["NodeName"].as_str().unwrap_or(""));
    println!("\tnode_id = {}", config["NodeID"].as_str().unwrap_or(""));
    println!("raft:");
    println!("\tstate = {}", raft["state"].as_str().unwrap_or("none"));
    println!("\tapplied_index = {}", raft["applied_index"].as_str().unwrap_or("0"));
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Lists the known datacenters.
    Datacenters(HttpOnly),
    /// Lists the nodes, or those running a service.
    Nodes(CatalogNodesArgs),
    /// Lists the services, or those on a node.
    Services(CatalogServicesArgs),
}

#[derive(Args, Debug)]
pub struct CatalogNodesArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// Only nodes running this service.
    #[arg(long)]
    pub service: Option<String>,
    #[arg(long)]
    pub detailed: bool,
}

#[derive(Args, Debug)]
pub struct CatalogServicesArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// Only services on this node.
    #[arg(long)]
    pub node: Option<String>,
    /// Show the tags of each service.
    #[arg(long)]
    pub tags: bool,
}

pub fn catalog(command: CatalogCommand) -> anyhow::Result<()> {
    match command {
        CatalogCommand::Datacenters(args) => {
            for dc in args.http.json("/v1/catalog/datacenters")?.as_array().context("list")? {
                println!("{}", dc.as_str().unwrap_or(""));
            }
        }
        CatalogCommand::Nodes(args) => {
            let nodes = match &args.service {
                Some(service) => args.http.json(&format!("/v1/catalog/service/{service}"))?,
                None => args.http.json("/v1/catalog/nodes")?,
            };
            let mut rows = vec![vec!["Node".to_string(), "ID".into(), "Address".into(), "DC".into()]];
            for node in nodes.as_array().context("list")? {
                let id = node["ID"].as_str().unwrap_or("");
                let short = if args.detailed { id.to_string() } else { id.chars().take(8).collect() };
                rows.push(vec![
                    node["Node"].as_str().unwrap_or("").into(),
                    short,
                    node["Address"].as_str().unwrap_or("").into(),
                    node["Datacenter"].as_str().unwrap_or("").into(),
                ]);
            }
            print!("{}", columns(&rows));
        }
        CatalogCommand::Services(args) => {
            let services: Vec<(String, Vec<String>)> = match &args.node {
                Some(node) => {
                    let found = args.http.json(&format!("/v1/catalog/node/{node}"))?;
                    let mut out: Vec<(String, Vec<String>)> = found["Services"]
                        .as_object()
                        .map(|m| {
                            m.values()
                                .map(|s| (s["Service"].as_str().unwrap_or("").to_string(), tags_of(&s["Tags"])))
                                .collect()
                        })
                        .unwrap_or_default();
                    out.sort();
                    out.dedup_by(|a, b| a.0 == b.0);
                    out
                }
                None => args
                    .http
                    .json("/v1/catalog/services")?
                    .as_object()
                    .context("object")?
                    .iter()
                    .map(|(name, tags)| (name.clone(), tags_of(tags)))
                    .collect(),
            };
            if args.tags {
                let rows: Vec<Vec<String>> =
                    services.into_iter().map(|(name, tags)| vec![name, tags.join(",")]).collect();
                print!("{}", columns(&rows));
            } else {
                for (name, _) in services {
                    println!("{name}");
                }
            }
        }
    }
    Ok(())
}

fn tags_of(value: &Value) -> Vec<String> {
    value.as_array().map(|a| a.iter().filter_map(|t| t.as_str().map(String::from)).collect()).unwrap_or_default()
}

#[derive(Subcommand, Debug)]
pub enum ServicesCommand {
    /// Registers the services of a definition file (JSON or HCL) with the local agent.
    Register(ServicesRegisterArgs),
    /// Deregisters a service from the local agent.
    Deregister(ServicesDeregisterArgs),
}

#[derive(Args, Debug)]
pub struct ServicesRegisterArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(required = true)]
    pub files: Vec<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct ServicesDeregisterArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// ID of the service to deregister.
    #[arg(long)]
    pub id: String,
}

pub fn services(command: ServicesCommand) -> anyhow::Result<()> {
    match command {
        ServicesCommand::Register(args) => {
            let config = crate::config::load(&args.files).map_err(|e| anyhow::anyhow!(e))?;
            if config.services.is_empty() {
                bail!("No services found in {:?}", args.files);
            }
            for (definition, _) in &config.services {
                let body = conclave_core::api::encode::service_definition_json(definition).to_string();
                args.http.ok("PUT", "/v1/agent/service/register", body.into_bytes())?;
                println!("Registered service: {}", definition.name);
            }
        }
        ServicesCommand::Deregister(args) => {
            args.http.ok("PUT", &format!("/v1/agent/service/deregister/{}", args.id), Vec::new())?;
            println!("Deregistered service: {}", args.id);
        }
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// Raft operations.
    #[command(subcommand)]
    Raft(RaftCommand),
    /// Autopilot: its configuration and its view of the servers.
    #[command(subcommand)]
    Autopilot(super::autopilot::AutopilotCommand),
}

#[derive(Subcommand, Debug)]
pub enum RaftCommand {
    /// Lists the Raft peers.
    ListPeers(HttpOnly),
    /// Removes a Raft peer by address or ID.
    RemovePeer(RemovePeerArgs),
    /// Offline, on a stopped server: makes the surviving servers the whole Raft configuration after a
    /// quorum was lost for good.
    Recover(super::raft_recover::RaftRecoverArgs),
    /// Hands leadership to the server with this ID (as `list-peers` shows it), or to the most caught-up one.
    TransferLeader(TransferLeaderArgs),
}

#[derive(Args, Debug)]
pub struct TransferLeaderArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long)]
    pub id: Option<String>,
}

#[derive(Args, Debug)]
pub struct RemovePeerArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long)]
    pub address: Option<String>,
    #[arg(long)]
    pub id: Option<String>,
}

pub fn operator(command: OperatorCommand) -> anyhow::Result<()> {
    let raft = match command {
        OperatorCommand::Raft(raft) => raft,
        OperatorCommand::Autopilot(autopilot) => return super::autopilot::run(autopilot),
    };
    match raft {
        RaftCommand::ListPeers(args) => {
            let configuration = args.http.json("/v1/operator/raft/configuration")?;
            let mut table =
                vec![["Node", "ID", "Address", "State", "Voter", "RaftProtocol"].map(String::from).to_vec()];
            for server in configuration["Servers"].as_array().context("Servers")? {
                table.push(vec![
                    server["Node"].as_str().unwrap_or("").into(),
                    server["ID"].as_str().unwrap_or("").into(),
                    server["Address"].as_str().unwrap_or("").into(),
                    if server["Leader"].as_bool() == Some(true) { "leader" } else { "follower" }.into(),
                    server["Voter"].as_bool().unwrap_or(false).to_string(),
                    server["ProtocolVersion"].as_str().unwrap_or("3").into(),
                ]);
            }
            print!("{}", columns(&table));
        }
        RaftCommand::RemovePeer(args) => {
            let query = match (&args.address, &args.id) {
                (Some(address), None) => format!("address={address}"),
                (None, Some(id)) => format!("id={id}"),
                _ => bail!("Must specify exactly one of -address or -id"),
            };
            args.http.ok("DELETE", &format!("/v1/operator/raft/peer?{query}"), Vec::new())?;
            println!("Removed peer with {query}");
        }
        RaftCommand::Recover(args) => return super::raft_recover::run(args),
        RaftCommand::TransferLeader(args) => {
            let path = match &args.id {
                Some(id) => format!(
                    "/v1/operator/raft/transfer-leader?id={}",
                    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
                ),
                None => "/v1/operator/raft/transfer-leader".to_string(),
            };
            let answer = args.http.ok("POST", &path, Vec::new())?.json()?;
            if answer["Success"].as_bool() != Some(true) {
                bail!("Failed to transfer leadership: {answer}");
            }
            println!("Success");
        }
    }
    Ok(())
}
