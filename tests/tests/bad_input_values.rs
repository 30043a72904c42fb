//! Well-formed requests carrying out-of-range values, against a real `conclave agent -dev`: negative,
//! huge and fractional ports (service, catalog and tagged-address ports), check durations Go's
//! `time.ParseDuration` refuses or Consul's check validation refuses as not > 0, and `index`/`wait` query
//! values that are not numbers or durations. Proves that each gets a 400 naming the field (for blocking
//! queries, at once rather than after a wait), that the edges of the valid ranges are accepted, and that
//! only the accepted writes change what the agent holds.
//!
//! Every case is checked and the failures are reported together (see `conclave_tests::matrix`). Subnet
//! 127.0.97.x is this file's; its tests take the subnet's lock and run one after the other.

use std::collections::BTreeSet;
use std::time::Duration;

use conclave_tests::matrix::{dev, put_bytes, Matrix, Snapshot, CATALOG_REGISTER, CHECK_REGISTER, REGISTER};
use conclave_tests::raw_http::raw_get;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------------
// Ports

#[test]
fn negative_huge_and_fractional_ports_get_400() {
    let (_lock, mut cluster) = dev(97);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    let before = Snapshot::take(agent);

    for port in ["-1", "65536", "70000", "1e20", "99999999999999999999", "80.5", "-9223372036854775809"] {
        let case = format!("agent register Port {port}");
        let body = format!(r#"{{"ID":"p","Name":"ports","Port":{port}}}"#);
        m.expect(&case, put_bytes(agent, REGISTER, body.as_bytes()), 400, Some("port"));
        m.still_serving(agent, &case);

        let case = format!("catalog register Service.Port {port}");
        let body =
            format!(r#"{{"Node":"pn","Address":"10.0.0.1","Service":{{"ID":"p","Service":"ports","Port":{port}}}}}"#);
        m.expect(&case, put_bytes(agent, CATALOG_REGISTER, body.as_bytes()), 400, Some("port"));
        m.still_serving(agent, &case);

        let case = format!("agent register TaggedAddresses.lan.Port {port}");
        let body = format!(
            r#"{{"ID":"p","Name":"ports","Port":1,"TaggedAddresses":{{"lan":{{"Address":"10.0.0.1","Port":{port}}}}}}}"#
        );
        m.expect(&case, put_bytes(agent, REGISTER, body.as_bytes()), 400, Some("port"));
        m.still_serving(agent, &case);
    }
    // The edges of the range are valid.
    for (id, port) in [("p0", 0), ("pmax", 65535)] {
        let body = format!(r#"{{"ID":"{id}","Name":"ports","Port":{port}}}"#);
        m.expect(&format!("agent register Port {port}"), put_bytes(agent, REGISTER, body.as_bytes()), 200, None);
    }

    before.with_agent_service("p0", "ports", 0).with_agent_service("pmax", "ports", 65535).check_against(agent, &mut m);
    m.finish("negative_huge_and_fractional_ports_get_400");
}

// ---------------------------------------------------------------------------------------------------
// Durations

#[test]
fn bad_check_durations_get_400() {
    let (_lock, mut cluster) = dev(97);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    let before = Snapshot::take(agent);

    // (duration, gist): Go's time.ParseDuration refuses all but "-1s", which Consul's check validation
    // refuses as not > 0.
    let durations: &[(&str, &str)] = &[
        ("\"15\"", "invalid duration"),
        ("\"1y\"", "invalid duration"),
        ("\"\"", "invalid duration"),
        ("\"10 s\"", "invalid duration"),
        ("\"ten seconds\"", "invalid duration"),
        ("\"99999999999h\"", "invalid duration"),
        ("\"-1s\"", "must be > 0"),
        ("-1", "must be > 0"),
        ("true", "Interval"),
    ];
    for &(duration, gist) in durations {
        let ttl_gist = if gist == "Interval" { "TTL" } else { gist };
        let bodies = [
            (
                REGISTER,
                format!(r#"{{"ID":"d","Name":"dur","Check":{{"HTTP":"http://127.0.0.1:1/","Interval":{duration}}}}}"#),
                gist,
            ),
            (
                REGISTER,
                format!(r#"{{"ID":"d","Name":"dur","Checks":[{{"TCP":"127.0.0.1:1","Interval":{duration}}}]}}"#),
                gist,
            ),
            (REGISTER, format!(r#"{{"ID":"d","Name":"dur","Check":{{"TTL":{duration}}}}}"#), ttl_gist),
            (REGISTER, format!(r#"{{"ID":"d","Name":"dur","checks":[{{"ttl":{duration}}}]}}"#), ttl_gist),
            (CHECK_REGISTER, format!(r#"{{"Name":"dc","TTL":{duration}}}"#), ttl_gist),
            (CHECK_REGISTER, format!(r#"{{"Name":"dc","HTTP":"http://127.0.0.1:1/","Interval":{duration}}}"#), gist),
        ];
        for (path, body, gist) in bodies {
            let case = format!("PUT {path} {body}");
            m.expect(&case, put_bytes(agent, path, body.as_bytes()), 400, Some(gist));
            if !m.still_serving(agent, &case) {
                break;
            }
        }
    }
    // Timeout and DeregisterCriticalServiceAfter are Go durations too.
    for (field, value) in [("Timeout", "\"15\""), ("Timeout", "\"1y\""), ("DeregisterCriticalServiceAfter", "\"1y\"")] {
        let body = format!(
            r#"{{"ID":"d","Name":"dur","Check":{{"HTTP":"http://127.0.0.1:1/","Interval":"10s","{field}":{value}}}}}"#
        );
        m.expect(
            &format!("PUT {REGISTER} {body}"),
            put_bytes(agent, REGISTER, body.as_bytes()),
            400,
            Some("invalid duration"),
        );
    }
    // The catalog's check definitions parse their durations as well.
    let body = r#"{"Node":"dn","Address":"10.0.0.1","Check":{"CheckID":"c","Name":"c","Definition":{"HTTP":"http://x","Interval":"1y"}}}"#;
    m.expect(
        &format!("PUT {CATALOG_REGISTER} {body}"),
        put_bytes(agent, CATALOG_REGISTER, body.as_bytes()),
        400,
        Some("invalid duration"),
    );
    m.still_serving(agent, "bad durations");

    // Valid durations, as strings and as nanoseconds, are accepted.
    let valid = r#"{"ID":"d-ok","Name":"dur","Checks":[{"TTL":"1m30s"},{"HTTP":"http://127.0.0.1:1/","Interval":15000000000}]}"#;
    m.expect("valid durations", put_bytes(agent, REGISTER, valid.as_bytes()), 200, None);
    let checks = raw_get(&agent.ip, "/v1/agent/checks").ok().and_then(|r| r.json()).unwrap_or(Value::Null);
    let ids: BTreeSet<&String> = checks.as_object().map(|o| o.keys().collect()).unwrap_or_default();
    let want: BTreeSet<String> = ["service:d-ok:1".to_string(), "service:d-ok:2".to_string()].into();
    m.check("only the valid service's checks exist", ids == want.iter().collect(), format!("{ids:?}"));

    before.with_agent_service("d-ok", "dur", 0).check_against(agent, &mut m);
    m.finish("bad_check_durations_get_400");
}

// ---------------------------------------------------------------------------------------------------
// index / wait query values

#[test]
fn invalid_index_and_wait_values_get_400_at_once() {
    let (_lock, mut cluster) = dev(97);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    let before = Snapshot::take(agent);
    let ip = agent.ip.clone();

    let cases: &[(&str, &str)] = &[
        ("index=abc", "Invalid index"),
        ("index=-1", "Invalid index"),
        ("index=1.5", "Invalid index"),
        ("index=0x10", "Invalid index"),
        ("index=18446744073709551616", "Invalid index"),
        ("index=1&wait=forever", "Invalid wait time"),
        ("wait=forever", "Invalid wait time"),
        ("index=1&wait=10", "Invalid wait time"),
        ("index=1&wait=1y", "Invalid wait time"),
        ("index=1&wait=-", "Invalid wait time"),
    ];
    for path in ["/v1/catalog/services", "/v1/kv/watched", "/v1/health/service/consul", "/v1/catalog/nodes"] {
        for &(query, gist) in cases {
            let target = format!("{path}?{query}");
            let case = format!("GET {target}");
            let reply = m.expect(&case, raw_get(&ip, &target), 400, Some(gist));
            if let Some(reply) = reply {
                m.check(
                    &format!("{case} answers at once"),
                    reply.elapsed < Duration::from_secs(2),
                    format!("{:?}", reply.elapsed),
                );
            }
        }
        m.still_serving(agent, &format!("bad index/wait on {path}"));
    }

    before.check_against(agent, &mut m);
    m.finish("invalid_index_and_wait_values_get_400_at_once");
}
