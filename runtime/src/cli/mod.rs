//! The `conclave` command line, with Consul's Go-style flags: `-flag=value`, `-flag value` and `--flag`
//! all work. Go's flag package treats one and two dashes alike, so arguments are normalised to clap's
//! `--flag` form before parsing.

pub mod acl;
pub mod agent;
pub mod autopilot;
pub mod client;
pub mod commands;
pub mod debug;
pub mod event;
pub mod keygen;
pub mod keyring;
pub mod kv;
pub mod lock;
pub mod login;
pub mod monitor;
pub mod raft_recover;
pub mod snapshot;
pub mod tls;
pub mod watch;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "conclave",
    version,
    about = "Conclave: a Consul-compatible service catalog",
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Parsed once per process; the size of the agent's arguments does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Runs a Conclave agent.
    Agent(agent::AgentArgs),
    /// Lists the members of the cluster.
    Members(commands::MembersArgs),
    /// Tells the agent to join other agents.
    Join(commands::JoinArgs),
    /// Gracefully stops the agent.
    Leave(commands::HttpOnly),
    /// Forces a member into the left state.
    ForceLeave(commands::ForceLeaveArgs),
    /// Reloads the agent's configuration files.
    Reload(commands::HttpOnly),
    /// Shows the agent's state.
    Info(commands::HttpOnly),
    /// Queries the catalog.
    #[command(subcommand)]
    Catalog(commands::CatalogCommand),
    /// Registers and deregisters services with the local agent.
    #[command(subcommand)]
    Services(commands::ServicesCommand),
    /// Operator commands.
    #[command(subcommand)]
    Operator(commands::OperatorCommand),
    /// Reads and writes the KV store.
    #[command(subcommand)]
    Kv(kv::KvCommand),
    /// Runs a command while holding a lock on a KV prefix.
    Lock(lock::LockArgs),
    /// Manages ACL tokens, policies, roles, auth methods and binding rules.
    #[command(subcommand)]
    Acl(acl::AclCommand),
    /// Trades an auth method's bearer token for an ACL token.
    Login(login::LoginArgs),
    /// Destroys a token created with `login`.
    Logout(login::LogoutArgs),
    /// Creates and manages the agent TLS CA and certificates.
    #[command(subcommand)]
    Tls(tls::TlsCommand),
    /// Generates a new gossip encryption key.
    Keygen,
    /// Manages gossip encryption keys across the cluster.
    Keyring(keyring::KeyringArgs),
    /// Saves, restores and inspects snapshots of the cluster's state.
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCommand),
    /// Streams the agent's log lines until interrupted.
    Monitor(monitor::MonitorArgs),
    /// Records the agent, its host and its log for a while into a debug archive.
    Debug(debug::DebugArgs),
    /// Fires a new user event.
    Event(event::EventArgs),
    /// Watches a view of the catalog, the KV store or the events, running a handler on each change.
    Watch(watch::WatchArgs),
    /// Prints the Conclave version.
    Version,
}

/// Rewrites Go-style single-dash long flags (`-node=s1`, `-server`) to `--node=s1`, `--server`. A lone
/// `-`, negative numbers and everything after `--` are left alone.
pub fn normalize_go_flags(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let args: Vec<String> = args.into_iter().collect();
    // `lock PREFIX COMMAND...` and `watch ... HANDLER...`: Go stops parsing flags at the first positional
    // argument, so the child's own flags are passed through untouched.
    let lock_child_at = match args.get(1).map(String::as_str) {
        Some("lock") => child_start(&args, LOCK_TAKES_VALUE, 1),
        Some("watch") => child_start(&args, WATCH_TAKES_VALUE, 0),
        _ => None,
    };
    let mut out = Vec::new();
    let mut rest_is_positional = false;
    for (position, arg) in args.into_iter().enumerate() {
        if lock_child_at == Some(position) && !rest_is_positional {
            rest_is_positional = true;
            out.push("--".to_string());
        }
        if rest_is_positional {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            rest_is_positional = true;
            out.push(arg);
            continue;
        }
        let bytes = arg.as_bytes();
        let single_dash_word =
            bytes.len() >= 2 && bytes[0] == b'-' && bytes[1] != b'-' && bytes[1].is_ascii_alphabetic();
        if single_dash_word {
            out.push(format!("-{arg}"));
        } else {
            out.push(arg);
        }
    }
    out
}

