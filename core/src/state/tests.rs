//! Unit tests of the state machine through `State::apply`, each named after the rule it proves: the
//! catalog table's rules, and the effects that cross tables (sessions, locks, transactions).

use super::*;
use crate::catalog::{
    CatalogCommand, CheckSpec, CheckStatus, DeregisterRequest, NodeSpec, RegisterRequest, ServiceSpec,
};
use crate::kv::SessionCommand;

fn node(name: &str) -> NodeSpec {
    NodeSpec {
        node: name.to_string(),
        address: "10.0.0.1".to_string(),
        datacenter: "dc1".to_string(),
        ..NodeSpec::default()
    }
}

fn service(name: &str, id: &str, tags: &[&str]) -> ServiceSpec {
    ServiceSpec {
        id: id.to_string(),
        service: name.to_string(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        port: 80,
        ..ServiceSpec::default()
    }
}

fn register(node_name: &str, svc: Option<ServiceSpec>, checks: Vec<CheckSpec>) -> Command {
    let request = RegisterRequest { node: node(node_name), skip_node_update: false, service: svc, checks };
    Command::Catalog(CatalogCommand::Register(request))
}

fn check(id: &str, service_id: &str, status: CheckStatus) -> CheckSpec {
    CheckSpec {
        check_id: id.to_string(),
        name: id.to_string(),
        status,
        service_id: service_id.to_string(),
        ..CheckSpec::default()
    }
}

fn deregister(node: &str, service_id: Option<&str>, check_id: Option<&str>) -> Command {
    Command::Catalog(CatalogCommand::Deregister(DeregisterRequest {
        node: node.to_string(),
        service_id: service_id.map(str::to_string),
        check_id: check_id.map(str::to_string),
    }))
}

#[test]
fn service_id_defaults_to_name() {
    let mut state = State::new();
    assert_eq!(state.apply(1, &register("n1", Some(service("web", "", &[])), vec![])), Response::Applied);
    let instance = state.instance("n1", "web").expect("registered under its name");
    assert_eq!((instance.create_index, instance.modify_index), (1, 1));
}

#[test]
fn modify_index_unchanged_on_identical_register() {
    let mut state = State::new();
    state.apply(1, &register("n1", Some(service("web", "w1", &["a"])), vec![]));
    state.apply(2, &register("n1", Some(service("web", "w1", &["a"])), vec![]));
    assert_eq!(state.instance("n1", "w1").unwrap().modify_index, 1);
    assert_eq!(state.index_of(&WatchKey::Service("web".into())), 1);
    state.apply(3, &register("n1", Some(service("web", "w1", &["b"])), vec![]));
    let instance = state.instance("n1", "w1").unwrap();
    assert_eq!((instance.create_index, instance.modify_index), (1, 3));
}

#[test]
fn deregister_node_removes_its_services_and_checks() {
    let mut state = State::new();
    state.apply(
        1,
        &register(
            "n1",
            Some(service("web", "w1", &[])),
            vec![check("c1", "w1", CheckStatus::Passing), check("serfHealth", "", CheckStatus::Passing)],
        ),
    );
    state.apply(2, &deregister("n1", None, None));
    assert!(state.nodes().is_empty());
    assert!(state.service_instances("web").is_empty());
    assert!(state.checks_in_state(None).is_empty());
    assert_eq!(state.index_of(&WatchKey::Service("web".into())), 2);
    state.assert_invariants();
}

#[test]
fn deregister_service_removes_its_checks_only() {
    let mut state = State::new();
    state.apply(
        1,
        &register(
            "n1",
            Some(service("web", "w1", &[])),
            vec![check("c1", "w1", CheckStatus::Passing), check("serfHealth", "", CheckStatus::Passing)],
        ),
    );
    state.apply(2, &deregister("n1", Some("w1"), None));
    assert_eq!(state.node_checks("n1").len(), 1);
    assert!(state.node("n1").is_some());
}

#[test]
fn check_for_unknown_service_is_rejected_and_nothing_applied() {
    let mut state = State::new();
    let response = state
        .apply(1, &register("n1", Some(service("web", "w1", &[])), vec![check("c1", "nope", CheckStatus::Passing)]));
    assert_eq!(response, Response::Rejected("Unknown service ID 'nope' for check ID 'c1'".into()));
    assert!(state.nodes().is_empty());
    assert_eq!(state.last_index(), 1, "a rejected command still consumes its index");
}

#[test]
fn blocking_index_of_one_service_is_not_moved_by_another() {
    let mut state = State::new();
    state.apply(1, &register("n1", Some(service("a", "a1", &[])), vec![]));
    state.apply(2, &register("n2", Some(service("b", "b1", &[])), vec![]));
    state.apply(3, &register("n2", Some(service("b", "b1", &["x"])), vec![]));
    assert_eq!(state.index_of(&WatchKey::Service("a".into())), 1);
    assert_eq!(state.index_of(&WatchKey::Service("b".into())), 3);
    assert_eq!(state.index_of(&WatchKey::Services), 3);
}

#[test]
fn node_check_change_moves_every_service_on_that_node() {
    let mut state = State::new();
    state.apply(1, &register("n1", Some(service("a", "a1", &[])), vec![check("serfHealth", "", CheckStatus::Passing)]));
    state.apply(2, &register("n2", Some(service("b", "b1", &[])), vec![]));
    state.apply(3, &register("n1", None, vec![check("serfHealth", "", CheckStatus::Critical)]));
    assert_eq!(state.index_of(&WatchKey::Service("a".into())), 3);
    assert_eq!(state.index_of(&WatchKey::Service("b".into())), 2);
    let health = state.service_health("a");
    assert_eq!(health[0].checks[0].status, CheckStatus::Critical);
}

#[test]
fn deregistering_last_instance_moves_service_index() {
    let mut state = State::new();
    state.apply(1, &register("n1", Some(service("a", "a1", &[])), vec![]));
    state.apply(2, &deregister("n1", Some("a1"), None));
    assert_eq!(state.index_of(&WatchKey::Service("a".into())), 2);
    assert!(state.services().is_empty());
}

#[test]
fn checks_follow_their_service_tags() {
    let mut state = State::new();
    state.apply(1, &register("n1", Some(service("a", "a1", &["x"])), vec![check("c", "a1", CheckStatus::Passing)]));
    state.apply(2, &register("n1", Some(service("a", "a1", &["y"])), vec![]));
    assert_eq!(state.node_checks("n1")[0].service_tags, vec!["y".to_string()]);
}

#[test]
fn services_lists_the_union_of_tags() {
    let mut state = State::new();
    state.apply(1, &register("n1", Some(service("a", "a1", &["x", "y"])), vec![]));
    state.apply(2, &register("n2", Some(service("a", "a1", &["y", "z"])), vec![]));
    assert_eq!(state.services()["a"], vec!["x", "y", "z"]);
}

#[test]
#[should_panic(expected = "apply out of order")]
fn applying_an_old_index_is_a_bug() {
    let mut state = State::new();
    state.apply(5, &Command::Noop);
    state.apply(5, &Command::Noop);
}

fn session(id: &str, node: &str, lock_delay_ms: u64) -> Command {
    Command::Session(SessionCommand::Create(crate::kv::Session {
        id: id.to_string(),
        node: node.to_string(),
        node_checks: vec!["serfHealth".to_string()],
        lock_delay_ns: lock_delay_ms * 1_000_000,
        ..crate::kv::Session::default()
    }))
}

fn lock(key: &str, session: &str) -> Command {
    Command::Kv(crate::kv::KvCommand::Lock { key: key.into(), value: Vec::new(), flags: 0, session: session.into() })
}

#[test]
fn a_session_needs_its_node_and_healthy_checks() {
    let mut state = State::new();
    assert!(matches!(state.apply(1, &session("s", "n1", 0)), Response::Rejected(_)));
    state.apply(2, &register("n1", None, vec![check("serfHealth", "", CheckStatus::Critical)]));
    let refused = state.apply(3, &session("s", "n1", 0));
    assert_eq!(refused, Response::Rejected("Check 'serfHealth' is in critical state".to_string()));
    state.apply(4, &register("n1", None, vec![check("serfHealth", "", CheckStatus::Passing)]));
    assert_eq!(state.apply(5, &session("s", "n1", 0)), Response::Applied);
    assert_eq!(state.apply(6, &lock("k", "nope")), Response::Rejected("invalid session \"nope\"".to_string()));
}

#[test]
fn a_critical_check_invalidates_its_sessions_and_releases_their_locks_after_lock_delay() {
    let mut state = State::new();
    state.apply_at(1, 1_000, &register("n1", None, vec![check("serfHealth", "", CheckStatus::Passing)]));
    state.apply_at(2, 1_000, &session("s1", "n1", 5_000));
    state.apply_at(3, 1_000, &session("s2", "n1", 0));
    assert_eq!(state.apply_at(4, 1_000, &lock("k", "s1")), Response::Kv(true));
    state.apply_at(5, 2_000, &register("n1", None, vec![check("serfHealth", "", CheckStatus::Critical)]));
    assert!(state.sessions().get("s1").is_none() && state.sessions().get("s2").is_none());
    assert_eq!(state.kv().get("k").unwrap().session, "");
    state.apply_at(6, 2_000, &register("n1", None, vec![check("serfHealth", "", CheckStatus::Passing)]));
    state.apply_at(7, 2_000, &session("s3", "n1", 0));
    assert_eq!(state.apply_at(8, 6_999, &lock("k", "s3")), Response::Kv(false), "within the lock delay");
    assert_eq!(state.apply_at(9, 7_000, &lock("k", "s3")), Response::Kv(true));
    state.assert_invariants();
}

#[test]
fn deregistering_a_node_destroys_its_sessions() {
    let mut state = State::new();
    state.apply(1, &register("n1", None, vec![check("serfHealth", "", CheckStatus::Passing)]));
    state.apply(2, &session("s1", "n1", 0));
    state.apply(3, &lock("k", "s1"));
    state.apply(4, &deregister("n1", None, None));
    assert!(state.sessions().get("s1").is_none());
    assert_eq!(state.kv().get("k").unwrap().session, "");
    state.assert_invariants();
}

#[test]
fn a_failed_transaction_is_undone_with_every_error_reported() {
    use crate::kv::txn::KvVerb;
    let op = |verb, key: &str, index| crate::kv::TxnOp::Kv {
        verb,
        key: key.into(),
        value: b"v".to_vec(),
        flags: 0,
        index,
        session: String::new(),
    };
    let mut state = State::new();
    let committed = state.apply(1, &Command::Txn(vec![op(KvVerb::Set, "a", 0), op(KvVerb::Get, "a", 0)]));
    let Response::Txn(crate::kv::TxnOutcome::Committed(results)) = committed else { panic!("{committed:?}") };
    assert_eq!(results.len(), 2);
    let ops = vec![op(KvVerb::Set, "b", 0), op(KvVerb::Cas, "a", 7), op(KvVerb::CheckNotExists, "a", 0)];
    let Response::Txn(crate::kv::TxnOutcome::RolledBack(errors)) = state.apply(2, &Command::Txn(ops)) else {
        panic!("should roll back")
    };
    let failed: Vec<usize> = errors.iter().map(|e| e.op_index).collect();
    assert_eq!(failed, [1, 2]);
    assert!(state.kv().get("b").is_none(), "the set before the failure is undone");
    assert_eq!(state.last_index(), 2);
}

/// A query "waits" while the key's index is at most the index it waits past (the HTTP layer's rule).
fn wakes(state: &State, key: &WatchKey, waiting_past: u64) -> bool {
    state.index_of(key) > waiting_past
}

#[test]
fn reaping_tombstones_keeps_blocking_queries_on_deleted_keys_right() {
    use crate::kv::KvCommand;
    let set = |key: &str| Command::Kv(KvCommand::Set { key: key.into(), value: b"v".to_vec(), flags: 0 });
    let mut state = State::new();
    state.apply_at(1, 1_000, &set("app/a"));
    state.apply_at(2, 1_000, &set("app/b"));
    let (key, prefix) = (WatchKey::KvKey("app/a".into()), WatchKey::KvPrefix("app/".into()));
    // Queries that began before the delete (waiting past index 2) are woken by it.
    state.apply_at(3, 2_000, &Command::Kv(KvCommand::Delete { key: "app/a".into() }));
    assert!(wakes(&state, &key, 2) && wakes(&state, &prefix, 2));
    // The reap forgets the tombstone without waking queries that wait past the delete.
    state.apply_at(4, 900_000, &Command::ReapTombstones { deleted_before_ms: 3_000 });
    assert_eq!(state.kv().tombstone_count(), 0);
    assert!(!wakes(&state, &key, 3) && !wakes(&state, &prefix, 3));
    // The next change under them wakes them.
    state.apply_at(5, 900_001, &set("app/a"));
    assert!(wakes(&state, &key, 3) && wakes(&state, &prefix, 3));
}

#[test]
fn a_reap_proposed_on_behalf_of_a_token_needs_operator_write() {
    let authority = crate::acl::Authority { secret_id: String::new(), default_allow: false, datacenter: "dc1".into() };
    let proposal = Proposal {
        proposed_at_ms: 0,
        command: Command::ReapTombstones { deleted_before_ms: 1 },
        authority: Some(authority),
    };
    let mut state = State::new();
    let answer = state.apply_proposal(1, &proposal, &mut crate::state::NoRestoreSpace).unwrap();
    assert!(matches!(answer, Response::Denied(_)), "{answer:?}");
}
