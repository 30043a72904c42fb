//! The KV store, sessions, locks and transactions on real `conclave agent` processes: writes through
//! followers and client agents, blocking queries that wake only for their key, session TTLs decided by
//! the leader (and surviving its death), and the `kv` and `lock` commands.

use std::process::Command;
use std::time::{Duration, Instant};

use conclave_tests::harness::{binary, eventually, Cluster};
use conclave_tests::http;

fn put(url: &str, body: &str) -> http::Reply {
    http::put(url, body).unwrap_or_else(|e| panic!("PUT {url}: {e}"))
}

/// Creates a session, waiting until the agent's node is in the catalog (a session needs its node).
fn create_session(url: &str, body: &str) -> String {
    eventually(Duration::from_secs(20), "session create", || {
        let reply = http::put(&format!("{url}/v1/session/create"), body).ok()?;
        (reply.status == 200).then(|| reply.json()["ID"].as_str().unwrap().to_string())
    })
}

#[test]
fn kv_semantics_through_a_follower_and_blocking_on_one_key() {
    let mut cluster = Cluster::servers(91, 3);
    let leader = cluster.wait_leader();
    let url = cluster.agents[(leader + 1) % 3].http();

    assert_eq!(put(&format!("{url}/v1/kv/app/config?flags=7"), "v1").body, "true");
    assert_eq!(put(&format!("{url}/v1/kv/app%2Fother"), "slash").body, "true", "a percent-encoded / is a /");
    let reply = http::get(&format!("{url}/v1/kv/app/config")).unwrap();
    let entry = &reply.json()[0];
    assert_eq!(
        (entry["Key"].as_str(), entry["Flags"].as_u64(), entry["Value"].as_str()),
        (Some("app/config"), Some(7), Some("djE="))
    );
    assert_eq!(reply.index(), entry["ModifyIndex"].as_u64().unwrap(), "a single key's index is its own");
    let modify_index = reply.index();
    let keys = http::get(&format!("{url}/v1/kv/?keys&separator=/")).unwrap().json();
    assert_eq!(keys, serde_json::json!(["app/"]));
    let both = http::get(&format!("{url}/v1/kv/app/?recurse")).unwrap().json();
    assert_eq!(both.as_array().unwrap().len(), 2);
    assert_eq!(http::get(&format!("{url}/v1/kv/app/other?raw")).unwrap().body, "slash");

    // CAS: 0 creates only; a stale index loses; the current index wins.
    assert_eq!(put(&format!("{url}/v1/kv/app/config?cas=0"), "x").body, "false");
    assert_eq!(put(&format!("{url}/v1/kv/app/config?cas={}", modify_index - 1), "x").body, "false");
    assert_eq!(put(&format!("{url}/v1/kv/app/config?cas={modify_index}"), "v2").body, "true");

    // Limits and bad input.
    let big = "x".repeat(512 * 1024 + 1);
    let reply = http::put(&format!("{url}/v1/kv/big"), &big).unwrap();
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert!(reply.body.contains("too large"), "{}", reply.body);
    assert_eq!(http::put(&format!("{url}/v1/kv/k?cas=1&acquire=s"), "").unwrap().status, 400);
    assert_eq!(http::get(&format!("{url}/v1/kv/")).unwrap().status, 400, "missing key name");
    assert_eq!(http::get(&format!("{url}/v1/kv/nope")).unwrap().status, 404);

    // A blocking read of one key is not woken by another key, and is woken by its own.
    let index = http::get(&format!("{url}/v1/kv/app/config")).unwrap().index();
    let watcher = {
        let url = format!("{url}/v1/kv/app/config?index={index}&wait=20s");
        std::thread::spawn(move || {
            let started = Instant::now();
            let reply = http::request("GET", &url, None, Duration::from_secs(30)).unwrap();
            (started.elapsed(), reply)
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    put(&format!("{url}/v1/kv/app/unrelated"), "noise");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!watcher.is_finished(), "a write to another key woke the blocking query");
    put(&format!("{url}/v1/kv/app/config"), "v3");
    let (waited, reply) = watcher.join().unwrap();
    assert!(waited < Duration::from_secs(10), "woken by its own key");
    assert_eq!(reply.json()[0]["Value"], "djM=");
    assert!(reply.index() > index);

    // Transactions: all or nothing, 409 with the failing operation.
    let txn =
        r#"[{"KV":{"Verb":"set","Key":"t/a","Value":"YQ=="}},{"KV":{"Verb":"check-not-exists","Key":"app/config"}}]"#;
    let reply = put(&format!("{url}/v1/txn"), txn);
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert_eq!(reply.json()["Errors"][0]["OpIndex"], 1);
    assert_eq!(http::get(&format!("{url}/v1/kv/t/a")).unwrap().status, 404, "rolled back");
    let txn = r#"[{"KV":{"Verb":"set","Key":"t/a","Value":"YQ=="}},{"KV":{"Verb":"get","Key":"app/config"}}]"#;
    let reply = put(&format!("{url}/v1/txn"), txn);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["Results"][1]["KV"]["Value"], "djM=");

    assert_eq!(
        http::request("DELETE", &format!("{url}/v1/kv/app?recurse"), None, Duration::from_secs(10)).unwrap().body,
        "true"
    );
    assert_eq!(http::get(&format!("{url}/v1/kv/app/?recurse")).unwrap().status, 404);
}

#[test]
fn a_lock_outlives_a_leader_kill_and_its_session_expires_after_the_ttl() {
    let mut cluster = Cluster::servers(92, 3);
    let leader = cluster.wait_leader();
    let survivor = (leader + 1) % 3;
    let url = cluster.agents[survivor].http();

    let holder = create_session(&url, r#"{"TTL":"10s","LockDelay":"2s","Name":"holder"}"#);
    let rival = create_session(&url, r#"{"Name":"rival"}"#);
    assert_eq!(put(&format!("{url}/v1/kv/locks/leader?acquire={holder}"), "me").body, "true");
    assert_eq!(put(&format!("{url}/v1/kv/locks/leader?acquire={rival}"), "you").body, "false");
    let info = http::get(&format!("{url}/v1/session/info/{holder}")).unwrap().json();
    assert_eq!((info[0]["TTL"].as_str(), info[0]["LockDelay"].as_u64()), (Some("10s"), Some(2_000_000_000)));

    // The leader dies; the holder keeps renewing through a follower, the new leader restarts the timers.
    cluster.agents[leader].kill();
    let renewed_until = Instant::now() + Duration::from_secs(25);
    while Instant::now() < renewed_until {
        let reply = put(&format!("{url}/v1/session/renew/{holder}"), "");
        if reply.status == 200 {
            assert_eq!(reply.json()[0]["ID"], holder.as_str());
        }
        std::thread::sleep(Duration::from_secs(3));
    }
    let entry = http::get(&format!("{url}/v1/kv/locks/leader")).unwrap().json();
    assert_eq!(entry[0]["Session"], holder.as_str(), "renewed through the failover, the lock is still held");

    // Renewals stop: the session goes after 2×TTL at the latest, and the lock with it.
    let stopped = Instant::now();
    let released = eventually(Duration::from_secs(40), "session expiry", || {
        let entry = http::get(&format!("{url}/v1/kv/locks/leader")).ok()?.json();
        entry[0].get("Session").is_none().then(|| stopped.elapsed())
    });
    assert!(released >= Duration::from_secs(10), "not before its TTL: {released:?}");
    let reply = http::put(&format!("{url}/v1/session/renew/{holder}"), "").unwrap();
    assert_eq!(reply.status, 404, "{}", reply.body);
    // The lock delay passes, then the rival can take it.
    eventually(Duration::from_secs(10), "rival acquires after the lock delay", || {
        (put(&format!("{url}/v1/kv/locks/leader?acquire={rival}"), "you").body == "true").then_some(())
    });
}

#[test]
fn sessions_on_a_client_agent_belong_to_its_node_and_die_with_it() {
    let mut cluster = Cluster::servers(93, 3);
    cluster.wait_leader();
    let client = cluster.add_client(93, 4, "c1", &[]);
    let url = cluster.agents[client].http();
    let session = create_session(&url, "");
    let info = http::get(&format!("{url}/v1/session/info/{session}")).unwrap().json();
    assert_eq!(info[0]["Node"], "c1");
    assert_eq!(info[0]["NodeChecks"], serde_json::json!(["serfHealth"]));
    let server = cluster.agents[0].http();
    assert_eq!(put(&format!("{url}/v1/kv/owned?acquire={session}"), "x").body, "true");
    // Deregistering the node invalidates its sessions and releases their locks.
    let reply = put(&format!("{server}/v1/catalog/deregister"), r#"{"Node":"c1"}"#);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let listed = http::get(&format!("{server}/v1/session/node/c1")).unwrap().json();
    assert_eq!(listed, serde_json::json!([]));
    let entry = http::get(&format!("{server}/v1/kv/owned")).unwrap().json();
    assert!(entry[0].get("Session").is_none(), "{entry}");
}

fn conclave(http_addr: &str, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(binary()).args(args).env("CONSUL_HTTP_ADDR", http_addr).output().expect("run conclave");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

#[test]
fn kv_and_lock_commands_work_like_consuls() {
    let mut cluster = Cluster::dev(94);
    cluster.wait_leader();
    let addr = cluster.agents[0].http().trim_start_matches("http://").to_string();
    create_session(&cluster.agents[0].http(), "{}"); // the agent's node is registered
    assert_eq!(conclave(&addr, &["kv", "put", "web/port", "8080"]).1, "Success! Data written to: web/port\n");
    assert_eq!(conclave(&addr, &["kv", "get", "web/port"]).1, "8080\n");
    assert_eq!(conclave(&addr, &["kv", "get", "-recurse", "web"]).1, "web/port:8080\n");
    let (code, _, err) = conclave(&addr, &["kv", "get", "web/missing"]);
    assert_eq!((code, err.as_str()), (1, "Error! No key exists at: web/missing\n"));
    let (code, _, err) = conclave(&addr, &["kv", "put", "-cas", "-modify-index=1", "web/port", "9"]);
    assert_eq!((code, err.as_str()), (1, "Error! Did not write to web/port: CAS failed\n"));
    let detailed = conclave(&addr, &["kv", "get", "-detailed", "web/port"]).1;
    assert!(detailed.contains("Session      -") && detailed.contains("Value        8080"), "{detailed}");
    let exported = conclave(&addr, &["kv", "export", "web"]).1;
    assert_eq!(conclave(&addr, &["kv", "delete", "-recurse", "web"]).1, "Success! Deleted keys with prefix: web\n");
    let file = cluster.dir.path().join("export.json");
    std::fs::write(&file, exported).unwrap();
    let imported = conclave(&addr, &["kv", "import", &format!("@{}", file.display())]).1;
    assert_eq!(imported, "Imported: web/port\n");

    // `lock` runs its child holding the lock; a second `lock -try` meanwhile gives up.
    let marker = cluster.dir.path().join("held");
    let child = format!("touch {}; sleep 3", marker.display());
    let mut first =
        Command::new(binary()).args(["lock", "jobs/nightly", &child]).env("CONSUL_HTTP_ADDR", &addr).spawn().unwrap();
    eventually(Duration::from_secs(10), "first lock holder runs", || marker.exists().then_some(()));
    let entry = conclave(&addr, &["kv", "get", "-detailed", "jobs/nightly/.lock"]).1;
    assert!(!entry.contains("Session      -"), "the lock key is held: {entry}");
    let (code, _, err) = conclave(&addr, &["lock", "-try=1s", "jobs/nightly", "echo", "should-not-run"]);
    assert_eq!(code, 1, "{err}");
    assert!(first.wait().unwrap().success());
    let (code, out, _) = conclave(&addr, &["lock", "jobs/nightly", "echo", "-n", "ran"]);
    assert_eq!((code, out.as_str()), (0, "ran"), "the child keeps its own flags");
}
