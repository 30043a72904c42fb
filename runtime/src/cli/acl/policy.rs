//! `conclave acl policy create|read|update|delete|list`, with Consul's flags (command/acl/policy/*):
//! `-rules` takes the rules, `@file` or `-` for standard input; a policy is named by `-id` (a unique
//! prefix will do) or `-name`.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::{call, call_or, fail, format, load_data_source, print_out, resolve_id, segment, FormatFlag, POLICY_IDS};
use crate::cli::client::HttpFlags;

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Creates a policy.
    Create(CreateArgs),
    /// Reads a policy by ID or name.
    Read(PickArgs),
    /// Updates a policy, keeping what is not given unless `-no-merge`.
    Update(UpdateArgs),
    /// Deletes a policy.
    Delete(PickArgs),
    /// Lists policies.
    List(ListArgs),
}

pub fn run(command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Create(args) => create(args),
        PolicyCommand::Read(args) => read(args),
        PolicyCommand::Update(args) => update(args),
        PolicyCommand::Delete(args) => delete(args),
        PolicyCommand::List(args) => list(args),
    }
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[command(flatten)]
    pub format: FormatFlag,
    /// The new policy's name (required).
    #[arg(long, default_value = "")]
    pub name: String,
    #[arg(long, default_value = "")]
    pub description: String,
    /// A datacenter the policy is valid in; may be repeated.
    #[arg(long = "valid-datacenter")]
    pub valid_datacenter: Vec<String>,
    /// The rules: HCL or JSON, `@file` to read a file, `-` to read standard input.
    #[arg(long, default_value = "")]
    pub rules: String,
    #[arg(long)]
    pub meta: bool,
}

fn print_policy(policy: &Value, format: &FormatFlag, show_meta: bool) {
    print_out(&if format.is_json() { format::json(policy) } else { format::policy(policy, show_meta) });
}

fn create(args: CreateArgs) -> anyhow::Result<()> {
    if args.name.is_empty() {
        return fail("Missing require '-name' flag");
    }
    let rules = load_data_source(&args.rules).or_else(|e| fail(format!("Error loading rules: {e:#}")))?;
    let mut policy = json!({ "Name": args.name, "Description": args.description, "Rules": rules });
    if !args.valid_datacenter.is_empty() {
        policy["Datacenters"] = json!(args.valid_datacenter);
    }
    let created = call_or(&args.http, "PUT", "/v1/acl/policy", Some(&policy), "Failed to create new policy")?;
    print_policy(&created, &args.format, args.meta);
    Ok(())
}

#[derive(Args, Debug)]
pub struct PickArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[command(flatten)]
    pub format: FormatFlag,
    /// ID of the policy, or a unique prefix of one.
    #[arg(long, default_value = "")]
    pub id: String,
    /// Name of the policy.
    #[arg(long, default_value = "")]
    pub name: String,
    #[arg(long)]
    pub meta: bool,
}

/// The policy named by `-name`, read through `/v1/acl/policy/name/<name>`.
fn read_by_name(http: &HttpFlags, name: &str) -> anyhow::Result<Value> {
    if name.is_empty() {
        anyhow::bail!("No name specified");
    }
    call(http, "GET", &format!("/v1/acl/policy/name/{}", segment(name)), None)
        .map_err(|e| anyhow::anyhow!("Failed to find policy with name {name}: {e:#}"))
}

/// The full ID of the policy `-id` or `-name` names.
fn policy_id(http: &HttpFlags, id: &str, name: &str) -> anyhow::Result<String> {
    let found = if !id.is_empty() {
        resolve_id(http, id, &POLICY_IDS)
    } else {
        read_by_name(http, name).map(|p| p["ID"].as_str().unwrap_or("").to_string())
    };
    found.or_else(|e| fail(format!("Error determining policy ID: {e:#}")))
}

