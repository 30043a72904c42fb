//! `conclave acl bootstrap` and `conclave acl token create|read|update|delete|list|clone`, with Consul's
//! flags (command/acl/token/*) and the token formats of `format`.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::go_text::{go_duration, parse_go_duration};
use super::{call_or, fail, format, print_out, resolve_id, segment, FormatFlag, TOKEN_IDS};
use crate::cli::client::HttpFlags;

#[derive(Args, Debug)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[command(flatten)]
    pub format: FormatFlag,
    /// A SecretID to bootstrap with (`@file`, `-` for standard input); generated when absent.
    pub secret: Option<String>,
}

pub fn bootstrap(args: BootstrapArgs) -> anyhow::Result<()> {
    let body = match args.secret.as_deref() {
        Some(source) => {
            let secret = super::load_data_source(source)
                .or_else(|e| fail(format!("Error reading provided token: {e:#}")))?
                .trim()
                .to_string();
            Some(json!({ "BootstrapSecret": secret }))
        }
        None => None,
    };
    let token = call_or(&args.http, "PUT", "/v1/acl/bootstrap", body.as_ref(), "Failed ACL bootstrapping")?;
    print_token(&token, &args.format, false);
    Ok(())
}

fn print_token(token: &Value, format: &FormatFlag, show_meta: bool) {
    print_out(&if format.is_json() { format::json(token) } else { format::token(token, show_meta) });
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Creates a token.
    Create(CreateArgs),
    /// Reads a token by accessor ID, or the request's own token with `-self`.
    Read(ReadArgs),
    /// Updates a token's description, policies, roles and identities.
    Update(super::token_update::UpdateArgs),
    /// Deletes a token.
    Delete(AccessorArgs),
    /// Lists tokens.
    List(ListArgs),
    /// Copies a token's links into a new token.
    Clone(CloneArgs),
}

pub fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create(args) => create(args),
        TokenCommand::Read(args) => read(args),
        TokenCommand::Update(args) => super::token_update::update(args),
        TokenCommand::Delete(args) => delete(args),
        TokenCommand::List(args) => list(args),
        TokenCommand::Clone(args) => clone(args),
    }
}

/// The links a token or role may be given, each flag repeatable.
#[derive(Args, Debug, Clone, Default)]
pub struct LinkFlags {
    /// ID (or unique ID prefix) of a policy to link.
    #[arg(long = "policy-id")]
    pub policy_id: Vec<String>,
    /// Name of a policy to link.
    #[arg(long = "policy-name")]
    pub policy_name: Vec<String>,
    /// NAME or NAME:DC1,DC2 of a service identity.
    #[arg(long = "service-identity")]
    pub service_identity: Vec<String>,
    /// NAME:DC of a node identity.
    #[arg(long = "node-identity")]
    pub node_identity: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[command(flatten)]
    pub format: FormatFlag,
    #[command(flatten)]
    pub links: LinkFlags,
    /// ID (or unique ID prefix) of a role to link.
    #[arg(long = "role-id")]
    pub role_id: Vec<String>,
    /// Name of a role to link.
    #[arg(long = "role-name")]
    pub role_name: Vec<String>,
    /// Create the token with this AccessorID (a UUID).
    #[arg(long)]
    pub accessor: Option<String>,
    /// Create the token with this SecretID (a UUID).
    #[arg(long)]
    pub secret: Option<String>,
    #[arg(long, default_value = "")]
    pub description: String,
    /// How long the token is valid for (a Go duration: 30m, 1h).
    #[arg(long = "expires-ttl", value_parser = parse_go_duration)]
    pub expires_ttl: Option<u64>,
    /// Create a datacenter-local token.
    #[arg(long)]
    pub local: bool,
    /// Show the hash and Raft indexes.
    #[arg(long)]
    pub meta: bool,
}

