//! The ACL system's behaviour: rules parsing in both syntaxes, Consul's precedence, identities,
//! bootstrap once, and writes authorized at apply so a revocation holds for every later entry.

use std::borrow::Cow;

use super::*;
use crate::kv::KvCommand;
use crate::state::{Command, Proposal, Response, State};

fn authorizer_of(texts: &[&str], default_allow: bool) -> Authorizer<'static> {
    let policies =
        texts.iter().map(|t| Cow::Owned(CompiledRules::compile(&parse_rules(t).expect("rules parse")))).collect();
    Authorizer { management: false, default_allow, policies }
}

#[test]
fn hcl_and_json_rules_parse_to_the_same_rules() {
    let hcl = r#"
key_prefix "app/" { policy = "write" }
service "web" {
  policy = "read"
  intentions = "read"
}
operator = "read"
"#;
    let json = r#"{"key_prefix": {"app/": {"policy": "write"}}, "service": {"web": {"policy": "read", "intentions": "read"}}, "operator": "read"}"#;
    let mut a = parse_rules(hcl).unwrap().rules;
    let mut b = parse_rules(json).unwrap().rules;
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert_eq!(a.len(), 3);
}

#[test]
fn a_bad_rule_names_its_line_and_problem() {
    let error = parse_rules("key \"a\" { policy = \"read\" }\nkey_prefix \"x\" { policy = \"bogus\" }").unwrap_err();
    assert!(error.contains("line 2") && error.contains("bogus"), "{error}");
    assert!(parse_rules("widget \"x\" { policy = \"read\" }").unwrap_err().contains("unknown ACL resource"));
    assert!(parse_rules("service \"x\" { policy = \"list\" }").is_err(), "list is for keys only");
    assert!(parse_rules("key_prefix \"x\" {").unwrap_err().starts_with("Failed to parse ACL rules"));
    assert!(parse_rules("namespace \"x\" { policy = \"read\" }").unwrap_err().contains("Enterprise"));
}