fn read(args: PickArgs) -> anyhow::Result<()> {
    if args.id.is_empty() && args.name.is_empty() {
        return fail("Must specify either the -id or -name parameters");
    }
    let policy = if !args.id.is_empty() {
        let id = policy_id(&args.http, &args.id, "")?;
        call(&args.http, "GET", &format!("/v1/acl/policy/{}", segment(&id)), None)
            .or_else(|e| fail(format!("Error reading policy \"id:{id}\": {e:#}")))?
    } else {
        read_by_name(&args.http, &args.name)
            .or_else(|e| fail(format!("Error reading policy \"name:{}\": {e:#}", args.name)))?
    };
    if policy.is_null() {
        return fail(format!("Error policy not found: {}", args.name));
    }
    print_policy(&policy, &args.format, args.meta);
    Ok(())
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[command(flatten)]
    pub format: FormatFlag,
    /// ID of the policy to update, or a unique prefix of one.
    #[arg(long, default_value = "")]
    pub id: String,
    /// The policy's (new) name; names the policy when `-id` is absent.
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    #[arg(long = "valid-datacenter")]
    pub valid_datacenter: Vec<String>,
    /// The rules: HCL or JSON, `@file` to read a file, `-` to read standard input.
    #[arg(long)]
    pub rules: Option<String>,
    /// Overwrite every field instead of merging with the current policy.
    #[arg(long = "no-merge")]
    pub no_merge: bool,
    #[arg(long)]
    pub meta: bool,
}

fn update(args: UpdateArgs) -> anyhow::Result<()> {
    let name = args.name.clone().unwrap_or_default();
    if args.id.is_empty() && name.is_empty() {
        return fail("Must specify either the -id or -name parameters");
    }
    let id = policy_id(&args.http, &args.id, &name)?;
    let rules = load_data_source(args.rules.as_deref().unwrap_or(""))
        .or_else(|e| fail(format!("Error loading data source: {e:#}")))?;
    let mut policy = if args.no_merge {
        json!({ "Name": name, "Description": args.description.clone().unwrap_or_default(), "Rules": rules })
    } else {
        let current = call(&args.http, "GET", &format!("/v1/acl/policy/{}", segment(&id)), None)
            .or_else(|e| fail(format!("Error reading policy {id:?}: {e:#}")))?;
        let mut merged = json!({
            "Name": current["Name"], "Description": current["Description"],
            "Datacenters": current["Datacenters"], "Rules": current["Rules"],
        });
        if let Some(name) = &args.name {
            merged["Name"] = name.clone().into();
        }
        if let Some(description) = &args.description {
            merged["Description"] = description.clone().into();
        }
        if args.rules.is_some() {
            merged["Rules"] = rules.into();
        }
        merged
    };
    policy["ID"] = id.clone().into();
    if !args.valid_datacenter.is_empty() || args.no_merge {
        policy["Datacenters"] = json!(args.valid_datacenter);
    }
    let path = format!("/v1/acl/policy/{}", segment(&id));
    let updated = call_or(&args.http, "PUT", &path, Some(&policy), &format!("Error updating policy {id:?}"))?;
    print_policy(&updated, &args.format, args.meta);
    Ok(())
}

fn delete(args: PickArgs) -> anyhow::Result<()> {
    if args.id.is_empty() && args.name.is_empty() {
        return fail("Must specify either the -id or -name parameters");
    }
    let id = policy_id(&args.http, &args.id, &args.name)?;
    let path = format!("/v1/acl/policy/{}", segment(&id));
    call_or(&args.http, "DELETE", &path, None, &format!("Error deleting policy {id:?}"))?;
    println!("Policy {id:?} deleted successfully");
    Ok(())
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[command(flatten)]
    pub format: FormatFlag,
    #[arg(long)]
    pub meta: bool,
}

fn list(args: ListArgs) -> anyhow::Result<()> {
    let policies = call_or(&args.http, "GET", "/v1/acl/policies", None, "Failed to retrieve the policy list")?;
    let entries = policies.as_array().cloned().unwrap_or_default();
    print_out(&if args.format.is_json() { format::json(&policies) } else { format::policy_list(&entries, args.meta) });
    Ok(())
}
