//! Snapshots end to end on real servers with ACLs on: `conclave snapshot save` from one cluster,
//! `inspect`, `restore` into a fresh cluster, and every KV, catalog, session and ACL entry the same on
//! each of its servers; blocking clients woken by the restore; damaged archives refused before anything
//! changes; a restore while a client writes; restored sessions with fresh TTLs. Loopback subnets 214
//! (the source), 215 (the target), 216 (damaged archives) and 218 (sessions).

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conclave_tests::harness::{binary, eventually, Cluster};
use conclave_tests::http;
use serde_json::{json, Value};

const ACL: &str = "acl {\n  enabled = true\n  default_policy = \"allow\"\n}\n";
const KEYS: usize = 60;

fn config_file(dir: &std::path::Path) -> String {
    let path = dir.join("acl.hcl");
    std::fs::write(&path, ACL).expect("write config");
    path.display().to_string()
}

fn bootstrap(base: &str) -> String {
    eventually(Duration::from_secs(30), "ACL bootstrap", || {
        let reply = http::put(&format!("{base}/v1/acl/bootstrap"), "").ok()?;
        (reply.status == 200).then(|| reply.json()["SecretID"].as_str().unwrap().to_string())
    })
}

fn put_ok(url: &str, body: &str) -> http::Reply {
    let reply = http::put(url, body).unwrap_or_else(|e| panic!("PUT {url}: {e}"));
    assert_eq!(reply.status, 200, "PUT {url}: {}", reply.body);
    reply
}

fn conclave(args: &[&str]) -> std::process::Output {
    Command::new(binary()).args(args).output().expect("run conclave")
}

/// Fills the source cluster: KV keys (one locked by a session), external catalog nodes with services
/// and checks, sessions and an ACL policy with a token.
fn fill(base: &str, root: &str) {
    for i in 0..KEYS {
        put_ok(&format!("{base}/v1/kv/app/config/{i}?flags={i}&token={root}"), &format!("value-{i}"));
    }
    for n in 0..4 {
        let registration = json!({
            "Node": format!("ext-{n}"),
            "Address": format!("10.0.0.{n}"),
            "Service": { "Service": "web", "ID": format!("web-{n}"), "Port": 8080 + n, "Tags": ["v1"] },
            "Check": { "CheckID": format!("web-{n}-alive"), "Name": "alive", "Status": "passing", "ServiceID": format!("web-{n}") },
        });
        put_ok(&format!("{base}/v1/catalog/register?token={root}"), &registration.to_string());
    }
    let mut sessions = Vec::new();
    for n in 0..3 {
        let body = json!({ "Node": format!("ext-{n}"), "NodeChecks": [], "TTL": "30s", "Name": format!("s{n}") });
        let reply = put_ok(&format!("{base}/v1/session/create?token={root}"), &body.to_string());
        sessions.push(reply.json()["ID"].as_str().unwrap().to_string());
    }
    let locked = put_ok(&format!("{base}/v1/kv/app/leader?acquire={}&token={root}", sessions[0]), "ext-0");
    assert_eq!(locked.body.trim(), "true");
    let policy = json!({ "Name": "readers", "Rules": "key_prefix \"app/\" { policy = \"read\" }" });
    put_ok(&format!("{base}/v1/acl/policy?token={root}"), &policy.to_string());
    let token = json!({ "Description": "reader", "Policies": [{ "Name": "readers" }] });
    put_ok(&format!("{base}/v1/acl/token?token={root}"), &token.to_string());
}

/// Everything the test compares, read from one server's own copy (`?stale`), without the fields that
/// say when a list was read.
fn view(base: &str, root: &str) -> Value {
    let read = |path: &str| -> Value {
        let separator = if path.contains('?') { '&' } else { '?' };
        let url = format!("{base}{path}{separator}stale&token={root}");
        let reply = http::get(&url).unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(reply.status, 200, "GET {url}: {}", reply.body);
        reply.json()
    };
    let external = |list: Value| -> Value {
        let kept = list.as_array().unwrap().iter().filter(|n| n["Node"].as_str().unwrap().starts_with("ext-"));
        Value::Array(kept.cloned().collect())
    };
    json!({
        "kv": read("/v1/kv/?recurse"),
        "nodes": external(read("/v1/catalog/nodes")),
        "web": read("/v1/catalog/service/web"),
        "checks": external(read("/v1/health/state/any")),
        "sessions": read("/v1/session/list"),
        "policies": read("/v1/acl/policies"),
        "tokens": read("/v1/acl/tokens"),
    })
}

fn kv_index(base: &str, root: &str) -> u64 {
    http::get(&format!("{base}/v1/kv/app/config/0?token={root}")).unwrap().index()
}

