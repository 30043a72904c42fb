//! `conclave acl ...`: Consul's ACL commands (bootstrap, tokens, policies, roles, auth methods, binding
//! rules, agent tokens) over the ACL HTTP API, with Consul's flags, messages and output formats
//! (command/acl in Consul's source). The pure formatting lives in `format`, one file per resource beside it.

pub mod auth_method;
pub mod binding_rule;
pub mod format;
pub mod go_text;
pub mod policy;
pub mod role;
pub mod token;
pub mod token_update;

use std::io::Read;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::Value;

use super::client::HttpFlags;

#[derive(Subcommand, Debug)]
pub enum AclCommand {
    /// Bootstraps the ACL system and prints the initial management token.
    Bootstrap(token::BootstrapArgs),
    /// Manages ACL tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Manages ACL policies.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Manages ACL roles.
    #[command(subcommand)]
    Role(role::RoleCommand),
    /// Manages ACL auth methods.
    #[command(subcommand)]
    AuthMethod(auth_method::AuthMethodCommand),
    /// Manages ACL binding rules.
    #[command(subcommand)]
    BindingRule(binding_rule::BindingRuleCommand),
    /// Assigns a token for the agent's own use.
    SetAgentToken(SetAgentTokenArgs),
}

pub fn acl(command: AclCommand) -> anyhow::Result<()> {
    match command {
        AclCommand::Bootstrap(args) => token::bootstrap(args),
        AclCommand::Token(command) => token::run(command),
        AclCommand::Policy(command) => policy::run(command),
        AclCommand::Role(command) => role::run(command),
        AclCommand::AuthMethod(command) => auth_method::run(command),
        AclCommand::BindingRule(command) => binding_rule::run(command),
        AclCommand::SetAgentToken(args) => set_agent_token(args),
    }
}

/// A message Consul's CLI prints as it is (its `UI.Error`), without the `==> ` of agent errors.
#[derive(Debug)]
pub struct UiError(pub String);

impl std::fmt::Display for UiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UiError {}

/// Fails with Consul's message for the command, as it is printed.
pub fn fail<T>(message: impl Into<String>) -> anyhow::Result<T> {
    Err(UiError(message.into()).into())
}

/// `-format`, which every ACL command that prints a resource takes.
#[derive(Args, Debug, Clone)]
pub struct FormatFlag {
    /// Output format {pretty|json}.
    #[arg(long, default_value = "pretty", value_parser = ["pretty", "json"])]
    pub format: String,
}

impl FormatFlag {
    pub fn is_json(&self) -> bool {
        self.format == "json"
    }
}

/// One ACL API call; an answer other than 200 is an error worded as Consul's API client words it
/// (`Unexpected response code: 403 (Permission denied: ...)`), to be prefixed with what failed.
pub fn call(http: &HttpFlags, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
    let bytes = body.map(serde_json::to_vec).transpose()?.unwrap_or_default();
    let response = http.ok(method, path, bytes)?;
    if response.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    Ok(response.json()?)
}

/// `call`, with a failure reported as `<what>: <error>`.
pub fn call_or(http: &HttpFlags, method: &str, path: &str, body: Option<&Value>, what: &str) -> anyhow::Result<Value> {
    call(http, method, path, body).or_else(|e| fail(format!("{what}: {e:#}")))
}

/// A path segment with everything but RFC 3986's unreserved characters escaped, so UUIDs go as they are.
pub fn segment(text: &str) -> String {
    const ESCAPED: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(text, ESCAPED).to_string()
}

/// Consul's `LoadDataSource`: `@path` reads a file, `-` reads standard input, anything else is the value.
pub fn load_data_source(data: &str) -> anyhow::Result<String> {
    load_data_source_from(data, &mut std::io::stdin())
}

pub fn load_data_source_from(data: &str, stdin: &mut dyn Read) -> anyhow::Result<String> {
    if let Some(path) = data.strip_prefix('@') {
        return std::fs::read_to_string(path).with_context(|| format!("Failed to read file: open {path}"));
    }
    if data == "-" {
        let mut text = String::new();
        stdin.read_to_string(&mut text).context("Failed to read stdin")?;
        return Ok(text);
    }
    Ok(data.to_string())
}

/// Consul's reserved IDs that the CLI accepts by name (acl.AnonymousTokenID, structs.ACLPolicyGlobalManagementID).
const ANONYMOUS_TOKEN_ID: &str = "00000000-0000-0000-0000-000000000002";
const GLOBAL_MANAGEMENT_POLICY_ID: &str = "00000000-0000-0000-0000-000000000001";

/// What a partial ID names: the list to search, the field that holds IDs, and the word in messages.
pub struct IdKind {
    pub list_path: &'static str,
    pub id_field: &'static str,
    pub word: &'static str,
}

pub const TOKEN_IDS: IdKind = IdKind { list_path: "/v1/acl/tokens", id_field: "AccessorID", word: "token" };
pub const POLICY_IDS: IdKind = IdKind { list_path: "/v1/acl/policies", id_field: "ID", word: "policy" };
pub const ROLE_IDS: IdKind = IdKind { list_path: "/v1/acl/roles", id_field: "ID", word: "role" };
pub const RULE_IDS: IdKind = IdKind { list_path: "/v1/acl/binding-rules", id_field: "ID", word: "rule" };

