//! The `-ui` web UI rendered by headless Chromium (Debian's `chromium`): the page's script reads the HTTP
//! API and must show the registered service with its instance and health, the node, and the leader.

use std::process::Command;

use std::time::Duration;

use conclave_tests::harness::{eventually, Cluster};
use conclave_tests::http;

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        let output = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().ok()?;
        let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
        (!path.is_empty()).then_some(path)
    })
}

#[test]
fn web_ui_shows_services_nodes_and_leader_in_chromium() {
    let browser = chromium().expect("chromium is missing: run `apt-get install chromium`");
    let cluster = Cluster::servers_with(72, 1, &["-ui"]);
    let agent = &cluster.agents[0];
    let payload = r#"{"ID":"node-exporter-1","Name":"node-exporter","Tags":["prometheus"],"Address":"10.0.0.5","Port":9100,"Check":{"TTL":"30s","Status":"passing"}}"#;
    assert_eq!(http::put(&agent.url("/v1/agent/service/register"), payload).unwrap().status, 200);
    // The page shows what the API holds: wait until the catalog has the instance, so a slow machine
    // measures the page and not the anti-entropy push.
    eventually(Duration::from_secs(30), "the instance in /v1/health/service", || {
        let reply = http::get(&agent.url("/v1/health/service/node-exporter")).ok()?;
        reply.body.contains("node-exporter-1").then_some(())
    });
    let mut dom = String::new();
    // The page renders asynchronously; give the virtual clock time, and retry with a fresh profile.
    for attempt in 0..5 {
        let profile = cluster.dir.path().join(format!("chromium-profile-{attempt}"));
        let output = Command::new(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=5000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--dump-dom")
            .arg(agent.url("/ui/"))
            .output()
            .expect("run chromium");
        dom = String::from_utf8_lossy(&output.stdout).into_owned();
        if dom.contains("data-loaded=\"true\"") && dom.contains("node-exporter-1") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    assert!(dom.contains("data-loaded=\"true\""), "the page's script did not finish: {dom}");
    assert!(dom.contains("node-exporter-1") && dom.contains("10.0.0.5:9100"), "instance missing: {dom}");
    assert!(dom.contains(">passing<"), "health missing: {dom}");
    assert!(dom.contains(&format!("{}:8300", agent.ip)), "leader missing: {dom}");
    assert!(dom.contains(">s1<"), "node missing: {dom}");
}
