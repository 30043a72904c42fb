//! `conclave acl token update`: reads the token, changes what the flags name, and writes it back, as
//! Consul's command/acl/token/update does. `-policy-*`/`-role-*` replace the token's links and the
//! `-append-*` variants add to them; the deprecated `-merge-*` switches turn the plain flags into appends.

use clap::Args;
use serde_json::Value;

use super::token::{AccessorArgs, LinkFlags};
use super::{call_or, fail, format, print_out, segment, FormatFlag};

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub token: AccessorArgs,
    #[command(flatten)]
    pub format: FormatFlag,
    #[command(flatten)]
    pub links: LinkFlags,
    /// New description; the current one is kept when absent.
    #[arg(long, default_value = "")]
    pub description: String,
    #[arg(long = "append-policy-id")]
    pub append_policy_id: Vec<String>,
    #[arg(long = "append-policy-name")]
    pub append_policy_name: Vec<String>,
    #[arg(long = "role-id")]
    pub role_id: Vec<String>,
    #[arg(long = "role-name")]
    pub role_name: Vec<String>,
    #[arg(long = "append-role-id")]
    pub append_role_id: Vec<String>,
    #[arg(long = "append-role-name")]
    pub append_role_name: Vec<String>,
    #[arg(long = "append-service-identity")]
    pub append_service_identity: Vec<String>,
    #[arg(long = "append-node-identity")]
    pub append_node_identity: Vec<String>,
    #[arg(long)]
    pub meta: bool,
    /// Deprecated: use -append-policy-id or -append-policy-name.
    #[arg(long = "merge-policies", hide = true)]
    pub merge_policies: bool,
    /// Deprecated: use -append-role-id or -append-role-name.
    #[arg(long = "merge-roles", hide = true)]
    pub merge_roles: bool,
    /// Deprecated: use -append-service-identity.
    #[arg(long = "merge-service-identities", hide = true)]
    pub merge_service_identities: bool,
    /// Deprecated: use -append-node-identity.
    #[arg(long = "merge-node-identities", hide = true)]
    pub merge_node_identities: bool,
}

/// How one kind of link changes: replaced by the given links, or the given links added to the current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Replace,
    Append,
}

/// Which of the plain and `-append-` flags were used; both at once is Consul's error `conflict`.
fn change(plain: bool, append: bool, merge: bool, conflict: &str) -> anyhow::Result<Change> {
    match (plain, append) {
        (true, true) => fail(conflict),
        (_, true) => Ok(Change::Append),
        (true, false) if merge => Ok(Change::Append),
        (true, false) => Ok(Change::Replace),
        // No flag: links stay as they are (an append of nothing).
        (false, false) => Ok(Change::Append),
    }
}

/// Applies new links to `token[key]`. An append skips a link already present (`same` says which match),
/// except that a service identity given again replaces the old one (its datacenters may differ), as in Consul.
pub fn apply(token: &mut Value, key: &str, how: Change, new: Vec<Value>, same: fn(&Value, &Value) -> bool) {
    let replace_found = key == "ServiceIdentities";
    let mut links = match how {
        Change::Replace => Vec::new(),
        Change::Append => token[key].as_array().cloned().unwrap_or_default(),
    };
    for link in new {
        match links.iter().position(|existing| same(existing, &link)) {
            Some(at) if replace_found => links[at] = link,
            Some(_) => {}
            None => links.push(link),
        }
    }
    token[key] = Value::Array(links);
}

fn same_link(a: &Value, b: &Value) -> bool {
    let id = |v: &Value| v["ID"].as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let name = |v: &Value| v["Name"].as_str().filter(|s| !s.is_empty()).map(str::to_string);
    (id(b).is_some() && id(a) == id(b)) || (name(b).is_some() && name(a) == name(b))
}

fn same_service(a: &Value, b: &Value) -> bool {
    a["ServiceName"] == b["ServiceName"]
}

fn same_node(a: &Value, b: &Value) -> bool {
    a["NodeName"] == b["NodeName"] && a["Datacenter"] == b["Datacenter"]
}

