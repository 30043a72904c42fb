//! `conclave keyring`: lists, installs, switches and removes gossip encryption keys through the agent's
//! `/v1/operator/keyring` (GET lists, POST installs, PUT makes primary, DELETE removes; writes carry
//! `{"Key": ...}`), with Consul's flags, messages and exit codes (command/keyring, api/operator_keyring.go).

pub mod format;

use anyhow::Context;
use clap::Args;

use self::format::{format_responses, KeySet, KeyringResponse};
use super::acl::fail;
use super::client::HttpFlags;

/// Largest `-relay-factor` the agent accepts (agent.ParseRelayFactor).
pub const RELAY_FACTOR_MAX: i64 = 5;

#[derive(Args, Debug)]
pub struct KeyringArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// List the keys installed in the cluster.
    #[arg(long)]
    pub list: bool,
    /// List the primary keys in use in the cluster.
    #[arg(long = "list-primary")]
    pub list_primary: bool,
    /// Install a new key on every member.
    #[arg(long, default_value = "")]
    pub install: String,
    /// Make an installed key the primary key.
    #[arg(long = "use", default_value = "")]
    pub use_key: String,
    /// Remove a key that is not the primary key.
    #[arg(long, default_value = "")]
    pub remove: String,
    /// Relay each node's answer through this many other nodes (0 to 5).
    #[arg(long = "relay-factor", default_value_t = 0, allow_negative_numbers = true)]
    pub relay_factor: i64,
    /// Only ask the local datacenter's servers (no WAN traffic); list operations only.
    #[arg(long = "local-only")]
    pub local_only: bool,
}

/// The one operation a `keyring` command asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    List(KeySet),
    Install(String),
    Use(String),
    Remove(String),
}

/// One HTTP request to the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyringRequest {
    pub method: &'static str,
    pub path: String,
    pub body: Vec<u8>,
}

const USAGE: &str = "Usage: conclave keyring [options]

  Manages encryption keys used for gossip messages: -list, -list-primary, -install KEY, -use KEY or
  -remove KEY, exactly one of them. All operations affect both the LAN and WAN keyrings in lock-step.";

/// Checks the flags in Consul's order: one action, the relay factor, then `-local-only` with a list.
pub fn action(args: &KeyringArgs) -> anyhow::Result<Action> {
    let mut actions = Vec::new();
    if args.list {
        actions.push(Action::List(KeySet::Installed));
    }
    if args.list_primary {
        actions.push(Action::List(KeySet::Primary));
    }
    for (key, make) in [
        (&args.install, Action::Install as fn(String) -> Action),
        (&args.use_key, Action::Use),
        (&args.remove, Action::Remove),
    ] {
        if !key.is_empty() {
            actions.push(make(key.clone()));
        }
    }
    let action = match actions.len() {
        0 => return fail(USAGE),
        1 => actions.remove(0),
        _ => return fail("Only a single action is allowed"),
    };
    if !(0..=RELAY_FACTOR_MAX).contains(&args.relay_factor) {
        return fail("Error parsing relay factor: Relay factor must be in range: [0, 5]");
    }
    // Consul's check passes only `-list` here, which refuses `-list-primary -local-only`; both list
    // operations read the same endpoint, so both take the flag.
    if args.local_only && !matches!(action, Action::List(_)) {
        return fail("Error validating local-only: local-only can only be set for list requests");
    }
    Ok(action)
}

/// The request for an action, with Consul's query parameters (`local-only=true`, `relay-factor=N`, in
/// the sorted order Go's url.Values encodes them).
pub fn request(action: &Action, relay_factor: i64, local_only: bool) -> KeyringRequest {
    let mut query = Vec::new();
    if local_only && matches!(action, Action::List(_)) {
        query.push("local-only=true".to_string());
    }
    if relay_factor != 0 {
        query.push(format!("relay-factor={relay_factor}"));
    }
    let path = if query.is_empty() {
        "/v1/operator/keyring".to_string()
    } else {
        format!("/v1/operator/keyring?{}", query.join("&"))
    };
    let write = |method, key: &str| KeyringRequest {
        method,
        path: path.clone(),
        body: serde_json::json!({ "Key": key }).to_string().into_bytes(),
    };
    match action {
        Action::List(_) => KeyringRequest { method: "GET", path: path.clone(), body: Vec::new() },
        Action::Install(key) => write("POST", key),
        Action::Use(key) => write("PUT", key),
        Action::Remove(key) => write("DELETE", key),
    }
}

