//! `conclave acl binding-rule create|read|update|delete|list`, with Consul's flags
//! (command/acl/bindingrule/*). A rule is named by `-id`, a unique prefix will do.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::{call, call_or, fail, format, print_out, resolve_id, segment, FormatFlag, RULE_IDS};
use crate::cli::client::HttpFlags;

#[derive(Subcommand, Debug)]
pub enum BindingRuleCommand {
    /// Creates a binding rule.
    Create(CreateArgs),
    /// Reads a binding rule.
    Read(IdArgs),
    /// Updates a binding rule, keeping what is not given unless `-no-merge`.
    Update(UpdateArgs),
    /// Deletes a binding rule.
    Delete(IdArgs),
    /// Lists binding rules, optionally of one auth method.
    List(ListArgs),
}

pub fn run(command: BindingRuleCommand) -> anyhow::Result<()> {
    match command {
        BindingRuleCommand::Create(args) => create(args),
        BindingRuleCommand::Read(args) => read(args),
        BindingRuleCommand::Update(args) => update(args),
        BindingRuleCommand::Delete(args) => delete(args),
        BindingRuleCommand::List(args) => list(args),
    }
}

fn print_rule(rule: &Value, format: &FormatFlag, show_meta: bool) {
    print_out(&if format.is_json() { format::json(rule) } else { format::binding_rule(rule, show_meta) });
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[command(flatten)]
    pub format: FormatFlag,
    /// The auth method the rule applies to (required).
    #[arg(long, default_value = "")]
    pub method: String,
    #[arg(long, default_value = "")]
    pub description: String,
    /// Expression over the identity's attributes that the rule matches.
    #[arg(long, default_value = "")]
    pub selector: String,
    /// What to bind on a match: `service`, `node`, `role` or `policy`.
    #[arg(long = "bind-type", default_value = "service")]
    pub bind_type: String,
    /// Name to bind on a match; may use `${var}` interpolation (required).
    #[arg(long = "bind-name", default_value = "")]
    pub bind_name: String,
    #[arg(long)]
    pub meta: bool,
}

fn create(args: CreateArgs) -> anyhow::Result<()> {
    for (value, flag) in [(&args.method, "method"), (&args.bind_type, "bind-type"), (&args.bind_name, "bind-name")] {
        if value.is_empty() {
            return fail(format!("Missing required '-{flag}' flag"));
        }
    }
    let rule = json!({
        "Description": args.description, "AuthMethod": args.method, "BindType": args.bind_type,
        "BindName": args.bind_name, "Selector": args.selector,
    });
    let created = call_or(&args.http, "PUT", "/v1/acl/binding-rule", Some(&rule), "Failed to create new binding rule")?;
    print_rule(&created, &args.format, args.meta);
    Ok(())
}

#[derive(Args, Debug)]
pub struct IdArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[command(flatten)]
    pub format: FormatFlag,
    /// ID of the binding rule, or a unique prefix of one.
    #[arg(long, default_value = "")]
    pub id: String,
    #[arg(long)]
    pub meta: bool,
}

fn rule_id(http: &HttpFlags, partial: &str) -> anyhow::Result<String> {
    resolve_id(http, partial, &RULE_IDS).or_else(|e| fail(format!("Error determining binding rule ID: {e:#}")))
}

fn rule_path(id: &str) -> String {
    format!("/v1/acl/binding-rule/{}", segment(id))
}

fn read(args: IdArgs) -> anyhow::Result<()> {
    if args.id.is_empty() {
        return fail("Must specify the -id parameter");
    }
    let id = rule_id(&args.http, &args.id)?;
    let rule = call(&args.http, "GET", &rule_path(&id), None)
        .or_else(|e| fail(format!("Error reading binding rule {id:?}: {e:#}")))?;
    if rule.is_null() {
        return fail(format!("Binding rule not found with ID {id:?}"));
    }
    print_rule(&rule, &args.format, args.meta);
    Ok(())
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[command(flatten)]
    pub format: FormatFlag,
    /// ID of the binding rule to update, or a unique prefix of one (required).
    #[arg(long, default_value = "")]
    pub id: String,
    #[arg(long, default_value = "")]
    pub description: String,
    /// New selector; an empty one is valid and clears it.
    #[arg(long)]
    pub selector: Option<String>,
    #[arg(long = "bind-type", default_value = "")]
    pub bind_type: String,
    #[arg(long = "bind-name", default_value = "")]
    pub bind_name: String,
    /// Replace every field instead of merging with the current rule.
    #[arg(long = "no-merge")]
    pub no_merge: bool,
    #[arg(long)]
    pub meta: bool,
}

fn update(args: UpdateArgs) -> anyhow::Result<()> {
    if args.id.is_empty() {
        return fail("Cannot update a binding rule without specifying the -id parameter");
    }
    let id = rule_id(&args.http, &args.id)?;
    let current = call(&args.http, "GET", &rule_path(&id), None)
        .or_else(|e| fail(format!("Error when retrieving current binding rule: {e:#}")))?;
    if current.is_null() {
        return fail(format!("Binding rule not found with ID {id:?}"));
    }
    let rule = if args.no_merge {
        for (value, flag) in [(&args.bind_type, "bind-type"), (&args.bind_name, "bind-name")] {
            if value.is_empty() {
                return fail(format!("Missing required '-{flag}' flag"));
            }
        }
        json!({
            "ID": id, "AuthMethod": current["AuthMethod"], "Description": args.description,
            "BindType": args.bind_type, "BindName": args.bind_name, "Selector": args.selector.clone().unwrap_or_default(),
        })
    } else {
        let mut rule = current;
        for (key, value) in
            [("Description", &args.description), ("BindType", &args.bind_type), ("BindName", &args.bind_name)]
        {
            if !value.is_empty() {
                rule[key] = value.clone().into();
            }
        }
        if let Some(selector) = &args.selector {
            rule["Selector"] = selector.clone().into();
        }
        rule
    };
    let updated =
        call_or(&args.http, "PUT", &rule_path(&id), Some(&rule), &format!("Error updating binding rule {id:?}"))?;
    print_rule(&updated, &args.format, args.meta);
    Ok(())
}

fn delete(args: IdArgs) -> anyhow::Result<()> {
    if args.id.is_empty() {
        return fail("Must specify the -id parameter");
    }
    let id = rule_id(&args.http, &args.id)?;
    call_or(&args.http, "DELETE", &rule_path(&id), None, &format!("Error deleting binding rule {id:?}"))?;
    println!("Binding rule {id:?} deleted successfully");
    Ok(())
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[command(flatten)]
    pub format: FormatFlag,
    /// Only the rules of this auth method.
    #[arg(long, default_value = "")]
    pub method: String,
    #[arg(long)]
    pub meta: bool,
}

fn list(args: ListArgs) -> anyhow::Result<()> {
    let path = if args.method.is_empty() {
        "/v1/acl/binding-rules".to_string()
    } else {
        format!("/v1/acl/binding-rules?authmethod={}", segment(&args.method))
    };
    let rules = call_or(&args.http, "GET", &path, None, "Failed to retrieve the binding rule list")?;
    let entries = rules.as_array().cloned().unwrap_or_default();
    print_out(&if args.format.is_json() {
        format::json(&rules)
    } else {
        format::binding_rule_list(&entries, args.meta)
    });
    Ok(())
}
