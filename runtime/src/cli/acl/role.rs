//! `conclave acl role create|read|update|delete|list`, with Consul's flags (command/acl/role/*). A role
//! is named by `-id` (a unique prefix will do) or `-name`; `update` adds to the role's links unless
//! `-no-merge`.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::token::LinkFlags;
use super::token_update::{apply, Change};
use super::{call, call_or, fail, format, print_out, resolve_id, segment, FormatFlag, ROLE_IDS};
use crate::cli::client::HttpFlags;

#[derive(Subcommand, Debug)]
pub enum RoleCommand {
    /// Creates a role.
    Create(CreateArgs),
    /// Reads a role by ID or name.
    Read(PickArgs),
    /// Updates a role.
    Update(UpdateArgs),
    /// Deletes a role.
    Delete(PickArgs),
    /// Lists roles.
    List(ListArgs),
}

pub fn run(command: RoleCommand) -> anyhow::Result<()> {
    match command {
        RoleCommand::Create(args) => create(args),
        RoleCommand::Read(args) => read(args),
        RoleCommand::Update(args) => update(args),
        RoleCommand::Delete(args) => delete(args),
        RoleCommand::List(args) => list(args),
    }
}

fn print_role(role: &Value, format: &FormatFlag, show_meta: bool) {
    print_out(&if format.is_json() { format::json(role) } else { format::role(role, show_meta) });
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[command(flatten)]
    pub format: FormatFlag,
    #[command(flatten)]
    pub links: LinkFlags,
    /// The new role's name (required).
    #[arg(long, default_value = "")]
    pub name: String,
    #[arg(long, default_value = "")]
    pub description: String,
    #[arg(long)]
    pub meta: bool,
}

/// The links of a role as the API takes them; empty kinds are left out.
fn role_links(http: &HttpFlags, links: &LinkFlags, role: &mut Value) -> anyhow::Result<()> {
    let kinds = [
        ("Policies", super::policy_links(http, &links.policy_name, &links.policy_id)?),
        ("ServiceIdentities", super::service_identities(&links.service_identity)?),
        ("NodeIdentities", super::node_identities(&links.node_identity)?),
    ];
    for (key, values) in kinds {
        if !values.is_empty() {
            role[key] = Value::Array(values);
        }
    }
    Ok(())
}

fn create(args: CreateArgs) -> anyhow::Result<()> {
    if args.name.is_empty() {
        return fail("Missing required '-name' flag");
    }
    let links = &args.links;
    if links.policy_name.is_empty()
        && links.policy_id.is_empty()
        && links.service_identity.is_empty()
        && links.node_identity.is_empty()
    {
        return fail("Cannot create a role without specifying -policy-name, -policy-id, -service-identity, or -node-identity at least once");
    }
    let mut role = json!({ "Name": args.name, "Description": args.description });
    role_links(&args.http, links, &mut role)?;
    let created = call_or(&args.http, "PUT", "/v1/acl/role", Some(&role), "Failed to create new role")?;
    print_role(&created, &args.format, args.meta);
    Ok(())
}

#[derive(Args, Debug)]
pub struct PickArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[command(flatten)]
    pub format: FormatFlag,
    /// ID of the role, or a unique prefix of one.
    #[arg(long, default_value = "")]
    pub id: String,
    /// Name of the role.
    #[arg(long, default_value = "")]
    pub name: String,
    #[arg(long)]
    pub meta: bool,
}

impl PickArgs {
    /// The ID and body of the role `-id` or `-name` names; Consul's "Role not found" error when there is none.
    fn read(&self) -> anyhow::Result<(String, Value)> {
        if !self.id.is_empty() {
            let id = resolve_id(&self.http, &self.id, &ROLE_IDS)
                .or_else(|e| fail(format!("Error determining role ID: {e:#}")))?;
            let role = call(&self.http, "GET", &format!("/v1/acl/role/{}", segment(&id)), None)
                .or_else(|e| fail(format!("Error reading role {id:?}: {e:#}")))?;
            return if role.is_null() { fail(format!("Role not found with ID {id:?}")) } else { Ok((id, role)) };
        }
        let path = format!("/v1/acl/role/name/{}", segment(&self.name));
        let role = call(&self.http, "GET", &path, None)
            .or_else(|e| fail(format!("Error reading role {:?}: {e:#}", self.name)))?;
        match role["ID"].as_str() {
            Some(id) => Ok((id.to_string(), role.clone())),
            None => fail(format!("Role not found with name {:?}", self.name)),
        }
    }
}