/// The line printed before an action is sent.
pub fn announcement(action: &Action) -> &'static str {
    match action {
        Action::List(KeySet::Installed) => "==> Gathering installed encryption keys...",
        Action::List(KeySet::Primary) => "==> Gathering installed primary encryption keys...",
        Action::Install(_) => "==> Installing new gossip encryption key...",
        Action::Use(_) => "==> Changing primary gossip encryption key...",
        Action::Remove(_) => "==> Removing gossip encryption key...",
    }
}

pub fn keyring(args: KeyringArgs) -> anyhow::Result<()> {
    let action = action(&args)?;
    let request = request(&action, args.relay_factor, args.local_only);
    println!("{}", announcement(&action));
    let response = match args.http.ok(request.method, &request.path, request.body) {
        Ok(response) => response,
        Err(e) => return fail(format!("error: {e:#}")),
    };
    if let Action::List(key_set) = action {
        let responses: Vec<KeyringResponse> =
            serde_json::from_slice(&response.body).context("error: the agent's keyring answer is not a list")?;
        print!("{}", format_responses(&responses, key_set));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{normalize_go_flags, Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> KeyringArgs {
        let line = ["conclave", "keyring"].iter().chain(args).map(|s| s.to_string());
        let Command::Keyring(args) = Cli::try_parse_from(normalize_go_flags(line)).unwrap().command else {
            panic!("not keyring")
        };
        args
    }

    fn error(args: &[&str]) -> String {
        action(&parse(args)).unwrap_err().to_string()
    }

    #[test]
    fn each_action_is_its_method_on_the_keyring_endpoint() {
        let key = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
        let body = format!(r#"{{"Key":"{key}"}}"#).into_bytes();
        let cases = [
            (vec!["-list"], "GET", Vec::new()),
            (vec!["-list-primary"], "GET", Vec::new()),
            (vec!["-install", key], "POST", body.clone()),
            (vec!["-use", key], "PUT", body.clone()),
            (vec!["-remove", key], "DELETE", body),
        ];
        for (flags, method, body) in cases {
            let args = parse(&flags);
            let sent = request(&action(&args).unwrap(), args.relay_factor, args.local_only);
            assert_eq!(sent, KeyringRequest { method, path: "/v1/operator/keyring".into(), body }, "{flags:?}");
        }
    }

    #[test]
    fn local_only_and_relay_factor_go_in_the_query() {
        let args = parse(&["-list", "-local-only", "-relay-factor=2"]);
        let sent = request(&action(&args).unwrap(), args.relay_factor, args.local_only);
        assert_eq!(sent.path, "/v1/operator/keyring?local-only=true&relay-factor=2");
        let args = parse(&["-install=k", "-relay-factor", "5"]);
        let sent = request(&action(&args).unwrap(), args.relay_factor, args.local_only);
        assert_eq!(sent.path, "/v1/operator/keyring?relay-factor=5");
    }

    #[test]
    fn exactly_one_action_is_allowed() {
        assert!(error(&[]).starts_with("Usage: conclave keyring"));
        assert_eq!(error(&["-list", "-install", "k"]), "Only a single action is allowed");
        assert_eq!(error(&["-use", "k", "-remove", "k"]), "Only a single action is allowed");
    }

    #[test]
    fn relay_factor_beyond_five_or_below_zero_is_refused() {
        let expected = "Error parsing relay factor: Relay factor must be in range: [0, 5]";
        assert_eq!(error(&["-list", "-relay-factor", "6"]), expected);
        assert_eq!(error(&["-list", "-relay-factor", "-1"]), expected);
    }

    #[test]
    fn local_only_is_refused_for_writes() {
        assert_eq!(
            error(&["-install", "k", "-local-only"]),
            "Error validating local-only: local-only can only be set for list requests"
        );
    }

    #[test]
    fn each_action_announces_itself_as_consul() {
        assert_eq!(announcement(&Action::Install("k".into())), "==> Installing new gossip encryption key...");
        assert_eq!(announcement(&Action::Use("k".into())), "==> Changing primary gossip encryption key...");
        assert_eq!(announcement(&Action::Remove("k".into())), "==> Removing gossip encryption key...");
        assert_eq!(announcement(&Action::List(KeySet::Installed)), "==> Gathering installed encryption keys...");
    }
}
