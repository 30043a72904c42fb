//! A `conclave agent -dev` process: the seed's payload, Consul's headers, blocking queries, bad input,
//! and the command line.

use std::process::Command;
use std::time::{Duration, Instant};

use conclave_tests::harness::{binary, Cluster};
use conclave_tests::http;

const PAYLOAD: &str = r#"{"ID":"node-exporter-10.0.0.5","Name":"node-exporter","Tags":["prometheus"],"Address":"10.0.0.5",
 "Meta":{"team":"infra"},"Port":9100,"checks":[{"http":"http://10.0.0.5:9100/metrics","interval":"15s"}]}"#;

#[test]
fn dev_agent_serves_the_payload_with_index_headers() {
    let cluster = Cluster::dev(51);
    let agent = &cluster.agents[0];
    let reply = http::put(&agent.url("/v1/agent/service/register"), PAYLOAD).unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, ""));

    let reply = http::get(&agent.url("/v1/catalog/service/node-exporter")).unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply.index() >= 1);
    assert_eq!(reply.header("x-consul-knownleader"), Some("true"));
    assert!(reply.header("x-consul-lastcontact").is_some());
    assert_eq!(reply.json()[0]["ServiceName"], "node-exporter");

    let reply = http::get(&agent.url("/v1/health/service/node-exporter")).unwrap();
    let entry = &reply.json()[0];
    assert_eq!(entry["Service"]["ID"], "node-exporter-10.0.0.5");
    let checks = entry["Checks"].as_array().unwrap();
    let check = checks.iter().find(|c| c["CheckID"] == "service:node-exporter-10.0.0.5").expect("the payload's check");
    assert_eq!((check["Type"].as_str(), check["Status"].as_str()), (Some("http"), Some("critical")));

    let services = http::get(&agent.url("/v1/catalog/services")).unwrap().json();
    assert_eq!(services["node-exporter"][0], "prometheus");
    assert!(
        services.get("consul").is_some() || wait_for_consul_service(agent),
        "the server registers itself as `consul`"
    );
}

fn wait_for_consul_service(agent: &conclave_tests::harness::Agent) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let services = http::get(&agent.url("/v1/catalog/services")).unwrap().json();
        if services.get("consul").is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn blocking_query_waits_and_is_woken_only_by_its_service() {
    let cluster = Cluster::dev(52);
    let agent = &cluster.agents[0];
    // The server's own registration touches its node (and so every service on it): let it land first.
    assert!(wait_for_consul_service(agent));
    let register = |id: &str, name: &str, port: u16| {
        let body = format!(r#"{{"ID":"{id}","Name":"{name}","Port":{port}}}"#);
        assert_eq!(http::put(&agent.url("/v1/agent/service/register"), &body).unwrap().status, 200);
    };
    register("a1", "alpha", 1);
    register("b1", "beta", 1);
    let index = http::get(&agent.url("/v1/catalog/service/alpha")).unwrap().index();

    // Unchanged: the query waits out its wait time.
    let started = Instant::now();
    let reply = http::request(
        "GET",
        &agent.url(&format!("/v1/catalog/service/alpha?index={index}&wait=2s")),
        None,
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1900), "returned after {:?}", started.elapsed());
    assert_eq!(reply.index(), index);

    // A change to another service does not wake it; a change to alpha does.
    let url = agent.url(&format!("/v1/catalog/service/alpha?index={index}&wait=20s"));
    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        let reply = http::request("GET", &url, None, Duration::from_secs(30)).unwrap();
        (started.elapsed(), reply.index(), reply.json())
    });
    std::thread::sleep(Duration::from_millis(500));
    register("b1", "beta", 2);
    std::thread::sleep(Duration::from_millis(1000));
    assert!(!waiter.is_finished(), "a change to beta woke a query on alpha");
    register("a1", "alpha", 2);
    let (elapsed, new_index, rows) = waiter.join().unwrap();
    assert!(elapsed < Duration::from_secs(10), "woken by the change to alpha, after {elapsed:?}");
    assert!(new_index > index);
    assert_eq!(rows[0]["ServicePort"], 2);
}

#[test]
fn bad_input_gets_400_and_agent_keeps_serving() {
    let cluster = Cluster::dev(53);
    let agent = &cluster.agents[0];
    let url = agent.url("/v1/agent/service/register");
    let cases: &[(&str, &str)] = &[
        ("{\"Name\":", "Request decode failed"),
        (r#"{"Name":"x","Bogus":1}"#, "unknown field \"Bogus\""),
        (r#"{"Name":"x","Port":"80"}"#, "Port"),
        (r#"{"Port":80}"#, "Missing service name"),
        (r#"{"Name":"x","Port":-1}"#, "Invalid port"),
        (r#"{"Name":"x","Check":{"HTTP":"http://x","Interval":"15"}}"#, "invalid duration"),
    ];
    for (body, message) in cases {
        let reply = http::put(&url, body).unwrap();
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert!(reply.body.contains(message), "{body}: {:?} lacks {message:?}", reply.body);
    }
    let reply = http::get(&agent.url("/v1/catalog/services?index=abc")).unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (400, "Invalid index"));
    let reply = http::get(&agent.url("/v1/catalog/services?stale&consistent")).unwrap();
    assert_eq!(reply.status, 400);
    let reply = http::get(&agent.url("/v1/nope")).unwrap();
    assert_eq!(reply.status, 404);
    let reply = http::get(&agent.url("/v1/catalog/services?dc=elsewhere")).unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (500, "No path to datacenter"));
    assert_eq!(http::get(&agent.url("/v1/catalog/services")).unwrap().status, 200, "still serving");
}

#[test]
fn wrong_flag_prints_usage_and_exits_1() {
    let output = Command::new(binary()).args(["agent", "-no-such-flag"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Usage"), "{stderr}");
}

#[test]
fn go_style_flags_are_accepted_in_every_form() {
    let output = Command::new(binary()).args(["version"]).output().unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("Conclave v"));
    let output = Command::new(binary()).args(["agent", "-server", "-bootstrap-expect=3"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "no data dir is a start error");
    assert!(String::from_utf8_lossy(&output.stderr).contains("data_dir"));
}

#[test]
fn filter_parameter_selects_like_consul() {
    let cluster = Cluster::dev(54);
    let agent = &cluster.agents[0];
    for (id, name, tag) in [("w1", "web", "prod"), ("w2", "web", "dev"), ("d1", "db", "prod")] {
        let body = format!(r#"{{"ID":"{id}","Name":"{name}","Tags":["{tag}"],"Meta":{{"team":"infra"}},"Port":1}}"#);
        assert_eq!(http::put(&agent.url("/v1/agent/service/register"), &body).unwrap().status, 200);
    }
    let query = |path: &str, filter: &str| {
        let encoded: String = filter
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        http::get(&agent.url(&format!("{path}?filter={encoded}"))).unwrap()
    };
    let services = query("/v1/agent/services", "Service == web and \"prod\" in Tags").json();
    assert_eq!(services.as_object().unwrap().keys().collect::<Vec<_>>(), ["w1"]);
    let rows = query("/v1/catalog/service/web", "ServiceTags contains dev").json();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["ServiceID"], "w2");
    let entries = query("/v1/health/service/web", "Service.Meta.team == infra and not Service.ID == w1").json();
    assert_eq!(entries.as_array().unwrap().len(), 1);
    let bad = query("/v1/agent/services", "Service ==");
    assert_eq!(bad.status, 400);
    assert!(bad.body.starts_with("Failed to create boolean expression evaluator"), "{}", bad.body);
}