pub fn update(args: UpdateArgs) -> anyhow::Result<()> {
    let http = &args.token.http;
    let accessor = args
        .token
        .accessor("Cannot update a token without specifying the -accessor-id parameter")
        .and_then(|partial| {
            super::resolve_id(http, &partial, &super::TOKEN_IDS)
                .or_else(|e| fail(format!("Error determining token ID: {e:#}")))
        })?;
    let path = format!("/v1/acl/token/{}", segment(&accessor));
    let mut token = call_or(http, "GET", &path, None, "Error when retrieving current token")?;
    if !args.description.is_empty() {
        token["Description"] = args.description.clone().into();
    }
    let links = &args.links;
    let services = change(
        !links.service_identity.is_empty(),
        !args.append_service_identity.is_empty(),
        args.merge_service_identities,
        "Cannot combine the use of service-identity flag with append-service-identity. To set or overwrite existing service identities, use -service-identity. To append to existing service identities, use -append-service-identity.",
    )?;
    let nodes = change(
        !links.node_identity.is_empty(),
        !args.append_node_identity.is_empty(),
        args.merge_node_identities,
        "Cannot combine the use of node-identity flag with append-node-identity. To set or overwrite existing node identities, use -node-identity. To append to existing node identities, use -append-node-identity.",
    )?;
    let policies = change(
        !links.policy_id.is_empty() || !links.policy_name.is_empty(),
        !args.append_policy_id.is_empty() || !args.append_policy_name.is_empty(),
        args.merge_policies,
        "Cannot combine the use of policy-id/policy-name flags with append- variants. To set or overwrite existing policies, use -policy-id or -policy-name. To append to existing policies, use -append-policy-id or -append-policy-name.",
    )?;
    let roles = change(
        !args.role_id.is_empty() || !args.role_name.is_empty(),
        !args.append_role_id.is_empty() || !args.append_role_name.is_empty(),
        args.merge_roles,
        "Cannot combine the use of role-id/role-name flags with append- variants. To set or overwrite existing roles, use -role-id or -role-name. To append to existing roles, use -append-role-id or -append-role-name.",
    )?;
    let (service_raw, node_raw) = (
        [links.service_identity.clone(), args.append_service_identity.clone()].concat(),
        [links.node_identity.clone(), args.append_node_identity.clone()].concat(),
    );
    // Consul sets the identities to what was given, so an update without identity flags clears them
    // (command/acl/token/update: `t.ServiceIdentities = parsedServiceIdents`); kept for compatibility.
    let services = if service_raw.is_empty() && !args.merge_service_identities { Change::Replace } else { services };
    let nodes = if node_raw.is_empty() && !args.merge_node_identities { Change::Replace } else { nodes };
    apply(&mut token, "ServiceIdentities", services, super::service_identities(&service_raw)?, same_service);
    apply(&mut token, "NodeIdentities", nodes, super::node_identities(&node_raw)?, same_node);
    let policy_names = [links.policy_name.clone(), args.append_policy_name.clone()].concat();
    let policy_ids = [links.policy_id.clone(), args.append_policy_id.clone()].concat();
    apply(&mut token, "Policies", policies, super::policy_links(http, &policy_names, &policy_ids)?, same_link);
    let role_names = [args.role_name.clone(), args.append_role_name.clone()].concat();
    let role_ids = [args.role_id.clone(), args.append_role_id.clone()].concat();
    apply(&mut token, "Roles", roles, super::role_links(http, &role_names, &role_ids)?, same_link);
    let updated = call_or(http, "PUT", &path, Some(&token), &format!("Failed to update token {accessor}"))?;
    print_out(&if args.format.is_json() { format::json(&updated) } else { format::token(&updated, args.meta) });
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn append_policy_keeps_existing_links_and_skips_duplicates() {
        let mut token = json!({"Policies": [{"ID": "p1", "Name": "web"}]});
        apply(&mut token, "Policies", Change::Append, vec![json!({"Name": "web"}), json!({"Name": "db"})], same_link);
        assert_eq!(token["Policies"], json!([{"ID": "p1", "Name": "web"}, {"Name": "db"}]));
    }

    #[test]
    fn plain_policy_flags_replace_the_links() {
        let mut token = json!({"Policies": [{"ID": "p1", "Name": "web"}]});
        apply(&mut token, "Policies", Change::Replace, vec![json!({"Name": "db"})], same_link);
        assert_eq!(token["Policies"], json!([{"Name": "db"}]));
    }

    #[test]
    fn plain_and_append_flags_together_are_refused() {
        assert!(change(true, true, false, "conflict").is_err());
        assert_eq!(change(true, false, true, "").unwrap(), Change::Append);
        assert_eq!(change(true, false, false, "").unwrap(), Change::Replace);
    }
}