/// A full ID from a unique prefix, as Consul's `Get*IDFromPartial`: a 36-character ID is taken as given.
pub fn resolve_id(http: &HttpFlags, partial: &str, kind: &IdKind) -> anyhow::Result<String> {
    match (kind.word, partial) {
        ("token", "anonymous") => return Ok(ANONYMOUS_TOKEN_ID.to_string()),
        ("policy", "global-management") => return Ok(GLOBAL_MANAGEMENT_POLICY_ID.to_string()),
        _ if partial.len() == 36 => return Ok(partial.to_string()),
        _ => {}
    }
    let listed = call(http, "GET", kind.list_path, None)?;
    let ids: Vec<&str> = listed.as_array().into_iter().flatten().filter_map(|e| e[kind.id_field].as_str()).collect();
    pick_unique_prefix(&ids, partial, kind.word)
}

/// The one ID starting with `partial`, or Consul's message for none or several.
pub fn pick_unique_prefix(ids: &[&str], partial: &str, word: &str) -> anyhow::Result<String> {
    let mut matching = ids.iter().filter(|id| id.starts_with(partial));
    match (matching.next(), matching.next()) {
        (Some(id), None) => Ok(id.to_string()),
        (Some(_), Some(_)) => anyhow::bail!("Partial {word} ID is not unique"),
        (None, _) => anyhow::bail!("No such {word} ID with prefix: {partial}"),
    }
}

/// `-service-identity NAME[:DC1,DC2]`, as Consul's `ExtractServiceIdentities`.
pub fn service_identities(raw: &[String]) -> anyhow::Result<Vec<Value>> {
    raw.iter()
        .map(|text| match text.split(':').collect::<Vec<_>>().as_slice() {
            [name] => Ok(serde_json::json!({ "ServiceName": name })),
            [name, dcs] => {
                Ok(serde_json::json!({ "ServiceName": name, "Datacenters": dcs.split(',').collect::<Vec<_>>() }))
            }
            _ => fail(format!("Malformed -service-identity argument: {text:?}")),
        })
        .collect()
}

/// `-node-identity NAME:DC`, as Consul's `ExtractNodeIdentities`.
pub fn node_identities(raw: &[String]) -> anyhow::Result<Vec<Value>> {
    raw.iter()
        .map(|text| match text.split(':').collect::<Vec<_>>().as_slice() {
            [name, dc] => Ok(serde_json::json!({ "NodeName": name, "Datacenter": dc })),
            _ => fail(format!("Malformed -node-identity argument: {text:?}")),
        })
        .collect()
}

/// Policy links from `-policy-name` (resolved by the server) and `-policy-id` (a prefix, resolved here).
pub fn policy_links(http: &HttpFlags, names: &[String], ids: &[String]) -> anyhow::Result<Vec<Value>> {
    let mut links: Vec<Value> = names.iter().map(|name| serde_json::json!({ "Name": name })).collect();
    for id in ids {
        let full =
            resolve_id(http, id, &POLICY_IDS).or_else(|e| fail(format!("Error resolving policy ID {id}: {e:#}")))?;
        links.push(serde_json::json!({ "ID": full }));
    }
    Ok(links)
}

/// Role links from `-role-name` and `-role-id`, as `policy_links`.
pub fn role_links(http: &HttpFlags, names: &[String], ids: &[String]) -> anyhow::Result<Vec<Value>> {
    let mut links: Vec<Value> = names.iter().map(|name| serde_json::json!({ "Name": name })).collect();
    for id in ids {
        let full = resolve_id(http, id, &ROLE_IDS).or_else(|e| fail(format!("Error resolving role ID {id}: {e:#}")))?;
        links.push(serde_json::json!({ "ID": full }));
    }
    Ok(links)
}

/// Prints a formatted resource as Consul's `UI.Info` does: the text and a newline.
pub fn print_out(text: &str) {
    if !text.is_empty() {
        println!("{text}");
    }
}

#[derive(Args, Debug)]
pub struct SetAgentTokenArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// default, agent, recovery, replication or config_file_service_registration (and the older names).
    #[arg(value_name = "TYPE")]
    pub token_type: Option<String>,
    /// The token, `@file` to read a file, or `-` to read standard input. (Its id is not `token`, which
    /// the `-token` flag of the HTTP flags already has.)
    #[arg(id = "token_value", value_name = "TOKEN")]
    pub token: Option<String>,
}

/// The `/v1/agent/token/<name>` a `set-agent-token` type is sent to. Consul's older type names
/// (`master`, `agent_master`, the `acl_*_token` config names) still name the same tokens.
pub fn agent_token_endpoint(token_type: &str) -> Option<&'static str> {
    Some(match token_type {
        "default" | "acl_token" => "default",
        "agent" | "acl_agent_token" => "agent",
        "recovery" | "agent_recovery" | "master" | "agent_master" | "acl_agent_master_token" => "agent_recovery",
        "replication" | "acl_replication_token" => "replication",
        "config_file_service_registration" => "config_file_service_registration",
        _ => return None,
    })
}

fn set_agent_token(args: SetAgentTokenArgs) -> anyhow::Result<()> {
    let (token_type, token) = match (args.token_type, args.token) {
        (None, _) => return fail("Error! Missing TYPE and TOKEN arguments"),
        (Some(kind), None) if agent_token_endpoint(&kind).is_some() => return fail("Error! Missing TOKEN argument"),
        (Some(_), None) => return fail("Error! MISSING TYPE argument"),
        (Some(kind), Some(token)) => (kind, load_data_source(&token).or_else(|e| fail(format!("Error! {e:#}")))?),
    };
    let Some(endpoint) = agent_token_endpoint(&token_type) else {
        return fail("Unknown token type");
    };
    let body = serde_json::json!({ "Token": token });
    call_or(
        &args.http,
        "PUT",
        &format!("/v1/agent/token/{endpoint}"),
        Some(&body),
        &format!("Failed to set ACL token {token_type:?}"),
    )?;
    println!("ACL token {token_type:?} set successfully");
    Ok(())
}

#[cfg(test)]
mod tests;
