//! Tests of watch definitions: each type's keys, the handlers, and refusal of what is not understood.

use serde_json::json;

use super::*;

#[test]
fn a_key_watch_with_args_parses() {
    let spec = parse_watch(&json!({"type": "key", "key": "app/config", "args": ["/bin/h", "x"]})).unwrap();
    assert_eq!(spec.kind, WatchKind::Key { key: "app/config".into() });
    assert_eq!(spec.handler, WatchHandler::Args(vec!["/bin/h".into(), "x".into()]));
}

#[test]
fn legacy_handler_runs_in_a_shell() {
    let spec = parse_watch(&json!({"type": "event", "name": "deploy", "handler": "cat >> /tmp/x"})).unwrap();
    assert_eq!(spec.kind, WatchKind::Event { name: "deploy".into() });
    assert_eq!(spec.handler, WatchHandler::Shell("cat >> /tmp/x".into()));
}

#[test]
fn http_handler_config_parses_with_consuls_defaults() {
    let spec = parse_watch(&json!({
        "type": "service", "service": "web", "tag": ["v1"], "passingonly": true,
        "handler_type": "http",
        "http_handler_config": {"path": "https://h/w", "header": {"x-a": ["1", "2"]}, "tls_skip_verify": true}
    }))
    .unwrap();
    assert_eq!(spec.kind, WatchKind::Service { service: "web".into(), tags: vec!["v1".into()], passing_only: true });
    let WatchHandler::Http(http) = spec.handler else { panic!("not http") };
    assert_eq!((http.method.as_str(), http.timeout), ("POST", Duration::from_secs(10)));
    assert_eq!(http.headers, vec![("x-a".to_string(), "1".to_string()), ("x-a".to_string(), "2".to_string())]);
    assert!(http.tls_skip_verify);
}

#[test]
fn unknown_keys_are_refused_by_name() {
    let error = parse_watch(&json!({"type": "key", "key": "k", "args": ["h"], "bogus": 1, "keyy": 2})).unwrap_err();
    assert_eq!(error, "Invalid parameters: [bogus keyy]");
    let error = parse_watch(&json!({"type": "nodes", "handler_type": "http",
        "http_handler_config": {"path": "http://h", "retries": 3}}))
    .unwrap_err();
    assert!(error.contains("retries"), "{error}");
}

#[test]
fn type_specific_keys_are_required_and_checked() {
    let cases = [
        (json!({"args": ["h"]}), "Watch type must be specified"),
        (json!({"type": "key", "args": ["h"]}), "Must specify a single key to watch"),
        (json!({"type": "keyprefix", "args": ["h"]}), "Must specify a single prefix to watch"),
        (json!({"type": "service", "args": ["h"]}), "Must specify a single service to watch"),
        (
            json!({"type": "checks", "service": "a", "state": "passing", "args": ["h"]}),
            "Cannot specify service and state",
        ),
        (json!({"type": "connect_leaf", "args": ["h"]}), "Unsupported watch type: connect_leaf"),
        (json!({"type": "nodes"}), "Must define a watch handler (args, handler or http_handler_config)"),
        (json!({"type": "nodes", "args": ["h"], "handler": "h"}), "Only one watch handler allowed"),
        (
            json!({"type": "nodes", "handler_type": "carrier-pigeon", "args": ["h"]}),
            "Handler type 'carrier-pigeon' not recognized",
        ),
        (json!({"type": "key", "key": 3, "args": ["h"]}), "Expecting key to be a string"),
    ];
    for (value, expected) in cases {
        assert_eq!(parse_watch(&value).unwrap_err(), expected, "{value}");
    }
}

#[test]
fn checks_without_service_or_state_watch_any_state() {
    let spec = parse_watch(&json!({"type": "checks", "args": ["h"]})).unwrap();
    assert_eq!(spec.kind, WatchKind::Checks { service: String::new(), state: "any".into(), tags: vec![] });
}
