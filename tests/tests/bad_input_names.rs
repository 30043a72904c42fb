//! Hostile names against a real `conclave agent -dev`: control characters (NUL, newline, CR, tab, bell),
//! `.`, `..`, `../../etc/passwd`, slashes, spaces, percent signs and Unicode in service IDs, and the same
//! (percent-encoded, so `..` reaches the agent unnormalised) in KV keys, plus raw control bytes in the
//! request line. Proves that a service ID is either registered and read back exactly (by ID, in the
//! agent's list and in the catalog) or refused with 400; that a KV key is the percent-decoded path taken
//! exactly, with `..` part of the key and nothing written at the normalised path; that a non-UTF-8 key is
//! stored as one key or refused; and that raw control bytes in the request target get 400.
//!
//! Every case is checked and the failures are reported together (see `conclave_tests::matrix`). Subnet
//! 127.0.101.x is this file's.

use std::collections::BTreeSet;

use conclave_tests::matrix::{dev, fetch_json, put_bytes, Matrix, Snapshot, REGISTER};
use conclave_tests::raw_http::{base64, pct, raw, raw_get};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------------
// Control characters and `..` in service IDs and KV keys

#[test]
fn control_characters_and_dot_dot_in_ids_and_keys_are_kept_exactly_or_refused() {
    let (_lock, mut cluster) = dev(101);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    let before = Snapshot::take(agent);
    let ip = agent.ip.clone();
    let mut expected = before.clone();

    // Service IDs: registered and read back exactly (list, by ID, catalog), or refused with 400.
    let ids = [
        "nul\u{0}byte",
        "line\nbreak",
        "carriage\rreturn",
        "tab\there",
        "bell\u{7}",
        "..",
        ".",
        "../../etc/passwd",
        "a/../b",
        "a/b",
        "with space",
        "percent%2Fliteral",
        "q?x=1#frag",
        "unicode-✓-ü",
    ];
    let mut accepted = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        let case = format!("register service ID {id:?}");
        let body = json!({"ID": id, "Name": "weird", "Port": 1000 + i}).to_string();
        match put_bytes(agent, REGISTER, body.as_bytes()) {
            Err(e) => m.fail(&case, format!("no HTTP answer: {e}")),
            Ok(reply) if reply.status == 400 => m.check(&case, true, ""),
            Ok(reply) if reply.status == 200 => {
                accepted.insert(id.to_string());
                expected = expected.with_agent_service(id, "weird", 1000 + i as u64);
                let target = format!("/v1/agent/service/{}", pct(id.as_bytes()));
                let read = raw_get(&ip, &target);
                let got = read.as_ref().ok().and_then(|r| r.json()).map(|v| v["ID"].clone());
                m.check(
                    &format!("{case}: GET {target} reads it back exactly"),
                    got == Some(json!(id)),
                    format!("{:?}", read.map(|r| (r.status, r.short_body()))),
                );
            }
            Ok(reply) => m.fail(&case, format!("expected 200 or 400, got {} {:?}", reply.status, reply.short_body())),
        }
        m.still_serving(agent, &case);
    }
    let rows = raw_get(&ip, "/v1/catalog/service/weird").ok().and_then(|r| r.json()).unwrap_or(json!([]));
    let in_catalog: BTreeSet<String> =
        rows.as_array().into_iter().flatten().filter_map(|r| r["ServiceID"].as_str().map(str::to_string)).collect();
    m.check(
        "the catalog holds exactly the accepted IDs",
        in_catalog == accepted,
        format!("{in_catalog:?} vs {accepted:?}"),
    );
    let agent_ids: BTreeSet<String> = fetch_json(&ip, "/v1/agent/services")
        .as_object()
        .map(|o| {
            o.values()
                .filter(|s| s["Service"] == "weird")
                .filter_map(|s| s["ID"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    m.check(
        "/v1/agent/services holds exactly the accepted IDs",
        agent_ids == accepted,
        format!("{agent_ids:?} vs {accepted:?}"),
    );
    eprintln!(
        "service IDs accepted: {accepted:?}; refused: {:?}",
        ids.iter().filter(|id| !accepted.contains(**id)).collect::<Vec<_>>()
    );

    // KV keys are the percent-decoded path, taken exactly: `..` is part of the key, not a step up.
    let keys: &[(&str, &str)] = &[
        ("/v1/kv/a/%2E%2E/b", "a/../b"),
        ("/v1/kv/%2E%2E", ".."),
        ("/v1/kv/%2E%2E/%2E%2E/etc/passwd", "../../etc/passwd"),
        ("/v1/kv/c/%2E/d", "c/./d"),
        ("/v1/kv/ctl%00nul", "ctl\u{0}nul"),
        ("/v1/kv/ctl%0Anewline", "ctl\nnewline"),
        ("/v1/kv/ctl%0D%0Acrlf", "ctl\r\ncrlf"),
        ("/v1/kv/ctl%09tab", "ctl\ttab"),
        ("/v1/kv/sp%20ace", "sp ace"),
    ];
    for &(target, key) in keys {
        let value = format!("value of {key:?}");
        let case = format!("PUT {target}");
        let reply = m.expect(&case, raw(&ip, "PUT", target, value.as_bytes()), 200, Some("true"));
        if reply.is_some() {
            expected = expected.with_kv(key, value.as_bytes());
            let read = raw_get(&ip, target);
            let entry = read.as_ref().ok().and_then(|r| r.json()).map(|v| v[0].clone()).unwrap_or(Value::Null);
            m.check(
                &format!("GET {target} reads back key {key:?}"),
                entry["Key"] == json!(key) && entry["Value"] == json!(base64(value.as_bytes())),
                format!("{:?}", read.map(|r| (r.status, r.short_body()))),
            );
        }
        m.still_serving(agent, &case);
    }
    // Nothing was written at the normalised paths.
    for normalised in ["/v1/kv/b", "/v1/kv/etc/passwd", "/v1/kv/c/d"] {
        let read = raw_get(&ip, normalised);
        m.check(
            &format!("GET {normalised} (the normalised key) is 404"),
            matches!(&read, Ok(r) if r.status == 404),
            format!("{:?}", read.map(|r| (r.status, r.short_body()))),
        );
    }
    // A key that is not UTF-8 once decoded: stored and read back at the same path, or 400.
    let case = "PUT /v1/kv/bad%FFutf8";
    match raw(&ip, "PUT", "/v1/kv/bad%FFutf8", b"v") {
        Ok(r) if r.status == 400 => m.check(case, true, ""),
        Ok(r) if r.status == 200 => {
            let read = raw_get(&ip, "/v1/kv/bad%FFutf8?raw");
            m.check(&format!("{case} reads back"), matches!(&read, Ok(r) if r.body == b"v"), format!("{read:?}"));
            // Whatever text the agent shows for that key, it is one new key holding "v".
            let now = Snapshot::take(agent);
            let new: Vec<(&String, &(String, u64))> =
                now.kv.iter().filter(|(k, _)| !expected.kv.contains_key(*k)).collect();
            m.check(
                &format!("{case} adds one key holding \"v\""),
                new.len() == 1 && new[0].1 .0 == base64(b"v"),
                format!("{new:?}"),
            );
            if let Some((key, _)) = new.first() {
                expected = expected.with_kv(key, b"v");
            }
        }
        other => m.fail(case, format!("expected 200 or 400, got {other:?}")),
    }
    m.still_serving(agent, case);

    // Raw control bytes in the request line are not HTTP: 400.
    for (what, target) in
        [("0x01", "/v1/kv/ctl\u{1}raw"), ("DEL", "/v1/kv/ctl\u{7f}raw"), ("NUL", "/v1/kv/ctl\u{0}raw")]
    {
        let case = format!("raw {what} byte in the request target");
        m.expect(&case, raw_get(&ip, target), 400, None);
        m.still_serving(agent, &case);
    }

    expected.check_against(agent, &mut m);
    m.finish("control_characters_and_dot_dot_in_ids_and_keys_are_kept_exactly_or_refused");
}