#[test]
fn a_snapshot_saved_from_one_cluster_restores_every_entry_into_another() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path());
    let mut source = Cluster::servers_with(214, 3, &["-config-file", &config]);
    source.wait_leader();
    let source_base = source.agents[0].http();
    let root = bootstrap(&source_base);
    fill(&source_base, &root);
    let expected = view(&source_base, &root);

    let file = dir.path().join("backup.snap");
    let file_arg = file.display().to_string();
    let http_addr = format!("-http-addr={}", source_base);
    let token_arg = format!("-token={root}");
    let saved = conclave(&["snapshot", "save", &http_addr, &token_arg, &file_arg]);
    let stdout = String::from_utf8_lossy(&saved.stdout);
    assert!(saved.status.success(), "save: {stdout} {}", String::from_utf8_lossy(&saved.stderr));
    assert!(stdout.starts_with("Saved and verified snapshot to index "), "{stdout}");
    let inspected = conclave(&["snapshot", "inspect", &file_arg]);
    let table = String::from_utf8_lossy(&inspected.stdout);
    assert!(inspected.status.success(), "inspect: {}", String::from_utf8_lossy(&inspected.stderr));
    for row in ["ID", "Size", "Index", "Term", "Version"] {
        assert!(table.lines().any(|l| l.starts_with(row)), "no {row} row in\n{table}");
    }
    let anonymous = conclave(&["snapshot", "save", &http_addr, "-token=", &format!("{file_arg}.denied")]);
    assert!(!anonymous.status.success(), "a snapshot without a management token");
    assert!(
        String::from_utf8_lossy(&anonymous.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&anonymous.stderr)
    );
    assert!(!dir.path().join("backup.snap.denied").exists() && !dir.path().join("backup.snap.denied.tmp").exists());
    drop(source);

    let mut target = Cluster::servers_with(215, 3, &["-config-file", &config]);
    target.wait_leader();
    let target_base = target.agents[0].http();
    let target_root = bootstrap(&target_base);
    put_ok(&format!("{target_base}/v1/kv/app/config/0?token={target_root}"), "before the restore");
    put_ok(&format!("{target_base}/v1/kv/only-in-target?token={target_root}"), "gone after the restore");
    let index_before = kv_index(&target_base, &target_root);

    // A blocking reader of a key the restore rewrites.
    let blocking_url =
        format!("{}/v1/kv/app/config/0?index={index_before}&wait=60s&token={target_root}", target.agents[1].http());
    let blocked = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let reply = http::request("GET", &blocking_url, None, Duration::from_secs(90)).unwrap();
        (reply, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));

    let restored = conclave(&[
        "snapshot",
        "restore",
        &format!("-http-addr={target_base}"),
        &format!("-token={target_root}"),
        &file_arg,
    ]);
    assert!(restored.status.success(), "restore: {}", String::from_utf8_lossy(&restored.stderr));
    assert_eq!(String::from_utf8_lossy(&restored.stdout).trim(), "Restored snapshot");

    let (reply, waited) = blocked.join().unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.index() > index_before, "the restore moves the index on: {} after {index_before}", reply.index());
    assert!(waited < Duration::from_secs(30), "the blocking reader is woken by the restore, not its timeout");

    // The source's management token is the target's now; the target's own bootstrap token is gone.
    for agent in &target.agents {
        let base = agent.http();
        let got = eventually(Duration::from_secs(20), "the restored state on every server", || {
            let got = view(&base, &root);
            (got == expected).then_some(got)
        });
        assert_eq!(got["kv"].as_array().unwrap().len(), KEYS + 1);
        let denied = http::get(&format!("{base}/v1/acl/tokens?stale&token={target_root}")).unwrap();
        assert_eq!(denied.status, 403, "the target's old bootstrap token after the restore: {}", denied.body);
    }
    assert!(kv_index(&target_base, &root) > index_before, "indexes keep growing after a restore");
    let missing = http::get(&format!("{target_base}/v1/kv/only-in-target?token={root}")).unwrap();
    assert_eq!(missing.status, 404, "a key only the target had is gone");
    put_ok(&format!("{target_base}/v1/kv/after-restore?token={root}"), "writes go on");
}

