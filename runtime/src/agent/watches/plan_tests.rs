//! Tests of the watch plan's decisions: when the handler runs, and what each round asks.

use serde_json::json;

use super::*;
use crate::config::watches::WatchHandler;

fn spec(kind: WatchKind) -> WatchSpec {
    WatchSpec { kind, datacenter: None, token: None, stale: false, handler: WatchHandler::Print }
}

fn answer(status: u16, index: u64, body: Value) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("X-Consul-Index".into(), index.to_string())],
        body: serde_json::to_vec(&body).unwrap(),
    }
}

#[test]
fn handler_runs_when_index_and_data_change_and_not_otherwise() {
    let spec = spec(WatchKind::Services);
    let mut plan = Plan::default();
    assert_eq!(plan.step(&spec, &answer(200, 5, json!({"a": []}))).unwrap(), Some((5, json!({"a": []}))));
    assert_eq!(plan.path(&spec), "/v1/catalog/services?index=5");
    assert_eq!(plan.step(&spec, &answer(200, 5, json!({"a": []}))).unwrap(), None, "same index");
    assert_eq!(plan.step(&spec, &answer(200, 6, json!({"a": []}))).unwrap(), None, "same data");
    assert_eq!(plan.step(&spec, &answer(200, 7, json!({"b": []}))).unwrap(), Some((7, json!({"b": []}))));
}

#[test]
fn index_going_backwards_starts_over_from_zero() {
    let spec = spec(WatchKind::Nodes);
    let mut plan = Plan::default();
    plan.step(&spec, &answer(200, 9, json!([1]))).unwrap();
    plan.step(&spec, &answer(200, 3, json!([2]))).unwrap();
    assert_eq!(plan.path(&spec), "/v1/catalog/nodes");
}

#[test]
fn key_watch_hands_over_the_pair_and_ignores_a_missing_key_at_first() {
    let spec = spec(WatchKind::Key { key: "a b/c".into() });
    let mut plan = Plan::default();
    assert_eq!(plan.path(&spec), "/v1/kv/a%20b/c");
    assert_eq!(plan.step(&spec, &answer(404, 2, json!(null))).unwrap(), None);
    let pair = json!({"Key": "a b/c", "Value": "dg=="});
    assert_eq!(plan.step(&spec, &answer(200, 4, json!([pair.clone()]))).unwrap(), Some((4, pair)));
    assert_eq!(plan.step(&spec, &answer(404, 5, json!(null))).unwrap(), Some((5, Value::Null)), "deleted");
}

#[test]
fn event_watch_hands_over_only_the_events_after_the_last_seen() {
    let spec = spec(WatchKind::Event { name: "deploy".into() });
    let first = json!({"ID": "00000000-0000-0001-0000-000000000003", "Name": "deploy"});
    let second = json!({"ID": "00000000-0000-0000-0000-000000000007", "Name": "deploy"});
    let mut plan = Plan::default();
    assert_eq!(plan.step(&spec, &answer(200, 2, json!([first.clone()]))).unwrap(), Some((2, json!([first.clone()]))));
    assert_eq!(plan.path(&spec), "/v1/event/list?name=deploy&index=2");
    let both = json!([first, second.clone()]);
    assert_eq!(plan.step(&spec, &answer(200, 7, both)).unwrap(), Some((7, json!([second]))));
}

#[test]
fn service_and_checks_watches_ask_consuls_endpoints() {
    let mut service = spec(WatchKind::Service { service: "web".into(), tags: vec!["v1".into()], passing_only: true });
    service.datacenter = Some("east".into());
    service.stale = true;
    assert_eq!(Plan::default().path(&service), "/v1/health/service/web?tag=v1&passing=true&dc=east&stale=");
    let state = spec(WatchKind::Checks { service: String::new(), state: "critical".into(), tags: vec![] });
    assert_eq!(Plan::default().path(&state), "/v1/health/state/critical");
    let of_service = spec(WatchKind::Checks { service: "db".into(), state: String::new(), tags: vec![] });
    assert_eq!(Plan::default().path(&of_service), "/v1/health/checks/db");
    assert_eq!(Plan::default().path(&spec(WatchKind::KeyPrefix { prefix: "app/".into() })), "/v1/kv/app/?recurse=");
}

#[test]
fn an_error_answer_is_an_error_not_a_change() {
    let spec = spec(WatchKind::Services);
    let error = Plan::default().step(&spec, &answer(403, 1, json!("Permission denied"))).unwrap_err();
    assert!(error.starts_with("Unexpected response code: 403"), "{error}");
}

#[test]
fn event_watch_does_not_start_over_when_the_index_goes_down() {
    let spec = spec(WatchKind::Event { name: String::new() });
    let high = json!({"ID": "00000000-0000-0009-0000-000000000000", "Name": "a"});
    let low = json!({"ID": "00000000-0000-0002-0000-000000000000", "Name": "b"});
    let mut plan = Plan::default();
    plan.step(&spec, &answer(200, 9, json!([high.clone()]))).unwrap();
    assert_eq!(plan.step(&spec, &answer(200, 2, json!([high, low.clone()]))).unwrap(), Some((2, json!([low]))));
    assert_eq!(plan.path(&spec), "/v1/event/list?index=2");
}
