//! Hostile JSON bodies against a real `conclave agent -dev`: malformed JSON, wrong types, unknown fields,
//! 100k-deep nesting and invalid UTF-8 sent to the registration endpoints (agent service and check
//! register, catalog register, sessions, txn). Proves that each gets a 400 with Consul's message (where
//! Consul has one) and promptly, that the agent keeps serving, that the catalog, the agent's services and
//! the KV store end up exactly as before plus the writes that were accepted, and that a KV value stays
//! opaque bytes: deep JSON or non-UTF-8 in a value is stored and read back byte for byte.
//!
//! Every case is checked and the failures are reported together (see `conclave_tests::matrix`). Subnet
//! 127.0.96.x is this file's; its tests take the subnet's lock and run one after the other.

use std::time::Duration;

use conclave_tests::matrix::{dev, put_bytes, Matrix, Snapshot, CATALOG_REGISTER, CHECK_REGISTER, REGISTER};
use conclave_tests::raw_http::{base64, raw_get};
use serde_json::json;

// ---------------------------------------------------------------------------------------------------
// Malformed JSON, wrong types, unknown fields

#[test]
fn malformed_mistyped_and_unknown_field_bodies_get_400_and_change_nothing() {
    let (_lock, mut cluster) = dev(96);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    let before = Snapshot::take(agent);

    let decode = Some("Request decode failed");
    let cases: &[(&str, &str, Option<&str>)] = &[
        // PUT /v1/agent/service/register
        (REGISTER, "{\"Name\":", decode),
        (REGISTER, "{\"Name\":\"x\",}", decode),
        (REGISTER, "{'Name':'x'}", decode),
        (REGISTER, "", decode),
        (REGISTER, "[]", decode),
        (REGISTER, "\"just a string\"", decode),
        (REGISTER, "null", None),
        (REGISTER, r#"{"Name":"x","Port":"eighty"}"#, Some("Port")),
        (REGISTER, r#"{"Name":"x","Port":"80"}"#, Some("Port")),
        (REGISTER, r#"{"Name":5}"#, Some("Name")),
        (REGISTER, r#"{"Name":"x","Tags":"prod"}"#, Some("Tags")),
        (REGISTER, r#"{"Name":"x","Tags":[1,2]}"#, Some("Tags")),
        (REGISTER, r#"{"Name":"x","Meta":["a"]}"#, Some("Meta")),
        (REGISTER, r#"{"Name":"x","Meta":{"k":1}}"#, Some("Meta")),
        (REGISTER, r#"{"Name":"x","EnableTagOverride":"yes"}"#, Some("EnableTagOverride")),
        (REGISTER, r#"{"Name":"x","Check":"http://x"}"#, Some("Check")),
        (REGISTER, r#"{"Name":"x","Weights":{"Passing":"ten"}}"#, Some("Passing")),
        (REGISTER, r#"{"Name":"x","Bogus":1}"#, Some("unknown field \"Bogus\"")),
        (REGISTER, r#"{"Name":"x","Check":{"TTL":"10s","Bogus":1}}"#, Some("unknown field \"Bogus\"")),
        (REGISTER, r#"{"Name":"x","Weights":{"Passing":1,"Bogus":1}}"#, Some("unknown field \"Bogus\"")),
        // PUT /v1/catalog/register
        (CATALOG_REGISTER, "{\"Node\":", decode),
        (CATALOG_REGISTER, "", decode),
        (CATALOG_REGISTER, "[]", decode),
        (CATALOG_REGISTER, r#"{"Node":5,"Address":"10.0.0.1"}"#, Some("Node")),
        (CATALOG_REGISTER, r#"{"Node":"n","Address":"10.0.0.1","NodeMeta":{"k":1}}"#, Some("NodeMeta")),
        (
            CATALOG_REGISTER,
            r#"{"Node":"n","Address":"10.0.0.1","Service":{"Service":"s","Port":"eighty"}}"#,
            Some("Port"),
        ),
        (CATALOG_REGISTER, r#"{"Node":"n","Address":"10.0.0.1","TaggedAddresses":{"lan":{"Address":"x"}}}"#, None),
        (CATALOG_REGISTER, r#"{"Node":"n","Address":"10.0.0.1","Bogus":1}"#, Some("unknown field \"Bogus\"")),
        (
            CATALOG_REGISTER,
            r#"{"Node":"n","Address":"10.0.0.1","Service":{"Service":"s","Bogus":1}}"#,
            Some("unknown field \"Bogus\""),
        ),
        (
            CATALOG_REGISTER,
            r#"{"Node":"n","Address":"10.0.0.1","Check":{"CheckID":"c","Bogus":1}}"#,
            Some("unknown field \"Bogus\""),
        ),
        // PUT /v1/agent/check/register
        (CHECK_REGISTER, "{\"Name\":", decode),
        (CHECK_REGISTER, r#"{"Name":"c","TTL":"10s","Bogus":1}"#, Some("unknown field \"Bogus\"")),
    ];
    for &(path, body, gist) in cases {
        let case = format!("PUT {path} {body:?}");
        m.expect(&case, put_bytes(agent, path, body.as_bytes()), 400, gist);
        if !m.still_serving(agent, &case) {
            break;
        }
    }
    // The valid writes: one agent service and one external node with a service.
    let valid = r#"{"ID":"good-1","Name":"good","Port":8080}"#;
    m.expect("valid service register", put_bytes(agent, REGISTER, valid.as_bytes()), 200, None);
    let valid_node =
        r#"{"Node":"ext-1","Address":"10.9.9.9","Service":{"ID":"ext-svc-1","Service":"ext-svc","Port":1}}"#;
    let reply =
        m.expect("valid catalog register", put_bytes(agent, CATALOG_REGISTER, valid_node.as_bytes()), 200, None);
    if let Some(reply) = reply {
        m.check("catalog register answers true", reply.body_text().trim() == "true", reply.short_body());
    }

    let mut expected = before.with_agent_service("good-1", "good", 8080);
    expected.catalog_services.entry("ext-svc".into()).or_default();
    expected.catalog_nodes.insert("ext-1".into());
    expected.check_against(agent, &mut m);
    m.finish("malformed_mistyped_and_unknown_field_bodies_get_400_and_change_nothing");
}

// ---------------------------------------------------------------------------------------------------
// Deep nesting

fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
    let mut out = String::with_capacity((open.len() + close.len()) * depth + inner.len());
    for _ in 0..depth {
        out.push_str(open);
    }
    out.push_str(inner);
    for _ in 0..depth {
        out.push_str(close);
    }
    out
}

#[test]
fn deeply_nested_json_gets_400_without_crashing() {
    let (_lock, mut cluster) = dev(96);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    let before = Snapshot::take(agent);

    // Every body stays under 512 KiB, so that it is the nesting that gets refused, not the size.
    let depth = 100_000;
    let arrays = nested("[", "", "]", depth);
    let unclosed = "[".repeat(500_000);
    let in_meta = format!(r#"{{"Name":"deep","Meta":{}}}"#, nested(r#"{"":"#, r#""v""#, "}", depth));
    let in_tags = format!(r#"{{"Name":"deep","Tags":{}}}"#, nested("[", r#""t""#, "]", depth));
    let in_check = format!(r#"{{"Name":"deep","Check":{}}}"#, nested(r#"{"TTL":"#, r#""10s""#, "}", 60_000));
    let in_node_meta =
        format!(r#"{{"Node":"deep","Address":"10.0.0.1","NodeMeta":{}}}"#, nested(r#"{"":"#, "1", "}", depth));
    let objects = nested(r#"{"":"#, "1", "}", depth);
    let decode = Some("Request decode failed");
    let cases: Vec<(&str, &str, &str, Option<&str>)> = vec![
        (REGISTER, "100k nested arrays", &arrays, decode),
        (REGISTER, "500k unclosed arrays", &unclosed, decode),
        (REGISTER, "100k nested objects", &objects, decode),
        (REGISTER, "100k nested objects in Meta", &in_meta, decode),
        (REGISTER, "100k nested arrays in Tags", &in_tags, decode),
        (REGISTER, "60k nested objects in Check", &in_check, decode),
        (CATALOG_REGISTER, "100k nested arrays", &arrays, decode),
        (CATALOG_REGISTER, "100k nested objects in NodeMeta", &in_node_meta, decode),
        (CHECK_REGISTER, "100k nested arrays", &arrays, decode),
        ("/v1/session/create", "100k nested arrays", &arrays, None),
        ("/v1/txn", "100k nested arrays", &arrays, None),
        ("/v1/catalog/deregister", "100k nested objects", &objects, None),
    ];
    for (path, what, body, gist) in cases {
        assert!(body.len() < 512 * 1024, "{what} is {} bytes: over the size limits", body.len());
        let case = format!("PUT {path} with {what}");
        let reply = m.expect(&case, put_bytes(agent, path, body.as_bytes()), 400, gist);
        if let Some(reply) = reply {
            m.check(
                &format!("{case} answers promptly"),
                reply.elapsed < Duration::from_secs(5),
                format!("{:?}", reply.elapsed),
            );
        }
        if !m.still_serving(agent, &case) {
            break;
        }
    }

    // A KV value is opaque bytes: deep JSON in it is stored as is.
    let reply = m.expect(
        "PUT /v1/kv/deep with 100k nested arrays",
        put_bytes(agent, "/v1/kv/deep", arrays.as_bytes()),
        200,
        None,
    );
    if reply.is_some() {
        let read = raw_get(&agent.ip, "/v1/kv/deep?raw");
        let same = matches!(&read, Ok(r) if r.status == 200 && r.body == arrays.as_bytes());
        m.check(
            "kv deep value reads back byte for byte",
            same,
            format!("{:?}", read.map(|r| (r.status, r.body.len()))),
        );
    }
    m.still_serving(agent, "the deep KV value");

    before.with_kv("deep", arrays.as_bytes()).check_against(agent, &mut m);
    m.finish("deeply_nested_json_gets_400_without_crashing");
}

// ---------------------------------------------------------------------------------------------------
// Invalid UTF-8

#[test]
fn invalid_utf8_in_json_bodies_gets_400_while_kv_values_stay_bytes() {
    let (_lock, mut cluster) = dev(96);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    let before = Snapshot::take(agent);

    let cases: &[(&str, &str, &[u8])] = &[
        (REGISTER, "bare 0xFF 0xFE", b"\xff\xfe"),
        (REGISTER, "0xFF outside a string", b"{\"Name\":\"x\",\xff}"),
        (REGISTER, "0xFF 0xFE in Name", b"{\"Name\":\"\xff\xfe\"}"),
        (REGISTER, "truncated sequence in a tag", b"{\"Name\":\"x\",\"Tags\":[\"\xc3\x28\"]}"),
        (REGISTER, "overlong encoding in ID", b"{\"ID\":\"\xc0\xaf\",\"Name\":\"x\"}"),
        (REGISTER, "UTF-16 surrogate bytes in Meta", b"{\"Name\":\"x\",\"Meta\":{\"k\":\"\xed\xa0\x80\"}}"),
        (CATALOG_REGISTER, "0xFF in Node", b"{\"Node\":\"n\xff\",\"Address\":\"10.0.0.1\"}"),
        (CHECK_REGISTER, "0xFF in Name", b"{\"Name\":\"c\xff\",\"TTL\":\"10s\"}"),
    ];
    for &(path, what, body) in cases {
        let case = format!("PUT {path} with {what}");
        m.expect(&case, put_bytes(agent, path, body), 400, None);
        if !m.still_serving(agent, &case) {
            break;
        }
    }

    // KV values are bytes, not text: stored and read back exactly.
    let binary: Vec<u8> = (0..=255u8).rev().chain([0xff, 0xfe, 0x00, 0xc3, 0x28]).collect();
    let reply =
        m.expect("PUT /v1/kv/binary with non-UTF-8 bytes", put_bytes(agent, "/v1/kv/binary", &binary), 200, None);
    if reply.is_some() {
        let read = raw_get(&agent.ip, "/v1/kv/binary?raw");
        let same = matches!(&read, Ok(r) if r.status == 200 && r.body == binary);
        m.check("binary kv value reads back raw, byte for byte", same, format!("{read:?}"));
        let read = raw_get(&agent.ip, "/v1/kv/binary").ok().and_then(|r| r.json());
        let value = read.as_ref().map(|v| v[0]["Value"].clone());
        m.check("binary kv value reads back as base64", value == Some(json!(base64(&binary))), format!("{value:?}"));
    }
    m.still_serving(agent, "the binary KV value");

    before.with_kv("binary", &binary).check_against(agent, &mut m);
    m.finish("invalid_utf8_in_json_bodies_gets_400_while_kv_values_stay_bytes");
}