#[test]
fn a_damaged_archive_is_refused_before_anything_changes_and_a_restore_under_writes_keeps_later_writes() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path());
    let mut cluster = Cluster::servers_with(216, 3, &["-config-file", &config]);
    cluster.wait_leader();
    let base = cluster.agents[0].http();
    let root = bootstrap(&base);
    fill(&base, &root);
    let file = dir.path().join("good.snap");
    let saved = conclave(&[
        "snapshot",
        "save",
        &format!("-http-addr={base}"),
        &format!("-token={root}"),
        &file.display().to_string(),
    ]);
    assert!(saved.status.success(), "save: {}", String::from_utf8_lossy(&saved.stderr));
    let good = std::fs::read(&file).unwrap();

    put_ok(&format!("{base}/v1/kv/after-save?token={root}"), "kept unless a restore succeeds");
    let index_before = kv_index(&base, &root);
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x55;
    let damaged = [("truncated", good[..good.len() / 2].to_vec()), ("flipped", flipped), ("empty", Vec::new())];
    for (what, bytes) in damaged {
        let url = format!("{base}/v1/snapshot?token={root}");
        let reply = http::request("PUT", &url, Some(&bytes), Duration::from_secs(30)).unwrap();
        assert_eq!(reply.status, 400, "{what} archive: {}", reply.body);
        assert!(reply.body.starts_with("Error verifying snapshot: "), "{what}: {}", reply.body);
    }
    let after = http::get(&format!("{base}/v1/kv/after-save?token={root}")).unwrap();
    assert_eq!(after.status, 200, "a refused archive changed the state");
    assert_eq!(kv_index(&base, &root), index_before, "a refused archive moved the index");

    // Restore while a client writes: every write answers (200 or a clear error), and every write
    // acknowledged after the restore's own index is still there.
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let writing = writing.clone();
        let url = cluster.agents[1].http();
        let root = root.clone();
        std::thread::spawn(move || {
            let mut acked: Vec<(String, u64)> = Vec::new();
            let mut i = 0;
            while writing.load(Ordering::Relaxed) {
                let key = format!("live/{i}");
                let reply = http::put(&format!("{url}/v1/kv/{key}?token={root}"), "x").expect("an answer");
                if reply.status == 200 {
                    let index = http::get(&format!("{url}/v1/kv/{key}?token={root}"))
                        .ok()
                        .filter(|r| r.status == 200)
                        .map(|r| r.json()[0]["ModifyIndex"].as_u64().unwrap());
                    if let Some(index) = index {
                        acked.push((key, index));
                    }
                } else {
                    assert!(reply.status >= 400 && !reply.body.is_empty(), "{}: {}", reply.status, reply.body);
                }
                i += 1;
            }
            acked
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let reply = http::request("PUT", &format!("{base}/v1/snapshot?token={root}"), Some(&good), Duration::from_secs(60))
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let restore_index: u64 = reply.header("X-Consul-Index").expect("X-Consul-Index").parse().unwrap();
    std::thread::sleep(Duration::from_millis(800));
    writing.store(false, Ordering::Relaxed);
    let acked = writer.join().unwrap();
    let later: Vec<&(String, u64)> = acked.iter().filter(|(_, index)| *index > restore_index).collect();
    assert!(!later.is_empty(), "writes acknowledged after the restore (of {} in all)", acked.len());
    for (key, _) in later {
        let reply = http::get(&format!("{base}/v1/kv/{key}?token={root}")).unwrap();
        assert_eq!(reply.status, 200, "{key}, acknowledged after the restore, is lost");
    }
    let gone = http::get(&format!("{base}/v1/kv/after-save?token={root}")).unwrap();
    assert_eq!(gone.status, 404, "the restore put back the state of the save");
    assert!(kv_index(&base, &root) > index_before);
}

/// A session saved in an archive and restored after its TTL has long run out is alive again with a
/// fresh TTL (the leader restarts its timer at the restore), and that timer then ends it as any other.
/// One server, no ACLs, loopback subnet 218.
#[test]
fn restored_sessions_get_a_fresh_ttl_that_then_runs_out() {
    const TTL_S: u64 = 10;
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::servers(218, 1);
    cluster.wait_leader();
    let base = cluster.agents[0].http();
    let node = eventually(Duration::from_secs(20), "the server in the catalog", || {
        let nodes = http::get(&format!("{base}/v1/catalog/nodes")).ok()?.json();
        nodes.as_array()?.first().map(|n| n["Node"].as_str().unwrap().to_string())
    });
    let body = json!({ "Node": node, "NodeChecks": [], "TTL": format!("{TTL_S}s"), "Name": "ephemeral" });
    let session =
        put_ok(&format!("{base}/v1/session/create"), &body.to_string()).json()["ID"].as_str().unwrap().to_string();
    let info_url = format!("{base}/v1/session/info/{session}");
    let alive = |url: &str| http::get(url).unwrap().json().as_array().is_some_and(|a| !a.is_empty());

    let file = dir.path().join("sessions.snap").display().to_string();
    let saved = conclave(&["snapshot", "save", &format!("-http-addr={base}"), &file]);
    assert!(saved.status.success(), "save: {}", String::from_utf8_lossy(&saved.stderr));
    // Consul ends a session that is not renewed within twice its TTL.
    eventually(Duration::from_secs(3 * TTL_S + 10), "the session ended by its TTL", || {
        (!alive(&info_url)).then_some(())
    });

    let restored = conclave(&["snapshot", "restore", &format!("-http-addr={base}"), &file]);
    assert!(restored.status.success(), "restore: {}", String::from_utf8_lossy(&restored.stderr));
    let restored_at = std::time::Instant::now();
    assert!(alive(&info_url), "the restored session is alive: its TTL started again at the restore");
    eventually(Duration::from_secs(3 * TTL_S + 10), "the restored session ended by its fresh TTL", || {
        (!alive(&info_url)).then_some(())
    });
    assert!(
        restored_at.elapsed() >= Duration::from_secs(TTL_S),
        "the restored session lived at least its TTL after the restore ({:?})",
        restored_at.elapsed()
    );
}