#[test]
fn exact_beats_prefix_and_longest_prefix_wins() {
    let authz = authorizer_of(
        &[r#"key_prefix "app/" { policy = "write" }
             key_prefix "app/secret/" { policy = "deny" }
             key "app/secret/open" { policy = "read" }"#],
        false,
    );
    assert!(authz.allows(Resource::Key, "app/x", Need::Write));
    assert!(!authz.allows(Resource::Key, "app/secret/x", Need::Read));
    assert!(authz.allows(Resource::Key, "app/secret/open", Need::Read));
    assert!(!authz.allows(Resource::Key, "app/secret/open", Need::Write));
    assert!(!authz.allows(Resource::Key, "other", Need::Read), "default deny");
}

#[test]
fn across_policies_deny_beats_write_beats_list_beats_read() {
    let authz = authorizer_of(&[r#"key "a" { policy = "read" }"#, r#"key "a" { policy = "write" }"#], false);
    assert!(authz.allows(Resource::Key, "a", Need::Write));
    let authz = authorizer_of(&[r#"key "a" { policy = "write" }"#, r#"key "a" { policy = "deny" }"#], true);
    assert!(!authz.allows(Resource::Key, "a", Need::Read));
    // The merged set decides: an exact read in one policy beats a prefix write in another.
    let authz = authorizer_of(&[r#"key "a/x" { policy = "read" }"#, r#"key_prefix "a/" { policy = "write" }"#], false);
    assert!(!authz.allows(Resource::Key, "a/x", Need::Write));
    let authz = authorizer_of(&[r#"key_prefix "" { policy = "list" }"#], false);
    assert!(authz.allows(Resource::Key, "z", Need::List) && !authz.allows(Resource::Key, "z", Need::Write));
}

#[test]
fn default_allow_never_grants_the_acl_system() {
    let authz = authorizer_of(&[], true);
    assert!(authz.allows(Resource::Key, "x", Need::Write));
    assert!(!authz.allows(Resource::Acl, "", Need::Read));
}

#[test]
fn a_recursive_delete_needs_write_on_everything_below() {
    let authz =
        authorizer_of(&[r#"key_prefix "a/" { policy = "write" }"#, r#"key "a/keep" { policy = "read" }"#], false);
    assert!(!authz.allows_write_prefix(Resource::Key, "a/"));
    assert!(authz.allows_write_prefix(Resource::Key, "a/other/"));
}

fn token(accessor: &str, secret: &str, policies: &[&str]) -> Token {
    Token {
        accessor_id: accessor.into(),
        secret_id: secret.into(),
        description: String::new(),
        policies: policies.iter().map(|id| Link { id: id.to_string() }).collect(),
        roles: Vec::new(),
        service_identities: Vec::new(),
        node_identities: Vec::new(),
        local: false,
        expiration_time_ms: None,
        expiration_ttl_ns: 0,
        auth_method: String::new(),
        create_time_ms: 0,
        create_index: 0,
        modify_index: 0,
    }
}

fn policy(id: &str, name: &str, rules: &str) -> Policy {
    Policy {
        id: id.into(),
        name: name.into(),
        description: String::new(),
        rules: rules.into(),
        datacenters: Vec::new(),
        compiled: CompiledRules::default(),
        create_index: 0,
        modify_index: 0,
    }
}

fn authority(secret: &str) -> Authority {
    Authority { secret_id: secret.into(), default_allow: false, datacenter: "dc1".into() }
}

fn propose(state: &mut State, index: u64, command: Command, secret: Option<&str>) -> Response {
    let proposal = Proposal { proposed_at_ms: index, command, authority: secret.map(authority) };
    state.apply_proposal(index, &proposal, &mut crate::state::MemoryRestoreSpace::default()).expect("memory space")
}

fn set(key: &str) -> Command {
    Command::Kv(KvCommand::Set { key: key.into(), value: b"v".to_vec(), flags: 0 })
}

#[test]
fn bootstrap_happens_once() {
    let mut state = State::new();
    let boot = |a: &str| {
        Command::Acl(AclCommand::Bootstrap {
            token: token(a, &format!("{a}-secret"), &[GLOBAL_MANAGEMENT_POLICY_ID]),
            reset_index: None,
        })
    };
    assert_eq!(propose(&mut state, 1, boot("root"), None), Response::Applied);
    assert_eq!(
        propose(&mut state, 2, boot("again"), None),
        Response::Rejected("ACL bootstrap no longer allowed (reset index: 1)".into())
    );
    assert_eq!(propose(&mut state, 3, set("any/key"), Some("root-secret")), Response::Kv(true));
}

#[test]
fn a_write_ordered_after_a_token_delete_is_refused_at_apply() {
    let mut state = State::new();
    let setup = [
        Command::Acl(AclCommand::SetPolicy {
            policy: policy("p1", "app", r#"key_prefix "app/" { policy = "write" }"#),
            create: true,
        }),
        Command::Acl(AclCommand::SetToken { token: token("t1", "s1", &["p1"]), create: true }),
    ];
    for (i, command) in setup.into_iter().enumerate() {
        assert_eq!(propose(&mut state, i as u64 + 1, command, None), Response::Applied);
    }
    assert_eq!(propose(&mut state, 3, set("app/x"), Some("s1")), Response::Kv(true));
    let Response::Denied(why) = propose(&mut state, 4, set("other/x"), Some("s1")) else { panic!("not denied") };
    assert_eq!(why, "Permission denied: token with AccessorID 't1' lacks permission 'key:write' on \"other/x\"");
    let delete = Command::Acl(AclCommand::DeleteToken { accessor_id: "t1".into() });
    assert_eq!(propose(&mut state, 5, delete, None), Response::Applied);
    assert_eq!(propose(&mut state, 6, set("app/y"), Some("s1")), Response::Denied("ACL not found".into()));
    assert!(state.kv().get("app/y").is_none());
    assert_eq!(state.last_index(), 6);
}

#[test]
fn a_policy_change_takes_the_permission_away_for_later_entries() {
    let mut state = State::new();
    let rules = r#"key_prefix "app/" { policy = "write" }"#;
    propose(
        &mut state,
        1,
        Command::Acl(AclCommand::SetPolicy { policy: policy("p1", "app", rules), create: true }),
        None,
    );
    propose(
        &mut state,
        2,
        Command::Acl(AclCommand::SetToken { token: token("t1", "s1", &["p1"]), create: true }),
        None,
    );
    let narrowed = policy("p1", "app", r#"key_prefix "app/" { policy = "read" }"#);
    propose(&mut state, 3, Command::Acl(AclCommand::SetPolicy { policy: narrowed, create: false }), None);
    assert!(matches!(propose(&mut state, 4, set("app/x"), Some("s1")), Response::Denied(_)));
}

#[test]
fn identities_expand_as_consul_expands_them() {
    let mut state = State::new();
    let mut with_identity = token("t1", "s1", &[]);
    with_identity.service_identities = vec![ServiceIdentity { service_name: "db".into(), datacenters: vec![] }];
    with_identity.node_identities = vec![NodeIdentity { node_name: "n1".into(), datacenter: "dc1".into() }];
    propose(&mut state, 1, Command::Acl(AclCommand::SetToken { token: with_identity, create: true }), None);
    let context = AclContext { default_allow: false, datacenter: "dc1", now_ms: 0 };
    let resolved = state.acl().resolve("s1", &context).unwrap();
    let authz = &resolved.authorizer;
    assert!(authz.allows(Resource::Service, "db", Need::Write));
    assert!(authz.allows(Resource::Service, "db-sidecar-proxy", Need::Write));
    assert!(authz.allows(Resource::Service, "web", Need::Read) && !authz.allows(Resource::Service, "web", Need::Write));
    assert!(authz.allows(Resource::Node, "n1", Need::Write) && authz.allows(Resource::Node, "n2", Need::Read));
    assert!(!authz.allows(Resource::Key, "k", Need::Read));
    let elsewhere = AclContext { datacenter: "dc2", ..context };
    let resolved = state.acl().resolve("s1", &elsewhere).unwrap();
    assert!(!resolved.authorizer.allows(Resource::Node, "n1", Need::Write), "node identity is for dc1");
}

#[test]
fn an_expired_token_is_not_found() {
    let mut state = State::new();
    let mut expiring = token("t1", "s1", &[GLOBAL_MANAGEMENT_POLICY_ID]);
    expiring.expiration_time_ms = Some(10);
    propose(&mut state, 1, Command::Acl(AclCommand::SetToken { token: expiring, create: true }), None);
    assert_eq!(propose(&mut state, 5, set("k"), Some("s1")), Response::Kv(true));
    assert_eq!(propose(&mut state, 11, set("k"), Some("s1")), Response::Denied("ACL not found".into()));
}

#[test]
fn acl_state_survives_a_snapshot() {
    let mut state = State::new();
    propose(
        &mut state,
        1,
        Command::Acl(AclCommand::SetPolicy { policy: policy("p1", "app", "operator = \"read\""), create: true }),
        None,
    );
    propose(
        &mut state,
        2,
        Command::Acl(AclCommand::SetToken { token: token("t1", "s1", &["p1"]), create: true }),
        None,
    );
    let restored = crate::codec::decode_snapshot(&crate::codec::encode_snapshot(&state)).unwrap();
    assert_eq!(restored, state);
    assert_eq!(restored.acl().token_by_secret("s1").unwrap().accessor_id, "t1");
    assert!(restored.acl().policy_by_name("global-management").is_some());
}