/// The flags of `lock` that take a value.
const LOCK_TAKES_VALUE: &[&str] = &["name", "try", "n", "monitor-retry", "timeout"];
/// The flags of `watch` that take a value (its booleans take one only after `=`).
const WATCH_TAKES_VALUE: &[&str] = &["type", "key", "prefix", "service", "tag", "state", "name"];

/// Where the child command of `lock` or `watch` starts: after the flags and `positionals` arguments
/// (the prefix of `lock`).
fn child_start(args: &[String], takes_value: &[&str], positionals: usize) -> Option<usize> {
    const HTTP_TAKES_VALUE: &[&str] = &[
        "http-addr",
        "token",
        "token-file",
        "datacenter",
        "ca-file",
        "ca-path",
        "client-cert",
        "client-key",
        "tls-server-name",
    ];
    let mut position = 2;
    while position < args.len() {
        let arg = &args[position];
        if arg == "--" {
            return None;
        }
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')).filter(|f| !f.is_empty()) else {
            return Some(position + positionals);
        };
        let takes_value = takes_value.contains(&flag) || HTTP_TAKES_VALUE.contains(&flag);
        position += if !flag.contains('=') && takes_value { 2 } else { 1 };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn go_style_flags_become_double_dash() {
        let out = normalize_go_flags(strings(&[
            "conclave",
            "agent",
            "-server",
            "-node=s1",
            "-join",
            "127.0.0.1",
            "--dev",
            "-1",
        ]));
        assert_eq!(out, strings(&["conclave", "agent", "--server", "--node=s1", "--join", "127.0.0.1", "--dev", "-1"]));
    }

    #[test]
    fn the_child_command_of_lock_keeps_its_flags() {
        let out = normalize_go_flags(strings(&["conclave", "lock", "-name", "x", "-verbose", "svc", "ls", "-la"]));
        assert_eq!(out, strings(&["conclave", "lock", "--name", "x", "--verbose", "svc", "--", "ls", "-la"]));
        let cli = Cli::try_parse_from(out).unwrap();
        let Command::Lock(lock) = cli.command else { panic!("not lock") };
        assert_eq!((lock.prefix.as_str(), lock.command.clone()), ("svc", strings(&["ls", "-la"])));
    }

    #[test]
    fn the_handler_of_watch_keeps_its_flags() {
        let args = strings(&["conclave", "watch", "-type", "key", "-key", "k", "-shell=false", "ls", "-la"]);
        let out = normalize_go_flags(args);
        assert_eq!(
            out,
            strings(&["conclave", "watch", "--type", "key", "--key", "k", "--shell=false", "--", "ls", "-la"])
        );
        let Command::Watch(watch) = Cli::try_parse_from(out).unwrap().command else { panic!("not watch") };
        let spec = watch::spec(&watch).unwrap();
        assert_eq!(spec.handler, crate::config::watches::WatchHandler::Args(strings(&["ls", "-la"])));
    }

    #[test]
    fn watch_without_a_type_is_refused() {
        let out = normalize_go_flags(strings(&["conclave", "watch", "-key", "k"]));
        let Command::Watch(watch) = Cli::try_parse_from(out).unwrap().command else { panic!("not watch") };
        let error = watch::spec(&watch).unwrap_err().to_string();
        assert_eq!(error, "Failed to parse watch: Watch type must be specified");
    }

    #[test]
    fn agent_accepts_the_seed_command_line() {
        let args = normalize_go_flags(strings(&[
            "conclave",
            "agent",
            "-server",
            "-bootstrap-expect",
            "3",
            "-data-dir",
            "/tmp/x",
            "-node=s1",
            "-bind=127.0.0.1",
            "-client",
            "127.0.0.1",
            "-join",
            "127.0.0.2",
            "-join",
            "127.0.0.3:8301",
            "-rejoin",
            "-http-port",
            "8500",
        ]));
        let cli = Cli::try_parse_from(args).unwrap();
        let Command::Agent(agent) = cli.command else { panic!("not agent") };
        assert!(agent.server);
        assert_eq!(agent.bootstrap_expect, Some(3));
        assert_eq!(agent.join, vec!["127.0.0.2", "127.0.0.3:8301"]);
        assert_eq!(agent.node.as_deref(), Some("s1"));
    }
}
