//! ACLs end to end on real agents with `acl { enabled = true, default_policy = "deny" }`: rules enforced
//! and lists filtered over HTTP, a deleted token refused at once on every server, DNS answering only what
//! the anonymous token may read, a client agent's services reaching the catalog only once its agent token
//! is set, and the `conclave acl` commands. Loopback subnets 133-136.

use std::process::Command;
use std::time::Duration;

use conclave_tests::harness::{binary, eventually, Cluster};
use conclave_tests::http;

const DENY: &str = "acl {\n  enabled = true\n  default_policy = \"deny\"\n}\n";

fn config_file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("acl.hcl");
    std::fs::write(&path, text).expect("write config");
    let path = path.display().to_string();
    (dir, path)
}

fn put(url: &str, body: &str) -> http::Reply {
    http::put(url, body).unwrap_or_else(|e| panic!("PUT {url}: {e}"))
}

fn get(url: &str) -> http::Reply {
    http::get(url).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// Bootstraps through `base` (once the cluster has a leader) and returns the management secret.
fn bootstrap(base: &str) -> String {
    eventually(Duration::from_secs(30), "bootstrap", || {
        let reply = http::put(&format!("{base}/v1/acl/bootstrap"), "").ok()?;
        (reply.status == 200).then(|| reply.json()["SecretID"].as_str().unwrap().to_string())
    })
}

/// Creates a policy and a token holding it; returns (AccessorID, SecretID).
fn token_with_rules(base: &str, root: &str, name: &str, rules: &str) -> (String, String) {
    let policy = serde_json::json!({ "Name": name, "Rules": rules }).to_string();
    let reply = put(&format!("{base}/v1/acl/policy?token={root}"), &policy);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let token = serde_json::json!({ "Policies": [{ "Name": name }] }).to_string();
    let reply = put(&format!("{base}/v1/acl/token?token={root}"), &token);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let json = reply.json();
    (json["AccessorID"].as_str().unwrap().to_string(), json["SecretID"].as_str().unwrap().to_string())
}

#[test]
fn key_prefix_rules_filter_and_a_deleted_token_is_refused_at_once_on_every_server() {
    let (_dir, config) = config_file(DENY);
    let mut cluster = Cluster::servers_with(133, 3, &["-config-file", &config]);
    cluster.wait_leader();
    let base = cluster.agents[0].http();
    let root = bootstrap(&base);
    let second = put(&format!("{base}/v1/acl/bootstrap"), "");
    assert_eq!(second.status, 403, "{}", second.body);
    assert!(second.body.starts_with("ACL bootstrap no longer allowed (reset index: "), "{}", second.body);
    let reset_index =
        second.body.trim_start_matches("ACL bootstrap no longer allowed (reset index: ").trim_end_matches(')');
    std::fs::write(cluster.agents[0].data_dir.join("acl-bootstrap-reset"), reset_index).unwrap();
    let again = put(&format!("{base}/v1/acl/bootstrap"), "");
    assert_eq!(again.status, 200, "the reset file allows one more bootstrap: {}", again.body);
    assert_eq!(put(&format!("{base}/v1/acl/bootstrap"), "").status, 403, "and only one");
    let (accessor, secret) = token_with_rules(&base, &root, "app", r#"key_prefix "app/" { policy = "write" }"#);
    assert_eq!(put(&format!("{base}/v1/kv/other/y?token={root}"), "y").body, "true");
    assert_eq!(put(&format!("{base}/v1/kv/app/x?token={secret}"), "x").body, "true");
    let refused = put(&format!("{base}/v1/kv/other/x?token={secret}"), "x");
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.body,
        format!("Permission denied: token with AccessorID '{accessor}' lacks permission 'key:write' on \"other/x\"")
    );
    let listed = get(&format!("{base}/v1/kv/?recurse&token={secret}"));
    let keys: Vec<_> =
        listed.json().as_array().unwrap().iter().map(|e| e["Key"].as_str().unwrap().to_string()).collect();
    assert_eq!(keys, ["app/x"]);
    assert_eq!(listed.header("x-consul-results-filtered-by-acls"), Some("true"));
    let anonymous = get(&format!("{base}/v1/kv/app/x"));
    assert_eq!(anonymous.status, 403, "{}", anonymous.body);
    assert_eq!(get(&format!("{base}/v1/kv/app/x?token=not-a-token")).body, "ACL not found");
    let deleted =
        http::request("DELETE", &format!("{base}/v1/acl/token/{accessor}?token={root}"), None, Duration::from_secs(10));
    assert_eq!(deleted.unwrap().status, 200);
    for agent in &cluster.agents {
        let reply = put(&agent.url(&format!("/v1/kv/app/z?token={secret}")), "z");
        assert_eq!((reply.status, reply.body.as_str()), (403, "ACL not found"), "on {}", agent.name);
    }
    assert_eq!(get(&format!("{base}/v1/kv/app/z?token={root}")).status, 404, "no refused write was applied");
}

#[test]
fn dns_answers_only_what_the_anonymous_token_may_read() {
    let (_dir, config) = config_file(DENY);
    let cluster = Cluster::dev_with(134, &["-config-file", &config]);
    let base = cluster.agents[0].http();
    let root = bootstrap(&base);
    let registration = r#"{"Node":"ext","Address":"10.1.2.3","Service":{"Service":"web","Port":80}}"#;
    assert_eq!(put(&format!("{base}/v1/catalog/register?token={root}"), registration).status, 200);
    let ip = cluster.agents[0].ip.clone();
    let dig = || {
        let output = Command::new("dig")
            .args([&format!("@{ip}"), "-p", "8600", "+time=3", "+tries=1", "web.service.consul", "A"])
            .output()
            .expect("dig is missing: run `apt-get install bind9-dnsutils`");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(dig().contains("NXDOMAIN"), "the anonymous token may not read web:\n{}", dig());
    let rules = "service_prefix \"\" { policy = \"read\" }\nnode_prefix \"\" { policy = \"read\" }";
    let policy = serde_json::json!({ "Name": "dns-read", "Rules": rules }).to_string();
    assert_eq!(put(&format!("{base}/v1/acl/policy?token={root}"), &policy).status, 200);
    let anonymous = r#"{"Policies":[{"Name":"dns-read"}]}"#;
    let updated = put(&format!("{base}/v1/acl/token/00000000-0000-0000-0000-000000000002?token={root}"), anonymous);
    assert_eq!(updated.status, 200, "{}", updated.body);
    eventually(Duration::from_secs(10), "web to resolve for the anonymous token", || {
        dig().contains("10.1.2.3").then_some(())
    });
}

#[test]
fn a_client_agents_services_reach_the_catalog_only_once_its_agent_token_is_set() {
    let (_dir, config) = config_file(DENY);
    let mut cluster = Cluster::servers_with(135, 1, &["-config-file", &config]);
    cluster.wait_leader();
    let base = cluster.agents[0].http();
    let root = bootstrap(&base);
    let client = cluster.add_client(135, 9, "c1", &["-config-file", &config]);
    let client_url = cluster.agents[client].http();
    let service = r#"{"Name":"api","Port":9000}"#;
    let registered = put(&format!("{client_url}/v1/agent/service/register?token={root}"), service);
    assert_eq!(registered.status, 200, "{}", registered.body);
    std::thread::sleep(Duration::from_secs(3));
    let catalog = get(&format!("{base}/v1/catalog/service/api?token={root}"));
    assert_eq!(catalog.json().as_array().unwrap().len(), 0, "synced without an agent token");
    assert!(cluster.agents[client].log().contains("catalog sync refused"), "the refusal is logged");
    let rules = "node \"c1\" { policy = \"write\" }\nservice_prefix \"\" { policy = \"write\" }";
    let (_, agent_secret) = token_with_rules(&base, &root, "agent-c1", rules);
    let set =
        put(&format!("{client_url}/v1/agent/token/agent?token={root}"), &format!("{{\"Token\":\"{agent_secret}\"}}"));
    assert_eq!(set.status, 200, "{}", set.body);
    eventually(Duration::from_secs(30), "api in the catalog", || {
        let rows = get(&format!("{base}/v1/catalog/service/api?token={root}")).json();
        (rows.as_array()?.len() == 1).then_some(())
    });
}

#[test]
fn the_acl_commands_bootstrap_and_manage_policies_and_tokens() {
    let (dir, config) = config_file(DENY);
    let cluster = Cluster::dev_with(136, &["-config-file", &config]);
    let addr = format!("{}:8500", cluster.agents[0].ip);
    let run = |args: &[&str], token: Option<&str>| {
        let mut command = Command::new(binary());
        command.args(args).env("CONSUL_HTTP_ADDR", &addr).env_remove("CONSUL_HTTP_TOKEN");
        if let Some(token) = token {
            command.env("CONSUL_HTTP_TOKEN", token);
        }
        let output = command.output().expect("run conclave");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (ok, out) = eventually(Duration::from_secs(30), "acl bootstrap", || {
        let (ok, out) = run(&["acl", "bootstrap", "-format=json"], None);
        ok.then_some((ok, out))
    });
    assert!(ok);
    let root = serde_json::from_str::<serde_json::Value>(&out).unwrap()["SecretID"].as_str().unwrap().to_string();
    let rules = dir.path().join("rules.hcl");
    std::fs::write(&rules, "key_prefix \"cli/\" { policy = \"write\" }").unwrap();
    let rules_arg = format!("@{}", rules.display());
    let (ok, out) = run(&["acl", "policy", "create", "-name", "cli", "-rules", &rules_arg], Some(&root));
    assert!(ok && out.contains("Name:") && out.contains("cli"), "{out}");
    let (ok, out) = run(
        &["acl", "token", "create", "-policy-name", "cli", "-description", "from the cli", "-format=json"],
        Some(&root),
    );
    assert!(ok, "{out}");
    let secret = serde_json::from_str::<serde_json::Value>(&out).unwrap()["SecretID"].as_str().unwrap().to_string();
    assert!(run(&["kv", "put", "cli/a", "1"], Some(&secret)).0);
    let (ok, out) = run(&["kv", "put", "other/a", "1"], Some(&secret));
    assert!(!ok && out.contains("Permission denied"), "{out}");
    let (ok, out) = run(&["acl", "token", "list"], Some(&root));
    assert!(ok && out.contains("from the cli"), "{out}");
    let (ok, out) = run(&["acl", "token", "read", "-self"], Some(&secret));
    assert!(ok && out.contains("from the cli"), "{out}");
}
