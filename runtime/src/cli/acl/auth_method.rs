//! `conclave acl auth-method create|read|update|delete|list`, with Consul's flags
//! (command/acl/authmethod/*). The method's config is JSON given with `-config` (`@file`, `-` for
//! standard input); auth methods are named by `-name`.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::go_text::{go_duration, parse_go_duration};
use super::{call, call_or, fail, format, load_data_source, print_out, segment, FormatFlag};
use crate::cli::client::HttpFlags;

#[derive(Subcommand, Debug)]
pub enum AuthMethodCommand {
    /// Creates an auth method.
    Create(CreateArgs),
    /// Reads an auth method.
    Read(NameArgs),
    /// Updates an auth method, keeping what is not given unless `-no-merge`.
    Update(UpdateArgs),
    /// Deletes an auth method.
    Delete(NameArgs),
    /// Lists auth methods.
    List(ListArgs),
}

pub fn run(command: AuthMethodCommand) -> anyhow::Result<()> {
    match command {
        AuthMethodCommand::Create(args) => create(args),
        AuthMethodCommand::Read(args) => read(args),
        AuthMethodCommand::Update(args) => update(args),
        AuthMethodCommand::Delete(args) => delete(args),
        AuthMethodCommand::List(args) => list(args),
    }
}

fn print_method(method: &Value, format: &FormatFlag, show_meta: bool) {
    print_out(&if format.is_json() { format::json(method) } else { format::auth_method(method, show_meta) });
}

/// The fields `create` and `update` share.
#[derive(Args, Debug)]
pub struct MethodFields {
    /// Name shown instead of the name in UIs.
    #[arg(long = "display-name")]
    pub display_name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Longest life of the tokens the method issues (a Go duration).
    #[arg(long = "max-token-ttl", value_parser = parse_go_duration)]
    pub max_token_ttl: Option<u64>,
    /// `local` or `global`: the kind of token the method issues.
    #[arg(long = "token-locality")]
    pub token_locality: Option<String>,
    /// The method's configuration as JSON, `@file` to read a file, `-` to read standard input.
    #[arg(long)]
    pub config: Option<String>,
    #[arg(long)]
    pub meta: bool,
}

impl MethodFields {
    /// Writes the given fields over `method`; absent flags leave their field alone.
    fn apply(&self, method: &mut Value) -> anyhow::Result<()> {
        if let Some(display_name) = &self.display_name {
            method["DisplayName"] = display_name.clone().into();
        }
        if let Some(description) = &self.description {
            method["Description"] = description.clone().into();
        }
        if let Some(ttl) = self.max_token_ttl.filter(|ttl| *ttl > 0) {
            // The API takes durations as Go duration strings (api.ACLAuthMethod's MarshalJSON).
            method["MaxTokenTTL"] = go_duration(ttl).into();
        }
        if let Some(locality) = &self.token_locality {
            method["TokenLocality"] = locality.clone().into();
        }
        if let Some(source) = &self.config {
            let data =
                load_data_source(source).or_else(|e| fail(format!("Error loading configuration file: {e:#}")))?;
            let config: Value =
                serde_json::from_str(&data).or_else(|e| fail(format!("Error parsing JSON configuration file: {e}")))?;
            method["Config"] = config;
        }
        Ok(())
    }
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[command(flatten)]
    pub format: FormatFlag,
    #[command(flatten)]
    pub fields: MethodFields,
    /// The method's type: jwt, oidc, kubernetes, ... (required).
    #[arg(long = "type", default_value = "")]
    pub method_type: String,
    /// The method's name (required).
    #[arg(long, default_value = "")]
    pub name: String,
}

fn create(args: CreateArgs) -> anyhow::Result<()> {
    if args.method_type.is_empty() {
        return fail("Missing required '-type' flag");
    }
    if args.name.is_empty() {
        return fail("Missing required '-name' flag");
    }
    let mut method = json!({ "Type": args.method_type, "Name": args.name, "Description": "" });
    args.fields.apply(&mut method)?;
    let created = call_or(&args.http, "PUT", "/v1/acl/auth-method", Some(&method), "Failed to create new auth method")?;
    print_method(&created, &args.format, args.fields.meta);
    Ok(())
}

#[derive(Args, Debug)]
pub struct NameArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[command(flatten)]
    pub format: FormatFlag,
    /// The auth method's name.
    #[arg(long, default_value = "")]
    pub name: String,
    #[arg(long)]
    pub meta: bool,
}

fn method_path(name: &str) -> String {
    format!("/v1/acl/auth-method/{}", segment(name))
}

fn read(args: NameArgs) -> anyhow::Result<()> {
    if args.name.is_empty() {
        return fail("Must specify the -name parameter");
    }
    let method = call(&args.http, "GET", &method_path(&args.name), None)
        .or_else(|e| fail(format!("Error reading auth method {:?}: {e:#}", args.name)))?;
    if method.is_null() {
        return fail(format!("Auth method not found with name {:?}", args.name));
    }
    print_method(&method, &args.format, args.meta);
    Ok(())
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[command(flatten)]
    pub format: FormatFlag,
    #[command(flatten)]
    pub fields: MethodFields,
    /// The name of the auth method to update (required).
    #[arg(long, default_value = "")]
    pub name: String,
    /// Replace every field instead of merging with the current method.
    #[arg(long = "no-merge")]
    pub no_merge: bool,
}

fn update(args: UpdateArgs) -> anyhow::Result<()> {
    if args.name.is_empty() {
        return fail("Cannot update an auth method without specifying the -name parameter");
    }
    let path = method_path(&args.name);
    let current = call(&args.http, "GET", &path, None)
        .or_else(|e| fail(format!("Error when retrieving current auth method: {e:#}")))?;
    if current.is_null() {
        return fail(format!("Auth method not found with name {:?}", args.name));
    }
    let mut method =
        if args.no_merge { json!({ "Name": args.name, "Type": current["Type"], "Description": "" }) } else { current };
    args.fields.apply(&mut method)?;
    let updated =
        call_or(&args.http, "PUT", &path, Some(&method), &format!("Error updating auth method {:?}", args.name))?;
    print_method(&updated, &args.format, args.fields.meta);
    Ok(())
}

fn delete(args: NameArgs) -> anyhow::Result<()> {
    if args.name.is_empty() {
        return fail("Must specify the -name parameter");
    }
    let what = format!("Error deleting auth method {:?}", args.name);
    call_or(&args.http, "DELETE", &method_path(&args.name), None, &what)?;
    println!("Auth method {:?} deleted successfully", args.name);
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
    let methods = call_or(&args.http, "GET", "/v1/acl/auth-methods", None, "Failed to retrieve the auth method list")?;
    let entries = methods.as_array().cloned().unwrap_or_default();
    print_out(&if args.format.is_json() {
        format::json(&methods)
    } else {
        format::auth_method_list(&entries, args.meta)
    });
    Ok(())
}
