//! Tests of the user-event rules: Consul's parameter checks, the receiver-side filters, the index.

use super::*;

fn event(node: &str, service: &str, tag: &str) -> UserEvent {
    UserEvent {
        name: "deploy".into(),
        node_filter: node.into(),
        service_filter: service.into(),
        tag_filter: tag.into(),
        ..UserEvent::default()
    }
}

fn tags(list: &[&str]) -> Vec<String> {
    list.iter().map(|t| t.to_string()).collect()
}

#[test]
fn filters_match_node_name_service_name_and_tag_as_consul_does() {
    let web_tags = tags(&["v1", "primary"]);
    let db_tags = tags(&["replica"]);
    let services = || [("web", web_tags.as_slice()), ("db", db_tags.as_slice())];
    // (node filter, service filter, tag filter, recorded on node "client-1" with web and db?)
    let table = [
        ("", "", "", true),
        ("client", "", "", true),
        ("^client-1$", "", "", true),
        ("^server", "", "", false),
        ("", "web", "", true),
        ("", "^we", "", true),
        ("", "cache", "", false),
        ("", "web", "prim", true),
        ("", "web", "replica", false),
        ("", "db|web", "replica", true),
        ("client", "db", "v1", false),
        ("[", "", "", false),
    ];
    for (node, service, tag, expected) in table {
        let got = should_process(&event(node, service, tag), "client-1", services());
        assert_eq!(got, expected, "node={node:?} service={service:?} tag={tag:?}");
    }
}

#[test]
fn service_filter_matches_nothing_on_an_agent_without_services() {
    assert!(!should_process(&event("", "web", ""), "n1", []));
}

#[test]
fn fire_is_refused_with_consuls_messages() {
    assert_eq!(validate_fire(&UserEvent::default()).unwrap_err(), "User event missing name");
    assert_eq!(validate_fire(&event("", "", "v1")).unwrap_err(), "Cannot provide tag filter without service filter");
    assert!(validate_fire(&event("(", "", "")).unwrap_err().starts_with("Invalid node filter: "));
    assert!(validate_fire(&event("", "[a-", "")).unwrap_err().starts_with("Invalid service filter: "));
    assert!(validate_fire(&event("", "web", "*")).unwrap_err().starts_with("Invalid tag filter: "));
    assert!(validate_fire(&event(&"a".repeat(FILTER_BYTES_MAX + 1), "", "")).is_err());
    validate_fire(&event("n", "web", "v1")).unwrap();
}

#[test]
fn index_is_the_xor_of_the_uuid_halves() {
    assert_eq!(index_of_id("00000000-0000-0001-0000-000000000003"), Some(2));
    assert_eq!(index_of_id("ffffffff-ffff-ffff-0000-000000000000"), Some(u64::MAX));
    assert_eq!(
        index_of_id("12345678-9abc-def0-1234-56789abcdef0"),
        Some(0x1234_5678_9abc_def0 ^ 0x1234_5678_9abc_def0)
    );
    assert_eq!(index_of_id("not-a-uuid"), None);
    assert_eq!(index_of_id("0000000000000-0001-0000-000000000003"), None);
    assert_eq!(index_of_id("g0000000-0000-0001-0000-000000000003"), None);
}

#[test]
fn list_index_is_one_without_events_and_the_last_events_otherwise() {
    assert_eq!(list_index(&[]), 1);
    let mut a = UserEvent::named("a", b"");
    a.id = "00000000-0000-0001-0000-000000000003".into();
    let mut b = UserEvent::named("b", b"");
    b.id = "00000000-0000-0005-0000-000000000000".into();
    assert_eq!(list_index(&[a, b]), 5);
}

#[test]
fn buffer_keeps_the_last_256_oldest_first_and_filters_by_name() {
    let mut buffer = EventBuffer::default();
    for i in 0..(EVENTS_MAX + 10) {
        buffer.record(UserEvent::named(if i % 2 == 0 { "even" } else { "odd" }, format!("{i}").as_bytes()));
    }
    let all = buffer.list("");
    assert_eq!(all.len(), EVENTS_MAX);
    assert_eq!(all[0].payload.as_deref(), Some(b"10".as_slice()));
    assert_eq!(all[EVENTS_MAX - 1].payload.as_deref(), Some(format!("{}", EVENTS_MAX + 9).as_bytes()));
    assert!(buffer.list("odd").iter().all(|e| e.name == "odd"));
    assert_eq!(buffer.list("odd").len(), EVENTS_MAX / 2);
    assert_eq!(buffer.recorded(), (EVENTS_MAX + 10) as u64);
}