fn read(args: PickArgs) -> anyhow::Result<()> {
    if args.id.is_empty() && args.name.is_empty() {
        return fail("Must specify either the -id or -name parameters");
    }
    let (_, role) = args.read()?;
    print_role(&role, &args.format, args.meta);
    Ok(())
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[command(flatten)]
    pub format: FormatFlag,
    #[command(flatten)]
    pub links: LinkFlags,
    /// ID of the role to update, or a unique prefix of one (required).
    #[arg(long, default_value = "")]
    pub id: String,
    /// The role's new name.
    #[arg(long, default_value = "")]
    pub name: String,
    #[arg(long, default_value = "")]
    pub description: String,
    /// Replace every field instead of adding to the current role.
    #[arg(long = "no-merge")]
    pub no_merge: bool,
    #[arg(long)]
    pub meta: bool,
}

fn update(args: UpdateArgs) -> anyhow::Result<()> {
    if args.id.is_empty() {
        return fail("Cannot update a role without specifying the -id parameter");
    }
    let id =
        resolve_id(&args.http, &args.id, &ROLE_IDS).or_else(|e| fail(format!("Error determining role ID: {e:#}")))?;
    let path = format!("/v1/acl/role/{}", segment(&id));
    // Read the current role in both modes so that a missing role fails clearly, as Consul does.
    let current =
        call(&args.http, "GET", &path, None).or_else(|e| fail(format!("Error when retrieving current role: {e:#}")))?;
    if current.is_null() {
        return fail(format!("Role not found with ID {id:?}"));
    }
    let links = &args.links;
    let policies = super::policy_links(&args.http, &links.policy_name, &links.policy_id)?;
    let services = super::service_identities(&links.service_identity)?;
    let nodes = super::node_identities(&links.node_identity)?;
    let mut role = if args.no_merge {
        json!({ "Name": args.name, "Description": args.description })
    } else {
        let mut role = current;
        if !args.name.is_empty() {
            role["Name"] = args.name.clone().into();
        }
        if !args.description.is_empty() {
            role["Description"] = args.description.clone().into();
        }
        role
    };
    role["ID"] = id.clone().into();
    let how = if args.no_merge { Change::Replace } else { Change::Append };
    apply(&mut role, "Policies", how, policies, |a, b| {
        (b["ID"].is_string() && a["ID"] == b["ID"]) || (b["Name"].is_string() && a["Name"] == b["Name"])
    });
    apply(&mut role, "ServiceIdentities", how, services, |a, b| a["ServiceName"] == b["ServiceName"]);
    apply(&mut role, "NodeIdentities", how, nodes, |a, b| a == b);
    let updated = call_or(&args.http, "PUT", &path, Some(&role), &format!("Error updating role {id:?}"))?;
    print_role(&updated, &args.format, args.meta);
    Ok(())
}

fn delete(args: PickArgs) -> anyhow::Result<()> {
    if args.id.is_empty() && args.name.is_empty() {
        return fail("Must specify either the -id or -name parameters");
    }
    let id = if !args.id.is_empty() {
        resolve_id(&args.http, &args.id, &ROLE_IDS).or_else(|e| fail(format!("Error determining role ID: {e:#}")))?
    } else {
        args.read()?.0
    };
    let path = format!("/v1/acl/role/{}", segment(&id));
    call_or(&args.http, "DELETE", &path, None, &format!("Error deleting role {id:?}"))?;
    println!("Role {id:?} deleted successfully");
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
    let roles = call_or(&args.http, "GET", "/v1/acl/roles", None, "Failed to retrieve the role list")?;
    let entries = roles.as_array().cloned().unwrap_or_default();
    print_out(&if args.format.is_json() { format::json(&roles) } else { format::role_list(&entries, args.meta) });
    Ok(())
}