fn create(args: CreateArgs) -> anyhow::Result<()> {
    let links = &args.links;
    if links.policy_name.is_empty()
        && links.policy_id.is_empty()
        && args.role_name.is_empty()
        && args.role_id.is_empty()
        && links.service_identity.is_empty()
        && links.node_identity.is_empty()
    {
        return fail("Cannot create a token without specifying -policy-name, -policy-id, -role-name, -role-id, -service-identity, or -node-identity at least once");
    }
    let mut token = json!({ "Description": args.description, "Local": args.local });
    let fields = [
        ("AccessorID", args.accessor.clone().map(Value::from)),
        ("SecretID", args.secret.clone().map(Value::from)),
        ("ExpirationTTL", args.expires_ttl.filter(|ttl| *ttl > 0).map(|ttl| go_duration(ttl).into())),
        ("ServiceIdentities", Some(super::service_identities(&links.service_identity)?.into())),
        ("NodeIdentities", Some(super::node_identities(&links.node_identity)?.into())),
        ("Policies", Some(super::policy_links(&args.http, &links.policy_name, &links.policy_id)?.into())),
        ("Roles", Some(super::role_links(&args.http, &args.role_name, &args.role_id)?.into())),
    ];
    for (key, value) in fields {
        if let Some(value) = value.filter(|v| v.as_array().is_none_or(|a| !a.is_empty())) {
            token[key] = value;
        }
    }
    let created = call_or(&args.http, "PUT", "/v1/acl/token", Some(&token), "Failed to create new token")?;
    print_token(&created, &args.format, args.meta);
    Ok(())
}

#[derive(Args, Debug)]
pub struct AccessorArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// AccessorID of the token, or a unique prefix of one.
    #[arg(long = "accessor-id")]
    pub accessor_id: Option<String>,
    /// Deprecated: use -accessor-id.
    #[arg(long = "id", hide = true)]
    pub id: Option<String>,
}

impl AccessorArgs {
    /// The accessor given, preferring `-accessor-id` and warning on the deprecated `-id` as Consul does.
    pub fn accessor(&self, missing: &str) -> anyhow::Result<String> {
        match (&self.accessor_id, &self.id) {
            (Some(accessor), _) if !accessor.is_empty() => Ok(accessor.clone()),
            (_, Some(id)) if !id.is_empty() => {
                eprintln!("Use the -accessor-id parameter to specify token by Accessor ID");
                Ok(id.clone())
            }
            _ => fail(missing),
        }
    }

    /// The full AccessorID, resolving a prefix against the token list.
    pub fn resolve(&self, missing: &str, error: &str) -> anyhow::Result<String> {
        let partial = self.accessor(missing)?;
        resolve_id(&self.http, &partial, &TOKEN_IDS).or_else(|e| fail(format!("{error}: {e:#}")))
    }
}

#[derive(Args, Debug)]
pub struct ReadArgs {
    #[command(flatten)]
    pub token: AccessorArgs,
    #[command(flatten)]
    pub format: FormatFlag,
    /// Read the token this request is made with.
    #[arg(long = "self")]
    pub self_: bool,
    #[arg(long)]
    pub meta: bool,
}

fn read(args: ReadArgs) -> anyhow::Result<()> {
    let http = &args.token.http;
    let token = if args.self_ {
        call_or(http, "GET", "/v1/acl/token/self", None, "Error reading token")?
    } else {
        let accessor = args.token.resolve("Must specify the -accessor-id parameter", "Error determining token ID")?;
        let path = format!("/v1/acl/token/{}", segment(&accessor));
        call_or(http, "GET", &path, None, &format!("Error reading token {accessor:?}"))?
    };
    print_token(&token, &args.format, args.meta);
    Ok(())
}

fn delete(args: AccessorArgs) -> anyhow::Result<()> {
    let accessor = args.resolve("Must specify the -accessor-id parameter", "Error determining token ID")?;
    let path = format!("/v1/acl/token/{}", segment(&accessor));
    call_or(&args.http, "DELETE", &path, None, &format!("Error deleting token {accessor:?}"))?;
    println!("Token {accessor:?} deleted successfully");
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
    let tokens = call_or(&args.http, "GET", "/v1/acl/tokens", None, "Failed to retrieve the token list")?;
    let entries = tokens.as_array().cloned().unwrap_or_default();
    print_out(&if args.format.is_json() { format::json(&tokens) } else { format::token_list(&entries, args.meta) });
    Ok(())
}

#[derive(Args, Debug)]
pub struct CloneArgs {
    #[command(flatten)]
    pub token: AccessorArgs,
    #[command(flatten)]
    pub format: FormatFlag,
    /// Description of the new token.
    #[arg(long, default_value = "")]
    pub description: String,
}

fn clone(args: CloneArgs) -> anyhow::Result<()> {
    let accessor = args.token.resolve(
        "Cannot update a token without specifying the -accessor-id parameter",
        "Error determining token Accessor ID",
    )?;
    let path = format!("/v1/acl/token/{}/clone", segment(&accessor));
    let body = json!({ "Description": args.description });
    let cloned = call_or(&args.token.http, "PUT", &path, Some(&body), "Error cloning token")?;
    print_token(&cloned, &args.format, false);
    Ok(())
}
