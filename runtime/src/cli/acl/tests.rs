//! The ACL helpers (identity flags, data sources, partial IDs) and the command lines users type, parsed.

use clap::Parser;

use super::*;
use crate::cli::{normalize_go_flags, Cli, Command};

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn service_identity_takes_a_comma_separated_datacenter_list() {
    let parsed = service_identities(&strings(&["web:dc1,dc2", "db"])).unwrap();
    assert_eq!(parsed[0], serde_json::json!({"ServiceName": "web", "Datacenters": ["dc1", "dc2"]}));
    assert_eq!(parsed[1], serde_json::json!({"ServiceName": "db"}));
}

#[test]
fn service_identity_with_two_colons_is_malformed() {
    let error = service_identities(&strings(&["web:dc1:x"])).unwrap_err();
    assert_eq!(error.to_string(), r#"Malformed -service-identity argument: "web:dc1:x""#);
}

#[test]
fn node_identity_needs_a_datacenter() {
    assert_eq!(
        node_identities(&strings(&["n1:dc1"])).unwrap(),
        vec![serde_json::json!({"NodeName": "n1", "Datacenter": "dc1"})]
    );
    assert_eq!(
        node_identities(&strings(&["n1"])).unwrap_err().to_string(),
        r#"Malformed -node-identity argument: "n1""#
    );
}

#[test]
fn data_source_reads_at_file_and_dash_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.hcl");
    std::fs::write(&path, "key_prefix \"\" { policy = \"read\" }\n").unwrap();
    let from_file = load_data_source_from(&format!("@{}", path.display()), &mut std::io::empty()).unwrap();
    assert_eq!(from_file, "key_prefix \"\" { policy = \"read\" }\n");
    let from_stdin = load_data_source_from("-", &mut "node \"\" {}".as_bytes()).unwrap();
    assert_eq!(from_stdin, "node \"\" {}");
    assert_eq!(load_data_source_from("literal", &mut std::io::empty()).unwrap(), "literal");
}

#[test]
fn partial_id_must_match_exactly_one() {
    let ids = ["abcd-1", "abce-2", "ffff-3"];
    assert_eq!(pick_unique_prefix(&ids, "ff", "token").unwrap(), "ffff-3");
    assert_eq!(pick_unique_prefix(&ids, "abc", "token").unwrap_err().to_string(), "Partial token ID is not unique");
    assert_eq!(pick_unique_prefix(&ids, "99", "policy").unwrap_err().to_string(), "No such policy ID with prefix: 99");
}

#[test]
fn old_agent_token_names_reach_the_same_endpoints() {
    assert_eq!(agent_token_endpoint("master"), Some("agent_recovery"));
    assert_eq!(agent_token_endpoint("agent_master"), Some("agent_recovery"));
    assert_eq!(agent_token_endpoint("recovery"), Some("agent_recovery"));
    assert_eq!(agent_token_endpoint("acl_token"), Some("default"));
    assert_eq!(agent_token_endpoint("bogus"), None);
}

fn parse(args: &[&str]) -> AclCommand {
    let cli = Cli::try_parse_from(normalize_go_flags(strings(args))).unwrap();
    let Command::Acl(command) = cli.command else { panic!("not acl") };
    command
}

#[test]
fn every_command_definition_is_consistent() {
    <Cli as clap::CommandFactory>::command().debug_assert();
}

#[test]
fn token_create_takes_repeated_go_style_link_flags() {
    let command = parse(&[
        "conclave",
        "acl",
        "token",
        "create",
        "-description=web token",
        "-policy-name",
        "web",
        "-policy-name=db",
        "-service-identity",
        "web:dc1,dc2",
        "-node-identity=n1:dc1",
        "-expires-ttl=1h",
        "-local",
        "-format=json",
        "-token-file",
        "/tmp/t",
    ]);
    let AclCommand::Token(token::TokenCommand::Create(args)) = command else { panic!("not token create") };
    assert_eq!(args.links.policy_name, strings(&["web", "db"]));
    assert_eq!(args.links.service_identity, strings(&["web:dc1,dc2"]));
    assert_eq!(
        service_identities(&args.links.service_identity).unwrap(),
        vec![serde_json::json!({"ServiceName": "web", "Datacenters": ["dc1", "dc2"]})]
    );
    assert_eq!(args.expires_ttl, Some(3_600_000_000_000));
    assert!(args.local && args.format.is_json());
    assert_eq!(args.http.token_file.as_deref(), Some("/tmp/t"));
}

#[test]
fn policy_create_rules_at_file_is_read_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.hcl");
    std::fs::write(&path, "service_prefix \"\" { policy = \"read\" }").unwrap();
    let rules_flag = format!("@{}", path.display());
    let command = parse(&["conclave", "acl", "policy", "create", "-name", "read-all", "-rules", &rules_flag]);
    let AclCommand::Policy(policy::PolicyCommand::Create(args)) = command else { panic!("not policy create") };
    assert_eq!(args.rules, rules_flag);
    assert_eq!(load_data_source(&args.rules).unwrap(), "service_prefix \"\" { policy = \"read\" }");
}

#[test]
fn token_update_accepts_append_and_deprecated_merge_flags() {
    let command = parse(&[
        "conclave",
        "acl",
        "token",
        "update",
        "-accessor-id",
        "abcd",
        "-append-policy-name",
        "web",
        "-append-policy-id",
        "1234",
        "-merge-roles",
        "-role-name",
        "r",
    ]);
    let AclCommand::Token(token::TokenCommand::Update(args)) = command else { panic!("not token update") };
    assert_eq!(args.token.accessor_id.as_deref(), Some("abcd"));
    assert_eq!((args.append_policy_name, args.append_policy_id), (strings(&["web"]), strings(&["1234"])));
    assert!(args.merge_roles);
}

#[test]
fn token_read_self_and_set_agent_token_positionals_parse() {
    let AclCommand::Token(token::TokenCommand::Read(read)) = parse(&["conclave", "acl", "token", "read", "-self"])
    else {
        panic!("not token read")
    };
    assert!(read.self_);
    let AclCommand::SetAgentToken(set) = parse(&["conclave", "acl", "set-agent-token", "agent", "abc"]) else {
        panic!("not set-agent-token")
    };
    assert_eq!((set.token_type.as_deref(), set.token.as_deref()), (Some("agent"), Some("abc")));
}

#[test]
fn login_takes_meta_pairs() {
    let cli = Cli::try_parse_from(normalize_go_flags(strings(&[
        "conclave",
        "login",
        "-method=k8s",
        "-bearer-token-file",
        "/jwt",
        "-token-sink-file=/sink",
        "-meta",
        "a=b",
    ])))
    .unwrap();
    let Command::Login(login) = cli.command else { panic!("not login") };
    assert_eq!(login.meta, vec![("a".to_string(), "b".to_string())]);
    assert_eq!((login.method.as_str(), login.token_sink_file.as_str()), ("k8s", "/sink"));
}

#[test]
fn path_segments_keep_uuids_and_escape_slashes() {
    assert_eq!(segment("fbd2447f-7479-4329-ad13-b021d74f86ba"), "fbd2447f-7479-4329-ad13-b021d74f86ba");
    assert_eq!(segment("a/b c"), "a%2Fb%20c");
}
