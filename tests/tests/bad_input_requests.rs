//! Requests the HTTP layer must refuse before a handler decodes them, against a real `conclave agent -dev`:
//! bodies over the size limits (1 MiB for definitions, 512 KiB for a KV value), sent with Content-Length
//! and chunked, a Content-Length header declaring 10 GiB, and methods a path does not take. Proves 413 for
//! the oversized bodies (the declared 10 GiB refused from the header, at once), that the limits themselves
//! are allowed, 405 naming the method with an `Allow` header listing the allowed ones, and that the agent
//! keeps serving with its state changed only by the accepted writes.
//!
//! Every case is checked and the failures are reported together (see `conclave_tests::matrix`). Subnet
//! 127.0.100.x is this file's; its tests take the subnet's lock and run one after the other.

use std::time::Duration;

use conclave_tests::http;
use conclave_tests::matrix::{dev, Matrix, Snapshot, CATALOG_REGISTER, REGISTER};
use conclave_tests::raw_http::{raw, raw_chunked, raw_exchange, raw_get};

// ---------------------------------------------------------------------------------------------------
// Oversized bodies

#[test]
fn oversized_bodies_get_413() {
    let (_lock, mut cluster) = dev(100);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    let before = Snapshot::take(agent);
    let ip = agent.ip.clone();
    const MIB: usize = 1 << 20;
    const KV_MAX: usize = 512 * 1024;

    // A syntactically valid service definition of exactly `size` bytes (a long Meta value).
    let service_of_size = |size: usize| {
        let frame = r#"{"ID":"big","Name":"big","Meta":{"k":""}}"#;
        format!(r#"{{"ID":"big","Name":"big","Meta":{{"k":"{}"}}}}"#, "x".repeat(size - frame.len()))
    };
    let over = service_of_size(MIB + 1);
    let huge = service_of_size(4 * MIB);
    let kv_over = vec![b'v'; KV_MAX + 1];
    let kv_huge = vec![b'v'; 2 * MIB];

    let cases: Vec<(&str, &str, &[u8], Option<&str>)> = vec![
        ("PUT", REGISTER, over.as_bytes(), None),
        ("PUT", REGISTER, huge.as_bytes(), None),
        ("PUT", CATALOG_REGISTER, huge.as_bytes(), None),
        ("PUT", "/v1/kv/x", &kv_over, Some("too large")),
        ("PUT", "/v1/kv/x", &kv_huge, None),
        ("PUT", "/v1/txn", huge.as_bytes(), None),
    ];
    for (method, path, body, gist) in cases {
        let case = format!("{method} {path} with a {} byte body (Content-Length)", body.len());
        m.expect(&case, raw(&ip, method, path, body), 413, gist);
        m.still_serving(agent, &case);
        let case = format!("{method} {path} with a {} byte body (chunked)", body.len());
        m.expect(&case, raw_chunked(&ip, method, path, body), 413, gist);
        m.still_serving(agent, &case);
    }

    // A Content-Length of 10 GiB is refused from the header, without waiting for a body that never comes.
    for path in [REGISTER, "/v1/kv/x"] {
        let head = format!(
            "PUT {path} HTTP/1.1\r\nHost: {ip}:8500\r\nContent-Length: 10737418240\r\nConnection: close\r\n\r\n{{"
        );
        let case = format!("PUT {path} declaring a 10 GiB Content-Length");
        let reply =
            m.expect(&case, raw_exchange(&ip, head.into_bytes(), Vec::new(), Duration::from_secs(15)), 413, None);
        if let Some(reply) = reply {
            m.check(
                &format!("{case} answers at once"),
                reply.elapsed < Duration::from_secs(3),
                format!("after {:?}", reply.elapsed),
            );
        }
        m.still_serving(agent, &case);
    }

    // The limits themselves are allowed: a 512 KiB value, and a large (256 KiB) service definition.
    let kv_max = vec![b'm'; KV_MAX];
    m.expect("PUT /v1/kv/max with exactly 512 KiB", raw(&ip, "PUT", "/v1/kv/max", &kv_max), 200, None);
    let read = raw_get(&ip, "/v1/kv/max?raw");
    m.check(
        "512 KiB value reads back",
        matches!(&read, Ok(r) if r.body == kv_max),
        format!("{:?}", read.map(|r| r.body.len())),
    );
    let large = service_of_size(256 * 1024);
    m.expect("PUT service register of 256 KiB", raw(&ip, "PUT", REGISTER, large.as_bytes()), 200, None);
    m.still_serving(agent, "the bodies at the limits");

    before.with_kv("max", &kv_max).with_agent_service("big", "big", 0).check_against(agent, &mut m);
    m.finish("oversized_bodies_get_413");
}

// ---------------------------------------------------------------------------------------------------
// Unsupported methods

#[test]
fn unsupported_methods_get_405_naming_the_method() {
    let (_lock, mut cluster) = dev(100);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    assert_eq!(http::put(&agent.url("/v1/kv/x"), "keep").unwrap().status, 200);
    let before = Snapshot::take(agent);
    let ip = agent.ip.clone();

    // (method, path, a method the path does allow)
    let cases: &[(&str, &str, &str)] = &[
        ("DELETE", "/v1/agent/services", "GET"),
        ("PUT", "/v1/agent/services", "GET"),
        ("POST", "/v1/catalog/services", "GET"),
        ("DELETE", "/v1/catalog/services", "GET"),
        ("PATCH", "/v1/kv/x", "PUT"),
        ("POST", "/v1/kv/x", "PUT"),
        ("POST", REGISTER, "PUT"),
        ("GET", REGISTER, "PUT"),
        ("DELETE", REGISTER, "PUT"),
        ("PUT", "/v1/status/leader", "GET"),
        ("POST", "/v1/catalog/register", "PUT"),
        ("PATCH", "/v1/health/service/consul", "GET"),
    ];
    for &(method, path, allowed) in cases {
        let case = format!("{method} {path}");
        let body: &[u8] = if matches!(method, "GET" | "DELETE") { b"" } else { b"{}" };
        let gist = format!("method {method} not allowed");
        let reply = m.expect(&case, raw(&ip, method, path, body), 405, Some(&gist));
        if let Some(reply) = reply {
            let allow = reply.header("allow").unwrap_or_default().to_string();
            m.check(
                &format!("{case} names the allowed methods in Allow"),
                allow.contains(allowed),
                format!("Allow: {allow:?}"),
            );
        }
        m.still_serving(agent, &case);
    }

    before.check_against(agent, &mut m);
    m.finish("unsupported_methods_get_405_naming_the_method");
}
